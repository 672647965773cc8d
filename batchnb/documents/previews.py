"""What a file list shows about a document before it is processed: pages and a thumbnail.

PDFs are counted and rendered with pypdfium2 (a core dependency) and encoded as PNG here, so
no imaging library is needed for them; images are shrunk with Pillow when it is installed
(``pip install 'batchnb[ocr]'``) and shown without a thumbnail otherwise. Thumbnails are small
(about 120 px), cached on disk by content hash, and never raise: a file that cannot be
rendered simply has none.
"""

from __future__ import annotations

import base64
import io
import logging
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Longest side of a thumbnail, in pixels.
THUMBNAIL_PIXELS = 120
_IMAGE_KINDS = frozenset({"png", "jpeg", "tiff"})


@dataclass(frozen=True)
class Preview:
    """Pages (``None`` when the format has none) and a ``data:`` URL of a PNG (or ``""``)."""

    pages: int | None
    thumbnail: str


def preview(path: Path, kind: str, content_hash: str, cache_dir: Path | None) -> Preview:
    """Count the pages of the file at ``path`` (of detected ``kind``) and make its thumbnail.

    ``cache_dir`` keeps thumbnails as ``<content_hash>.png`` so a file is rendered once.
    """
    if kind == "pdf":
        return _pdf_preview(path, content_hash, cache_dir)
    if kind in _IMAGE_KINDS:
        return Preview(_image_pages(path), _cached(path, content_hash, cache_dir, _image_png))
    return Preview(None, "")


def png_bytes(width: int, height: int, rows: bytes, channels: int) -> bytes:
    """Encode raw 8-bit pixel rows (``channels`` 1 = grey, 3 = RGB) as a PNG file."""
    colour_type = {1: 0, 3: 2}[channels]
    stride = width * channels
    raw = b"".join(b"\x00" + rows[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _pdf_preview(path: Path, content_hash: str, cache_dir: Path | None) -> Preview:
    import pypdfium2

    try:
        pdf = pypdfium2.PdfDocument(str(path))
    except Exception as exc:  # encrypted or damaged: intake will say why
        log.debug("no preview for %s: %s", path, exc)
        return Preview(None, "")
    try:
        pages = len(pdf)
        thumbnail = _cached(path, content_hash, cache_dir, lambda _: _pdf_png(pdf)) if pages else ""
        return Preview(pages, thumbnail)
    finally:
        pdf.close()


def _pdf_png(pdf: Any) -> bytes:
    page = pdf[0]
    try:
        width, height = page.get_size()
        return pdf_page_png(page, THUMBNAIL_PIXELS / max(width, height, 1))[0]
    finally:
        page.close()


def pdf_page_png(page: Any, scale: float) -> tuple[bytes, int, int]:
    """Render one pypdfium2 page at ``scale`` (pixels per PDF point) as PNG bytes, with the
    image's width and height in pixels. Thumbnails and the document view both use it."""
    bitmap = page.render(scale=scale, rev_byteorder=True)
    try:
        channels = bitmap.n_channels
        rows = b"".join(
            bytes(bitmap.buffer[y * bitmap.stride : y * bitmap.stride + bitmap.width * channels])
            for y in range(bitmap.height)
        )
        if channels == 4:  # RGBA/RGBX: drop the fourth byte
            rgb = bytearray(len(rows) // 4 * 3)
            for offset in range(3):
                rgb[offset::3] = rows[offset::4]
            rows, channels = bytes(rgb), 3
        return png_bytes(bitmap.width, bitmap.height, rows, channels), bitmap.width, bitmap.height
    finally:
        bitmap.close()


def _image_pages(path: Path) -> int:
    try:
        from PIL import Image
    except ImportError:
        return 1
    try:
        with Image.open(path) as image:
            return int(getattr(image, "n_frames", 1))
    except Exception:
        return 1


def _image_png(path: Path) -> bytes:
    from PIL import Image  # ImportError: no thumbnail (see _cached)

    with Image.open(path) as opened:
        opened.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
        image = opened if opened.mode in ("RGB", "L", "RGBA") else opened.convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()


def _cached(
    path: Path, content_hash: str, cache_dir: Path | None, render: Callable[[Path], bytes]
) -> str:
    cached = cache_dir / f"{content_hash}.png" if cache_dir is not None else None
    data: bytes | None = None
    if cached is not None and cached.is_file():
        data = cached.read_bytes()
    if data is None:
        try:
            data = render(path)
        except Exception as exc:  # a thumbnail is a nicety: never fail a file over it
            log.debug("no thumbnail for %s: %s", path, exc)
            return ""
        if cached is not None and data:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(cached)
    return "data:image/png;base64," + base64.b64encode(data or b"").decode("ascii")
