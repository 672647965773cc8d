"""OCR: images and scanned PDFs read by tesseract, word boxes, and the ways an image fails."""

from __future__ import annotations

import io
import json
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from batchnb.documents import ocr, ocr_policy, parse_document
from batchnb.documents.parsed import ParsedDocument
from batchnb.errors import DocumentError, MissingDependencyError
from tests.conftest import EVAL_DIR

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="the tesseract program is not installed (run scripts/system-packages.sh)",
)
EVAL = EVAL_DIR
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
LINES = ("Invoice Number: INV-0042", "Total: 123.45 EUR")


@pytest.fixture(autouse=True)
def _tesseract_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about Tesseract: no rapidocr fallback (tests/documents/test_ocr_rapid.py)."""
    monkeypatch.setenv("BATCHNB_OCR_ENGINE", "tesseract")


def _invoice_image(lines: tuple[str, ...] = LINES) -> Image.Image:
    font = ImageFont.truetype(str(FONT), 40) if FONT.exists() else ImageFont.load_default(size=40)
    image = Image.new("RGB", (900, 80 + 80 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((40, 40 + 80 * index), line, fill="black", font=font)
    return image


def _encode(image: Image.Image | list[Image.Image], format: str) -> bytes:
    buffer = io.BytesIO()
    if isinstance(image, list):
        image[0].save(buffer, format=format, save_all=True, append_images=image[1:])
    else:
        image.save(buffer, format=format)
    return buffer.getvalue()


def _assert_words_match(parsed: ParsedDocument) -> None:
    for page in parsed.pages:
        assert page.words
        for word in page.words:
            assert page.text[word.start : word.end] == word.text
            x0, y0, x1, y1 = word.box
            assert x0 < x1 and y0 < y1
            assert 0 <= word.confidence <= 1


@needs_tesseract
@pytest.mark.parametrize(("kind", "format"), [("png", "PNG"), ("jpeg", "JPEG")])
def test_image_is_read_by_ocr(kind: str, format: str) -> None:
    parsed = parse_document(_encode(_invoice_image(), format), kind)
    assert parsed.page_count == 1
    assert "Invoice Number: INV-0042" in parsed.text
    assert "Total: 123.45 EUR" in parsed.text
    assert parsed.parser.startswith("ocr-1+tesseract-")
    _assert_words_match(parsed)
    total = next(word for word in parsed.pages[0].words if word.text == "123.45")
    # The second line is drawn 80 px below the first, from y=120.
    assert 100 < total.box[1] < 200


@needs_tesseract
def test_multi_page_tiff_gives_one_page_per_frame() -> None:
    frames = [_invoice_image(LINES[:1]), _invoice_image(LINES[1:])]
    parsed = parse_document(_encode(frames, "TIFF"), "tiff")
    assert [page.number for page in parsed.pages] == [1, 2]
    assert "INV-0042" in parsed.pages[0].text
    assert "123.45" in parsed.pages[1].text
    _assert_words_match(parsed)


@needs_tesseract
def test_exif_orientation_is_applied() -> None:
    # Stored sideways with an EXIF tag saying "rotate 90° clockwise to view" (orientation 6).
    image = _invoice_image().rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    parsed = parse_document(buffer.getvalue(), "jpeg")
    assert "123.45" in parsed.text


@needs_tesseract
def test_scanned_pdf_is_read_by_ocr() -> None:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    reader = ImageReader(io.BytesIO(_encode(_invoice_image(), "PNG")))
    pdf.drawImage(reader, 50, 600, width=450, height=120)
    pdf.showPage()
    pdf.save()
    parsed = parse_document(buffer.getvalue(), "pdf")
    assert "INV-0042" in parsed.text
    assert "123.45" in parsed.text
    assert parsed.parser.startswith("pypdfium2-1+ocr-1+tesseract-")
    assert parsed.metadata["pages_ocr"] == "1"
    assert parsed.metadata["pages_without_text"] == "0"
    _assert_words_match(parsed)


def test_pdf_with_a_text_layer_skips_ocr(
    make_pdf: Callable[..., bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_engine() -> None:
        raise AssertionError("OCR must not run on a PDF with a text layer")

    monkeypatch.setattr(ocr_policy, "default_engine", no_engine)
    parsed = parse_document(make_pdf("Total: 12.00"), "pdf")
    assert parsed.parser == "pypdfium2-1"
    assert parsed.pages[0].words == ()


@needs_tesseract
def test_scanned_pdf_page_cap(image_only_pdf: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    from batchnb.documents import parsers

    monkeypatch.setattr(parsers, "MAX_OCR_PAGES", 0)
    with pytest.raises(DocumentError, match="too many pages without a text layer"):
        parse_document(image_only_pdf, "pdf")


def test_missing_tesseract_says_what_to_install(
    png_bytes: bytes, image_only_pdf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchnb.documents.ocr_policy import engine_for

    engine_for.cache_clear()
    monkeypatch.setenv("BATCHNB_OCR_ENGINE", "tesseract")
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    try:
        with pytest.raises(MissingDependencyError, match="apt-get install tesseract-ocr"):
            parse_document(png_bytes, "png")
        with pytest.raises(MissingDependencyError) as caught:
            parse_document(image_only_pdf, "pdf")
        assert "no text layer" in str(caught.value)
        assert "needs the tesseract program" in str(caught.value)
    finally:
        engine_for.cache_clear()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` but carries only a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.timeout(10)
@pytest.mark.parametrize("side", [100_000, 9_000])
def test_decompression_bomb_fails_fast(side: int) -> None:
    # 100000^2 trips Pillow's own guard; 9000^2 (81 MP) only ours.
    with pytest.raises(DocumentError, match="image too large"):
        parse_document(_png_header(side, side), "png")


@pytest.mark.parametrize(("kind", "label"), [("png", "PNG"), ("jpeg", "JPEG"), ("tiff", "TIFF")])
def test_unreadable_image(kind: str, label: str) -> None:
    with pytest.raises(DocumentError, match=f"not a readable {label} image"):
        parse_document(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, kind)


def test_too_many_tiff_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr, "MAX_IMAGE_FRAMES", 1)
    frames = [Image.new("L", (10, 10), 255), Image.new("L", (10, 10), 255)]
    with pytest.raises(DocumentError, match="too many frames"):
        parse_document(_encode(frames, "TIFF"), "tiff")


def test_psm_fallback_when_psm3_finds_no_digits() -> None:
    class Fake(ocr.TesseractEngine):
        def __init__(self) -> None:
            self.psm = (3, 6)
            self.min_words = 5
            self.calls: list[int] = []

        def recognize_with(self, image: Image.Image, psm: int) -> ocr.OcrPage:
            self.calls.append(psm)
            text = "one two three four five" if psm == 3 else "Total 12.00"
            return ocr.OcrPage(text)

    engine = Fake()
    assert engine.recognize(Image.new("L", (4, 4))).text == "Total 12.00"
    assert engine.calls == [3, 6]


@needs_tesseract
@pytest.mark.skipif(not EVAL.is_dir(), reason="shared/eval (SROIE receipts) is not here")
def test_sroie_receipt_total_is_read() -> None:
    name = "sroie__train_090"
    truth = json.loads((EVAL / "ground_truth" / f"{name}.json").read_text())["fields"]
    parsed = parse_document((EVAL / "documents" / f"{name}.jpg").read_bytes(), "jpeg")
    assert truth["total"] in parsed.text
    _assert_words_match(parsed)


def test_tall_receipt_images_try_psm6_first() -> None:
    class Engine(ocr.TesseractEngine):
        def __init__(self) -> None:
            self.psm = (3, 6)
            self.min_words = 0
            self.calls: list[int] = []

        def recognize_with(self, image: Image.Image, psm: int) -> ocr.OcrPage:
            self.calls.append(psm)
            return ocr.OcrPage("TOTAL 9.00 CASH 10.00 CHANGE 1.00")

    engine = Engine()
    engine.recognize(Image.new("L", (40, 100)))
    engine.recognize(Image.new("L", (70, 100)))
    assert engine.calls == [6, 3]
