"""Document fixtures generated on the fly: real PDFs, a valid PNG, Office-like ZIP files."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from batchnb.documents import Plan, Storage


def _make_pdf(*pages: str, encrypt: str | None = None) -> bytes:
    """A PDF with one page per argument; lines of each are drawn as real text."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, encrypt=encrypt)
    for page in pages:
        for index, line in enumerate(page.split("\n")):
            pdf.drawString(72, 720 - 16 * index, line)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _make_png(width: int = 4, height: int = 3) -> bytes:
    """A valid greyscale PNG, built by hand (signature, IHDR, IDAT, IEND)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes((x * 60) % 256 for x in range(width)) for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _make_image_only_pdf() -> bytes:
    """A PDF whose only page holds a raster image and no text at all (like a scan)."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawImage(ImageReader(io.BytesIO(_make_png(40, 30))), 72, 500, width=400, height=300)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _make_zip(members: dict[str, bytes], *, padding_first: int = 0) -> bytes:
    """A ZIP with ``members``; ``padding_first`` bytes of incompressible data go first."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if padding_first:
            noise = random.Random(0).randbytes(padding_first)
            archive.writestr("media/noise.bin", noise)
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


CONTENT_TYPES_DOCX = (
    b'<?xml version="1.0"?><Types><Override PartName="/word/document.xml" ContentType="'
    b'application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
CONTENT_TYPES_XLSX = (
    b'<?xml version="1.0"?><Types><Override PartName="/xl/workbook.xml" ContentType="'
    b'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>'
)


def _make_docx() -> bytes:
    return _make_zip(
        {
            "[Content_Types].xml": CONTENT_TYPES_DOCX,
            "_rels/.rels": b"<Relationships/>",
            "word/document.xml": b"<w:document><w:body>Hello</w:body></w:document>",
        }
    )


def _make_xlsx() -> bytes:
    return _make_zip(
        {
            "[Content_Types].xml": CONTENT_TYPES_XLSX,
            "_rels/.rels": b"<Relationships/>",
            "xl/workbook.xml": b"<workbook><sheets/></workbook>",
        }
    )


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    """Storage in a fresh local folder."""
    return Storage(str(tmp_path / "store"))


@pytest.fixture
def roomy_plan() -> Plan:
    """Generous limits, for tests about something other than limits."""
    return Plan("test", max_files=100, max_file_bytes=10 * 1024 * 1024, max_batch_bytes=10**9)


@pytest.fixture
def make_pdf() -> Callable[..., bytes]:
    """``make_pdf("page one text", "page two", encrypt=None)`` → bytes of a real PDF."""
    return _make_pdf


@pytest.fixture
def make_zip() -> Callable[..., bytes]:
    """``make_zip({"name": b"data"}, padding_first=0)`` → bytes of a ZIP archive."""
    return _make_zip


@pytest.fixture
def png_bytes() -> bytes:
    return _make_png()


@pytest.fixture
def image_only_pdf() -> bytes:
    return _make_image_only_pdf()


@pytest.fixture
def docx_bytes() -> bytes:
    return _make_docx()


@pytest.fixture
def xlsx_bytes() -> bytes:
    return _make_xlsx()
