"""What every parser shares: the parsers' versions, and decoding text bytes of unknown encoding.

The office, spreadsheet and plain-text parsers all need these, so they live below all of them.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from types import MappingProxyType

from batchnb.errors import DocumentError

#: Version of the parser used for each kind; part of the result cache key, so bump it when
#: a parser's output changes.
PARSER_VERSION: Mapping[str, str] = MappingProxyType(
    {
        "pdf": "pypdfium2-1",
        "text": "text-1",
        "csv": "csv-2",
        "markdown": "markdown-1",
        "html": "html-2",
        "docx": "python-docx-2",
        "xlsx": "openpyxl-2",
        "png": "ocr-1",
        "jpeg": "ocr-1",
        "tiff": "ocr-1",
    }
)

#: Appended to a PDF's parser version when its tables were read (``tables=True``); part of a
#: PDF's result cache key. 2: header cells split where the rows keep a gap, an amount on an
#: item's second line, detail lines, section subtotals, lines after the last amount.
PDF_TABLES_VERSION = "pdfplumber-tables-2"
#: Text and HTML larger than this are refused (decoded text costs several times its bytes).
MAX_TEXT_BYTES = 64 * 1024 * 1024


def decode_text(what: str, data: bytes) -> tuple[str, str]:
    """Decode text bytes: BOM first, then UTF-8, then cp1252, then latin-1.

    Returns the text (newlines normalised) and the encoding used. Raises ``DocumentError``
    naming ``what`` (e.g. ``"text file"``) when the data is too large or has no text.
    """
    if len(data) > MAX_TEXT_BYTES:
        raise DocumentError(
            f"the {what} is too large to parse: {len(data) / 1024 / 1024:.1f} MiB "
            f"(the limit is {MAX_TEXT_BYTES // 1024 // 1024} MiB)",
            kind="too_large",
        )
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates: tuple[str, ...] = ("utf-16",)
    else:
        candidates = ("utf-8-sig", "cp1252", "latin-1")
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        break
    else:
        raise DocumentError(f"the {what} is not valid UTF-16 despite its byte order mark")
    text = normalise_newlines(text)
    if not text.strip():
        raise DocumentError(f"the {what} is empty (no text)", kind="empty")
    return text, "utf-8" if encoding == "utf-8-sig" else encoding


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
