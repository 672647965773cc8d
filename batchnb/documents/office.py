"""Office Open XML files: the ZIP container guard shared by DOCX and XLSX, and the DOCX parser.

DOCX and XLSX files are ZIP archives of XML parts. Before python-docx or openpyxl see one,
:func:`check_ooxml_container` reads the ZIP's central directory (cheap: nothing is unpacked)
and refuses archives that would unpack to too much data or compress suspiciously well, so a
small ZIP bomb cannot hold a worker or fill its memory. Both libraries read parts through
:mod:`zipfile`, which never returns more bytes than a member's declared size, so checking the
declared sizes also bounds what is actually unpacked.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import docx
from docx.oxml.ns import qn
from docx.table import Table as DocxTable
from docx.text.paragraph import Paragraph

from batchnb.documents.parsed import Page, ParsedDocument, Table
from batchnb.documents.pdf_tables import reads_like_header
from batchnb.documents.text import PARSER_VERSION
from batchnb.errors import DocumentError

#: An Office file whose parts unpack to more than this is refused.
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
#: A part unpacking to more than this many times its compressed size is refused once it is
#: larger than :data:`RATIO_CHECK_FROM_BYTES`. Apache POI uses the same 100:1 default for
#: Office files; real XML parts compress 5-30 times.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_FROM_BYTES = 1024 * 1024
#: Archives with more members than this are refused (a DOCX has a few dozen).
MAX_ZIP_MEMBERS = 10_000

# Encrypted Office files (and legacy .doc/.xls) are OLE2 compound files, not ZIP archives.
_OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def check_ooxml_container(data: bytes, what: str) -> None:
    """Refuse ``data`` unless it is a ZIP archive that is safe to unpack.

    Parameters
    ----------
    data
        The bytes of a DOCX or XLSX file.
    what
        How to name the document in messages, e.g. ``"Word document"``.

    Raises
    ------
    DocumentError
        Encrypted (or legacy binary) file, not a ZIP archive, too many members, too large
        when unpacked, or a member that compresses suspiciously well (a ZIP bomb).
    """
    if data.startswith(_OLE2_SIGNATURE):
        raise DocumentError(
            f"the {what} is encrypted/password-protected (or an old binary Office file): "
            "save an unprotected copy in the current format (.docx/.xlsx) and add that instead",
            kind="encrypted",
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise DocumentError(
            f"not a readable {what}: the file is corrupt or truncated ({exc})"
        ) from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise DocumentError(
            f"not a readable {what}: its archive has {len(members):,} parts "
            f"(the limit is {MAX_ZIP_MEMBERS:,})",
            kind="too_large",
        )
    unpacked = sum(member.file_size for member in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise DocumentError(
            f"the {what} is too large when unpacked: {unpacked / 1024 / 1024:,.0f} MiB "
            f"(the limit is {MAX_UNPACKED_BYTES // 1024 // 1024} MiB); it may be a ZIP bomb",
            kind="too_large",
        )
    for member in members:
        if member.file_size <= RATIO_CHECK_FROM_BYTES:
            continue
        ratio = member.file_size / max(member.compress_size, 1)
        if ratio > MAX_COMPRESSION_RATIO:
            raise DocumentError(
                f"the {what} looks like a ZIP bomb: its part {member.filename!r} unpacks to "
                f"{ratio:,.0f} times its compressed size (the limit is {MAX_COMPRESSION_RATIO})",
                kind="too_large",
            )


def clean_cell(text: str) -> str:
    """A cell's text on one line: tabs, line and page breaks become spaces (see ``Table``)."""
    return text.translate(_CELL_BREAKS).strip()


_CELL_BREAKS = str.maketrans({"\t": " ", "\n": " ", "\r": " ", "\f": " ", "\v": " "})


def parse_docx(data: bytes) -> ParsedDocument:
    """Parse a Word document (.docx) into one page: paragraphs and tables in body order.

    DOCX has no fixed pages (pagination happens when Word lays the document out), so the
    whole body is one :class:`Page`. Each table is written into the page text as
    tab-separated lines and recorded as a :class:`Table` with its offsets. Headers, footers,
    footnotes, comments and text boxes are not read.

    Raises
    ------
    DocumentError
        Encrypted, corrupt or truncated file, ZIP bomb, or no text at all.
    """
    check_ooxml_container(data, "Word document")
    try:
        document = docx.Document(io.BytesIO(data))
        parts, tables = _body(document.iter_inner_content())
    except Exception as exc:  # hostile input can fail anywhere inside python-docx and lxml
        raise DocumentError(f"not a readable Word document: {describe_error(exc)}") from None
    if not parts:
        raise DocumentError("the Word document is empty (no text)", kind="empty")
    text = "\n".join(parts)
    return ParsedDocument(
        pages=(Page(1, text, tuple(tables)),),
        parser=PARSER_VERSION["docx"],
        metadata={"tables": str(len(tables))},
    )


def _body(blocks: Iterator[Paragraph | DocxTable]) -> tuple[list[str], list[Table]]:
    """The non-empty blocks' texts (to be joined by newlines) and the tables at their offsets."""
    parts: list[str] = []
    tables: list[Table] = []
    offset = 0
    for block in blocks:
        if isinstance(block, Paragraph):
            text = _paragraph_text(block)
            if not text.strip():
                continue
            table = None
        else:
            rows = tuple(_table_rows(block))
            if not any(any(cells) for cells in rows):
                continue
            table = Table.of(rows, header=_has_header_row(block, rows))
            text = table.text
        if parts:
            offset += 1  # the newline joining this block to the previous one
        if table is not None:
            tables.append(table.at(offset))
        parts.append(text)
        offset += len(text)
    return parts, tables


def _paragraph_text(paragraph: Paragraph) -> str:
    # A form feed would read as a page break in ParsedDocument.text.
    return paragraph.text.replace("\r", "\n").replace("\f", "\n")


def _table_rows(table: DocxTable) -> Iterator[tuple[str, ...]]:
    """Each row's cell texts; a merged cell appears once (python-docx repeats it per column)."""
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            # Horizontally merged cells come back as the same <w:tc> once per grid column.
            if previous is not None and cell._tc is previous:
                continue
            previous = cell._tc
            cells.append(clean_cell(cell.text))
        yield tuple(cells)


def _has_header_row(table: DocxTable, rows: tuple[tuple[str, ...], ...]) -> bool:
    """Whether the first row is the header: marked "repeat as header row" (``w:tblHeader``)
    in Word, or reading like an item table's header ("Description | Qty | Price") by the PDF
    table reader's own test, since few documents set the flag."""
    if len(rows) < 2:
        return False
    if reads_like_header(rows[0]):
        return True
    trPr = table.rows[0]._tr.trPr
    if trPr is None:
        return False
    marks = trPr.xpath("./w:tblHeader")
    if not marks:
        return False
    value = marks[0].get(qn("w:val"))
    return value not in ("0", "false", "off")


def describe_error(exc: Exception) -> str:
    """A short, readable reason for a library error (some carry no message at all)."""
    message = str(exc).strip() or type(exc).__name__
    return message if len(message) <= 200 else message[:200] + "..."
