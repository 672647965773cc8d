"""A document's pages as images, and where a span of a page's text sits on them.

The document view shows each page as the reader would see it: a PDF page rendered with
pypdfium2 (through :func:`batchnb.documents.previews.pdf_page_png`, the thumbnails' renderer),
an image as itself. A value's evidence is a character span of the page text the parser made;
on a PDF text layer the span is found back on the page from pypdfium2's character boxes (its
text is the parser's, before line breaks were normalised), on an OCR'd page from the words'
boxes. Boxes are fractions of the page's width and height, origin at the top left, so they fit
the image at any size it is shown.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batchnb.documents.parsed import Word
from batchnb.documents.parsers import _PDFIUM_LOCK as PDFIUM_LOCK
from batchnb.documents.parsers import OCR_DPI, DocumentSource
from batchnb.documents.previews import pdf_page_png
from batchnb.errors import DocumentError

PAGE_PIXELS = 1000
"""Width in pixels of a rendered PDF page (the view scales it to fit)."""

Box = tuple[float, float, float, float]
"""``(x0, y0, x1, y1)`` as fractions of the page's width and height, origin top left."""
Span = tuple[int, int, int]
"""``(page, start, end)``: a 1-based page and a character span of its text."""

_IMAGE_MIME = {"png": "image/png", "jpeg": "image/jpeg"}


@dataclass(frozen=True)
class PageImage:
    """One page as an image: a ``data:`` URL and its size in pixels."""

    number: int
    data_url: str
    width: int
    height: int


def pdf_page_image(source: DocumentSource, number: int, width: int = PAGE_PIXELS) -> PageImage:
    """Page ``number`` (1-based) of a PDF rendered ``width`` pixels wide, as PNG.

    Raises
    ------
    DocumentError
        The PDF cannot be opened or has no such page.
    """
    with PDFIUM_LOCK:
        document = _open(source)
        try:
            if not 0 < number <= len(document):
                raise DocumentError(f"the PDF has no page {number} (it has {len(document)})")
            page = document[number - 1]
            try:
                page_width, _ = page.get_size()
                png, pixels_wide, pixels_high = pdf_page_png(page, width / max(page_width, 1))
            finally:
                page.close()
        finally:
            document.close()
    return PageImage(number, _data_url(png, "image/png"), pixels_wide, pixels_high)


def image_page_image(data: bytes, kind: str, number: int = 1) -> PageImage:
    """Frame ``number`` of an image file (PNG and JPEG shown as they are, TIFF as PNG).

    Raises
    ------
    DocumentError
        Pillow is missing (``pip install 'batchnb[ocr]'``) or the image cannot be read.
    """
    try:
        from PIL import Image
    except ImportError as error:
        raise DocumentError("showing images needs Pillow: pip install 'batchnb[ocr]'") from error
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.seek(number - 1)
            size = opened.size
            if number == 1 and kind in _IMAGE_MIME:
                return PageImage(number, _data_url(data, _IMAGE_MIME[kind]), *size)
            frame = opened if opened.mode in ("RGB", "L") else opened.convert("RGB")
            buffer = io.BytesIO()
            frame.save(buffer, format="PNG")
    except (OSError, EOFError) as error:
        raise DocumentError(f"the image cannot be shown: {error}") from error
    return PageImage(number, _data_url(buffer.getvalue(), "image/png"), *size)


def image_size(data: bytes, number: int = 1) -> tuple[int, int] | None:
    """The pixel size of frame ``number`` of an image, ``None`` when it cannot be read."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as opened:
            opened.seek(number - 1)
            return opened.size
    except (ImportError, OSError, EOFError):
        return None


def pdf_page_sizes(source: DocumentSource) -> list[tuple[float, float]]:
    """Each page's (width, height) in PDF points."""
    with PDFIUM_LOCK:
        document = _open(source)
        try:
            sizes = []
            for index in range(len(document)):
                page = document[index]
                try:
                    sizes.append(tuple(page.get_size()))
                finally:
                    page.close()
        finally:
            document.close()
    return [(float(w), float(h)) for w, h in sizes]


def pdf_span_boxes(source: DocumentSource, spans: Mapping[str, Span]) -> dict[str, list[Box]]:
    """Where each span of a PDF's text layer sits on its page: one box per line it covers.

    Spans are offsets into the page text as :mod:`batchnb.documents.parsers` made it (line
    breaks normalised, tables appended after the text layer); a span, or the part of it, that
    is not in the text layer (an appended table, an OCR'd page) has no box.
    """
    wanted: dict[int, dict[str, tuple[int, int]]] = {}
    for key, (page, start, end) in spans.items():
        wanted.setdefault(page, {})[key] = (start, end)
    found: dict[str, list[Box]] = {}
    with PDFIUM_LOCK:
        document = _open(source)
        try:
            for number, page_spans in wanted.items():
                if 0 < number <= len(document):
                    found.update(_page_span_boxes(document[number - 1], page_spans))
        finally:
            document.close()
    return found


def word_span_boxes(
    words: Sequence[Word], start: int, end: int, size: tuple[float, float]
) -> list[Box]:
    """The boxes of the OCR words overlapping ``start:end``, one per line, as fractions of an
    image of ``size`` pixels (the image OCR read)."""
    width, height = size
    boxes = [
        (w.box[0] / width, w.box[1] / height, w.box[2] / width, w.box[3] / height)
        for w in words
        if w.start < end and w.end > start
    ]
    return _lines(boxes)


def ocr_image_size(page_points: tuple[float, float]) -> tuple[float, float]:
    """The size in pixels of the image OCR read for a PDF page of ``page_points``."""
    return (page_points[0] * OCR_DPI / 72, page_points[1] * OCR_DPI / 72)


def _page_span_boxes(page: Any, spans: Mapping[str, tuple[int, int]]) -> dict[str, list[Box]]:
    try:
        width, height = page.get_size()
        textpage = page.get_textpage()
        try:
            raw: str = textpage.get_text_range()
            offsets = _raw_offsets(raw)
            found: dict[str, list[Box]] = {}
            for key, (start, end) in spans.items():
                boxes = []
                for index in _char_indices(raw, offsets, start, end):
                    left, bottom, right, top = textpage.get_charbox(index)
                    if right > left and top > bottom:
                        boxes.append(
                            (left / width, 1 - top / height, right / width, 1 - bottom / height)
                        )
                found[key] = _lines(boxes)
        finally:
            textpage.close()
    finally:
        page.close()
    return found


def _raw_offsets(raw: str) -> list[int]:
    """For each character of the normalised text (``\\r\\n`` and ``\\r`` become ``\\n``), its
    index in pypdfium2's raw text, which is also its character index on the page."""
    offsets = []
    index = 0
    while index < len(raw):
        offsets.append(index)
        index += 2 if raw.startswith("\r\n", index) else 1
    return offsets


def _char_indices(raw: str, offsets: list[int], start: int, end: int) -> Iterable[int]:
    for position in range(max(start, 0), min(end, len(offsets))):
        index = offsets[position]
        if not raw[index].isspace():
            yield index


def _lines(boxes: list[Box]) -> list[Box]:
    """Character or word boxes merged into one box per line, in reading order."""
    lines: list[list[float]] = []
    for x0, y0, x1, y1 in boxes:
        line = next((b for b in lines if y0 < b[3] and y1 > b[1]), None)
        if line is None:
            lines.append([x0, y0, x1, y1])
        else:
            line[:] = [min(line[0], x0), min(line[1], y0), max(line[2], x1), max(line[3], y1)]
    return [(b[0], b[1], b[2], b[3]) for b in lines]


def _open(source: DocumentSource) -> Any:
    import pypdfium2

    if not isinstance(source, bytes):
        source.seek(0)
    try:
        return pypdfium2.PdfDocument(source)
    except pypdfium2.PdfiumError as error:
        raise DocumentError(f"not a readable PDF: {error}") from None


def _data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
