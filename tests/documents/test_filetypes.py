"""Real file types from magic bytes, and names that contradict them."""

from __future__ import annotations

import codecs
import io
import random
from collections.abc import Callable

import pytest

from batchnb.documents import SUPPORTED_KINDS, detect_file_type, detect_stream_type
from batchnb.documents.filetypes import (
    HEAD_BYTES,
    HTML,
    JPEG,
    PDF,
    PNG,
    TEXT,
    FileType,
    extension_mismatch,
)


def test_pdf_is_detected_from_its_header_whatever_the_name(
    make_pdf: Callable[..., bytes],
) -> None:
    data = make_pdf("Invoice 1")
    for name in ("invoice.pdf", "invoice.txt", "no-extension"):
        file_type = detect_file_type(data[:HEAD_BYTES], name)
        assert (file_type.kind, file_type.mime, file_type.label) == (
            "pdf",
            "application/pdf",
            "PDF document",
        )


def test_pdf_header_after_leading_junk_is_still_a_pdf(make_pdf: Callable[..., bytes]) -> None:
    assert detect_file_type(b"\r\n\x00junk" + make_pdf("x"), "a.pdf").kind == "pdf"


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "jpeg"),
        (b"II*\x00\x08\x00\x00\x00", "tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "tiff"),
        (b"GIF89a\x01\x00", "gif"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8, "ole"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00", "heic"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"{\\rtf1\\ansi hello}", "rtf"),
        (bytes(range(256)), "unknown"),
    ],
)
def test_binary_signatures(head: bytes, kind: str) -> None:
    assert detect_file_type(head, "file.bin").kind == kind


def test_png(png_bytes: bytes) -> None:
    file_type = detect_file_type(png_bytes, "scan.png")
    assert (file_type.kind, file_type.mime) == ("png", "image/png")


def test_office_zips_are_told_apart_by_their_members(
    docx_bytes: bytes, xlsx_bytes: bytes, make_zip: Callable[..., bytes]
) -> None:
    assert detect_file_type(docx_bytes, "a.docx").kind == "docx"
    assert detect_file_type(xlsx_bytes, "a.xlsx").kind == "xlsx"
    plain = make_zip({"notes.txt": b"hello", "data/report.csv": b"a,b"})
    zip_type = detect_file_type(plain, "bundle.zip")
    assert (zip_type.kind, zip_type.label) == ("zip", "ZIP archive")
    assert not zip_type.supported


def test_docx_main_part_beyond_the_head_is_found_in_the_central_directory(
    make_zip: Callable[..., bytes],
) -> None:
    # No [Content_Types].xml hint and 64 KiB of media before word/document.xml: the head
    # alone cannot see the member, the stream's central directory can.
    data = make_zip({"word/document.xml": b"<w:document/>"}, padding_first=64 * 1024)
    assert detect_file_type(data[:HEAD_BYTES], "a.docx").kind == "zip"
    stream = io.BytesIO(data)
    stream.seek(0)
    assert detect_stream_type(stream, "a.docx").kind == "docx"
    assert stream.tell() == 0


def test_content_types_part_identifies_office_files_from_the_head_alone(
    make_zip: Callable[..., bytes],
) -> None:
    content_types = (
        b'<Types><Override PartName="/xl/workbook.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>'
    )
    data = make_zip(
        {
            "[Content_Types].xml": content_types,
            "xl/media/image1.bin": random.Random(1).randbytes(64 * 1024),
            "xl/workbook.xml": b"<workbook/>",
        }
    )
    assert detect_file_type(data[:HEAD_BYTES], "book.xlsx").kind == "xlsx"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("notes.txt", "text"),
        ("README.md", "markdown"),
        ("guide.markdown", "markdown"),
        ("table.csv", "csv"),
        ("no_extension", "text"),
        ("page.html", "html"),
    ],
)
def test_text_kinds_come_from_the_extension(name: str, kind: str) -> None:
    assert detect_file_type("Total: 12,50 €\nDate: 2024-01-31\n".encode(), name).kind == kind


def test_html_is_recognised_by_content_even_with_another_extension() -> None:
    page = b"<!DOCTYPE html>\n<html><body><p>Hi</p></body></html>"
    assert detect_file_type(page, "saved.txt").kind == "html"
    assert detect_file_type(b"  <html lang='en'><p>x</p></html>", "x").kind == "html"
    # Mentioning a tag in prose does not make a file HTML.
    assert detect_file_type(b"Use the <html> tag to start a page.", "notes.md").kind == "markdown"


def test_utf16_with_bom_is_text_and_utf16_without_bom_is_not() -> None:
    text = "Rechnung Nr. 7\nSumme 12,00 €\n"
    assert detect_file_type(codecs.BOM_UTF16_LE + text.encode("utf-16-le"), "r.txt").kind == "text"
    assert detect_file_type(codecs.BOM_UTF16_BE + text.encode("utf-16-be"), "r.csv").kind == "csv"
    assert detect_file_type(text.encode("utf-16-le"), "r.txt").kind == "unknown"


def test_head_cut_inside_a_multibyte_character_is_still_text() -> None:
    data = ("é" * 5000).encode("utf-8")
    assert detect_file_type(data[: HEAD_BYTES - 1], "a.txt").kind == "text"


def test_legacy_8bit_text_is_text_but_control_heavy_bytes_are_not() -> None:
    assert detect_file_type("Größe: 5 €\n".encode("cp1252"), "a.txt").kind == "text"
    assert detect_file_type(b"\x01\x02\x03\x04\x05abc\x06\x07" * 20, "a.txt").kind == "unknown"


def test_empty_content_is_unknown() -> None:
    file_type = detect_file_type(b"", "a.pdf")
    assert (file_type.kind, file_type.label) == ("unknown", "empty file")


def test_supported_kinds() -> None:
    assert {"pdf", "png", "jpeg", "tiff", "docx", "xlsx", "csv", "text", "markdown", "html"} == (
        SUPPORTED_KINDS
    )


def test_extension_mismatch_messages(png_bytes: bytes) -> None:
    assert (
        extension_mismatch("report.pdf", PNG)
        == "report.pdf is not a PDF: its content is a PNG image"
    )
    html = detect_file_type(b"<!doctype html><html></html>", "invoice.pdf")
    assert extension_mismatch("invoice.pdf", html) == (
        "invoice.pdf is not a PDF: its content is an HTML page"
    )
    assert (
        extension_mismatch("photo.PNG", PDF)
        == "photo.PNG is not a PNG image: its content is a PDF document"
    )
    assert extension_mismatch("notes.txt", PDF) == (
        "notes.txt is not a text file: its content is a PDF document"
    )


@pytest.mark.parametrize(
    ("name", "file_type"),
    [
        ("report.pdf", PDF),
        ("scan.JPG", JPEG),
        ("scan.jpeg", JPEG),
        ("notes.txt", HTML),  # text extensions accept any text-like content
        ("data.csv", TEXT),
        ("page.htm", TEXT),
        ("no_extension", PNG),  # nothing promised, nothing contradicted
        ("archive.bin", PDF),  # binary content under an unknown extension: read as what it is
    ],
)
def test_consistent_names_are_not_mismatches(name: str, file_type: FileType) -> None:
    assert extension_mismatch(name, file_type) is None
