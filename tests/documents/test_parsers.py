"""First parsers: PDF text layer, text, markdown, HTML; and every way a document can fail."""

from __future__ import annotations

import codecs
import io
import shutil
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from batchnb.documents import PARSER_VERSION, parse_document
from batchnb.documents import parsers as parsers_module
from batchnb.documents import text as text_module
from batchnb.errors import DocumentError


def test_pdf_text_layer_page_by_page(make_pdf: Callable[..., bytes]) -> None:
    data = make_pdf("Invoice number: INV-001\nTotal: 120.50 EUR", "Page two text")
    parsed = parse_document(data, "pdf")
    assert parsed.page_count == 2
    assert [page.number for page in parsed.pages] == [1, 2]
    assert parsed.pages[0].text == "Invoice number: INV-001\nTotal: 120.50 EUR"
    assert "\r" not in parsed.text
    assert parsed.pages[1].text == "Page two text"
    assert parsed.text == "Invoice number: INV-001\nTotal: 120.50 EUR\fPage two text"
    assert parsed.parser == PARSER_VERSION["pdf"] == "pypdfium2-1"
    assert parsed.metadata == {"pages": "2", "pages_without_text": "0"}


def test_pdf_with_some_blank_pages_keeps_them(make_pdf: Callable[..., bytes]) -> None:
    parsed = parse_document(make_pdf("first", "", "third"), "pdf")
    assert [page.text for page in parsed.pages] == ["first", "", "third"]
    assert parsed.metadata["pages_without_text"] == "1"


def test_encrypted_pdf(make_pdf: Callable[..., bytes]) -> None:
    with pytest.raises(DocumentError, match="encrypted/password-protected"):
        parse_document(make_pdf("secret", encrypt="pw"), "pdf")


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")
def test_pdf_without_text_layer(image_only_pdf: bytes) -> None:
    # The scan holds no text at all, so OCR finds none either (see test_ocr.py for real ones).
    with pytest.raises(DocumentError) as caught:
        parse_document(image_only_pdf, "pdf")
    message = str(caught.value)
    assert "no text layer" in message
    assert "scanned" in message
    assert "OCR found no text" in message


@pytest.mark.parametrize("cut", [0.5, 0.1])
def test_truncated_pdf(make_pdf: Callable[..., bytes], cut: float) -> None:
    data = make_pdf("will be cut")
    with pytest.raises(DocumentError, match="not a readable PDF"):
        parse_document(data[: int(len(data) * cut)], "pdf")


def test_garbage_called_pdf() -> None:
    with pytest.raises(DocumentError, match="not a readable PDF"):
        parse_document(b"%PDF-1.7\nthis is not really a pdf\n%%EOF", "pdf")


def test_too_many_pages(make_pdf: Callable[..., bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsers_module, "MAX_PDF_PAGES", 2)
    with pytest.raises(DocumentError, match=r"too many pages: 3 \(the limit is 2\)"):
        parse_document(make_pdf("1", "2", "3"), "pdf")
    assert parse_document(make_pdf("1", "2"), "pdf").page_count == 2


def test_plain_text_utf8_with_bom_and_crlf() -> None:
    parsed = parse_document(codecs.BOM_UTF8 + "Größe: 5 €\r\nZeile 2\r".encode(), "text")
    assert parsed.text == "Größe: 5 €\nZeile 2\n"
    assert parsed.metadata == {"encoding": "utf-8"}
    assert parsed.parser == PARSER_VERSION["text"]


def test_plain_text_legacy_encodings() -> None:
    assert parse_document("Größe: 5 €".encode("cp1252"), "text").text == "Größe: 5 €"
    # 0x81 is undefined in cp1252: latin-1 is the last resort and never fails.
    latin = parse_document(b"caf\xe9 \x81", "text")
    assert latin.text == "café \x81"
    assert latin.metadata["encoding"] == "latin-1"


def test_plain_text_utf16_with_bom() -> None:
    data = codecs.BOM_UTF16_LE + "Summe 12,00 €".encode("utf-16-le")
    assert parse_document(data, "text").text == "Summe 12,00 €"


def test_form_feeds_split_text_into_pages() -> None:
    parsed = parse_document(b"page one\fpage two", "text")
    assert [page.text for page in parsed.pages] == ["page one", "page two"]


def test_csv_is_read_as_a_table() -> None:
    parsed = parse_document(b"number,total\nINV-1,12.50\n", "csv")
    assert parsed.text == "number\ttotal\nINV-1\t12.50"


def test_markdown_is_kept_as_is() -> None:
    source = "# Invoice\n\n| item | price |\n|---|---|\n| tea | **3.50** |\n"
    parsed = parse_document(source.encode(), "markdown")
    assert parsed.text == source
    assert parsed.parser == PARSER_VERSION["markdown"]


@pytest.mark.parametrize(
    ("kind", "data"),
    [("text", b""), ("text", b"  \r\n\t "), ("markdown", b"\n\n"), ("csv", codecs.BOM_UTF8)],
)
def test_empty_text_files(kind: str, data: bytes) -> None:
    with pytest.raises(DocumentError, match="is empty"):
        parse_document(data, kind)


def test_html_visible_text() -> None:
    page = b"""<!DOCTYPE html>
<html><head><title>Invoice 7</title>
<style>p { color: red; }</style>
<script>var total = "9999";</script></head>
<body>
  <h1>Invoice   &amp; receipt</h1>
  <p>Number:
     INV-7</p>
  <div>Caf&eacute; &#8364;&nbsp;12,00<br>Due&nbsp;soon</div>
  <table><tr><th>Item</th><th>Price</th></tr><tr><td>Tea</td><td>3.50</td></tr></table>
  <pre>  keep
  lines</pre>
</body></html>"""
    parsed = parse_document(page, "html")
    assert parsed.page_count == 1
    assert parsed.parser == PARSER_VERSION["html"]
    # One line per block; entities decoded; runs of spaces (and &nbsp;) become one space.
    assert parsed.text.split("\n") == [
        "Invoice 7",
        "Invoice & receipt",
        "Number: INV-7",
        "Café € 12,00",
        "Due soon",
        "Item\tPrice",
        "Tea\t3.50",
        "keep",
        "lines",
    ]
    # The table is also recorded, its header being its row of <th> cells.
    (table,) = parsed.pages[0].tables
    assert (table.header, table.rows) == (("Item", "Price"), (("Tea", "3.50"),))
    assert parsed.text[table.start : table.end] == table.text


def test_html_without_visible_text() -> None:
    with pytest.raises(DocumentError, match="no visible text"):
        parse_document(b"<html><script>alert(1)</script></html>", "html")


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (
            "zip",
            "no parser for 'zip' documents; "
            "parsable kinds: csv, docx, html, jpeg, markdown, pdf, png, text, tiff, xlsx",
        ),
    ],
)
def test_kinds_without_a_parser(kind: str, message: str, png_bytes: bytes) -> None:
    with pytest.raises(DocumentError, match=message):
        parse_document(png_bytes, kind)


def test_text_size_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_module, "MAX_TEXT_BYTES", 10)
    with pytest.raises(DocumentError, match="too large to parse"):
        parse_document(b"x" * 11, "text")


def test_a_ten_thousand_page_pdf_is_refused_without_reading_its_pages() -> None:
    import io

    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    canvas = Canvas(buffer)
    for _ in range(10_000):
        canvas.drawString(50, 800, "p")
        canvas.showPage()
    canvas.save()
    with pytest.raises(DocumentError, match=r"too many pages: 10,000 \(the limit is 2,000\)"):
        parse_document(buffer.getvalue(), "pdf")


def test_a_large_broken_pdf_is_read_from_its_stream_not_held_in_memory(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pdf"
    with junk.open("wb") as handle:
        handle.write(b"%PDF-1.7\n" + b"1 0 obj << garbage >>\n" * 1000)
        handle.truncate(200 * 1024 * 1024)  # 200 MiB, sparse on disk
    tracemalloc.start()
    try:
        with junk.open("rb") as stream, pytest.raises(DocumentError, match="not a readable PDF"):
            parse_document(stream, "pdf", tables=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024  # the file is 200 MiB; only small buffers pass through Python


def test_a_stream_too_large_for_its_kind_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    with big.open("wb") as handle:
        handle.truncate(parsers_module.MAX_TEXT_BYTES + 1)

    class Counting(io.FileIO):
        read_calls = 0

        def read(self, size: int = -1, /) -> bytes:
            Counting.read_calls += 1
            return super().read(size)

    with Counting(big, "rb") as stream, pytest.raises(DocumentError) as raised:
        parse_document(stream, "text")  # type: ignore[arg-type]  # a FileIO is a binary stream
    assert raised.value.kind == "too_large"
    assert "64 MiB" in str(raised.value) and Counting.read_calls == 0


def test_streams_and_bytes_parse_alike(make_pdf: Callable[..., bytes], tmp_path: Path) -> None:
    data = make_pdf("Invoice 12\nTotal 3.50")
    from_bytes = parse_document(data, "pdf", tables=True)
    from_stream = parse_document(io.BytesIO(data), "pdf", tables=True)
    assert from_stream == from_bytes
    text = b"Invoice 12\nTotal 3.50\n"
    assert parse_document(io.BytesIO(text), "text") == parse_document(text, "text")
