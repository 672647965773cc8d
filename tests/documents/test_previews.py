"""Pages and thumbnails for the widgets' file lists."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from batchnb.documents.previews import THUMBNAIL_PIXELS, preview


def _image(data_url: str) -> Image.Image:
    assert data_url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))


def test_a_pdf_has_its_pages_and_a_small_thumbnail_cached_by_hash(
    tmp_path: Path, make_pdf: Callable[..., bytes]
) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(make_pdf("one", "two", "three"))
    cache = tmp_path / "thumbs"
    shown = preview(path, "pdf", "abc123", cache)
    assert shown.pages == 3
    image = _image(shown.thumbnail)
    assert max(image.size) <= THUMBNAIL_PIXELS and image.format == "PNG"
    assert (cache / "abc123.png").is_file()
    # Cached: the same hash gives the same picture without rendering.
    assert preview(path, "pdf", "abc123", cache).thumbnail == shown.thumbnail


def test_an_image_is_one_page_and_shrunk(tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    Image.new("RGB", (600, 300), "white").save(path)
    shown = preview(path, "png", "def456", None)
    assert shown.pages == 1
    assert _image(shown.thumbnail).size == (THUMBNAIL_PIXELS, THUMBNAIL_PIXELS // 2)


def test_what_cannot_be_rendered_has_no_thumbnail(
    tmp_path: Path, make_pdf: Callable[..., bytes]
) -> None:
    damaged = tmp_path / "damaged.pdf"
    damaged.write_bytes(b"%PDF-1.4\nnot really\n")
    assert preview(damaged, "pdf", "x", tmp_path).thumbnail == ""
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(make_pdf("secret", encrypt="pw"))
    assert preview(locked, "pdf", "y", tmp_path).thumbnail == ""
    text = tmp_path / "a.txt"
    text.write_text("hello")
    assert preview(text, "text", "z", tmp_path).pages is None
