"""Spreadsheets: Excel workbooks (.xlsx, via openpyxl) and CSV files, as pages with tables.

Every sheet becomes one :class:`Page` whose text is the sheet name on the first line and then
the sheet's cells, tab-separated, one line per row; the same cells are recorded as one
:class:`Table` whose first non-empty row is the header. Values are rendered as text the way a
person reads them: whole numbers without ``.0``, dates in ISO format. Cell counts are capped so
one huge sheet cannot hold a worker or fill its memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence

import openpyxl

from batchnb.documents.office import check_ooxml_container, clean_cell, describe_error
from batchnb.documents.parsed import Page, ParsedDocument, Table
from batchnb.documents.text import PARSER_VERSION, decode_text
from batchnb.errors import DocumentError

#: Cells read from one sheet at most (empty cells inside the used range count too).
MAX_CELLS_PER_SHEET = 100_000
#: Cells read from one workbook, or one CSV file, at most.
MAX_CELLS_PER_WORKBOOK = 1_000_000
#: How much of a CSV file the delimiter sniffer looks at.
CSV_SNIFF_BYTES = 64 * 1024
#: Delimiters the sniffer may choose from (it otherwise picks letters in odd files).
CSV_DELIMITERS = ",;\t|"


def parse_xlsx(data: bytes) -> ParsedDocument:
    """Parse an Excel workbook (.xlsx): one page and one table per worksheet.

    Formulas are read as the values Excel last computed and saved (``data_only``); a formula
    never calculated by Excel (e.g. written by a script) reads as empty. Chart sheets are
    skipped.

    Raises
    ------
    DocumentError
        Encrypted, corrupt or truncated file, ZIP bomb, too many cells, or no text at all.
    """
    check_ooxml_container(data, "Excel workbook")
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # hostile input can fail anywhere inside openpyxl and its parsers
        raise DocumentError(f"not a readable Excel workbook: {describe_error(exc)}") from None
    pages: list[Page] = []
    budget = MAX_CELLS_PER_WORKBOOK
    try:
        for number, sheet in enumerate(workbook.worksheets, start=1):
            # The <dimension> a file declares can be wrong (or huge); read only what is there.
            sheet.reset_dimensions()
            limit = min(MAX_CELLS_PER_SHEET, budget)
            try:
                rows, cells_read = _read_cells(sheet.iter_rows(values_only=True), limit)
            except _TooManyCells:
                scope, cap = (
                    (f"sheet {sheet.title!r} of the Excel workbook", MAX_CELLS_PER_SHEET)
                    if limit == MAX_CELLS_PER_SHEET
                    else ("the Excel workbook", MAX_CELLS_PER_WORKBOOK)
                )
                raise DocumentError(
                    f"too many cells in {scope} (the limit is {cap:,}); "
                    "split it or export the part you need",
                    kind="too_large",
                ) from None
            except Exception as exc:
                raise DocumentError(
                    f"not a readable Excel workbook: sheet {sheet.title!r}: {describe_error(exc)}"
                ) from None
            budget -= cells_read
            pages.append(_sheet_page(number, clean_cell(sheet.title), rows))
    finally:
        workbook.close()
    if not any(page.tables for page in pages):
        raise DocumentError("the Excel workbook is empty (no text in any sheet)", kind="empty")
    return ParsedDocument(
        pages=tuple(pages),
        parser=PARSER_VERSION["xlsx"],
        metadata={"sheets": str(len(pages))},
    )


def parse_csv(data: bytes) -> ParsedDocument:
    """Parse a CSV file: one page holding one table, first non-empty row as its header.

    The text is decoded like a text file; the delimiter is sniffed among ``, ; tab |``
    (comma when the sniffer cannot tell). The page text is the table, tab-separated.

    Raises
    ------
    DocumentError
        Too large, malformed, too many cells, or no text at all.
    """
    text, encoding = decode_text("CSV file", data)
    dialect = _sniff_dialect(text)
    try:
        rows, _ = _read_cells(csv.reader(io.StringIO(text), dialect), MAX_CELLS_PER_WORKBOOK)
    except _TooManyCells:
        raise DocumentError(
            f"too many cells in the CSV file (the limit is {MAX_CELLS_PER_WORKBOOK:,}); "
            "split it or keep only the columns you need",
            kind="too_large",
        ) from None
    except csv.Error as exc:
        raise DocumentError(f"not a readable CSV file: {exc}") from None
    table = _table(rows, start=0)
    if table is None:
        raise DocumentError("the CSV file is empty (no text)", kind="empty")
    return ParsedDocument(
        pages=(Page(1, table.text, (table,)),),
        parser=PARSER_VERSION["csv"],
        metadata={"encoding": encoding, "delimiter": dialect.delimiter},
    )


class _TooManyCells(Exception):
    """Raised inside the cell reader; turned into a DocumentError naming the limit."""


def _read_cells(rows: Iterable[Sequence[object]], limit: int) -> tuple[list[tuple[str, ...]], int]:
    """Render ``rows`` as text, trimming empty cells at the end of each row.

    Returns the rows and how many cells were read. An empty row counts as one cell, so a
    sheet of a million empty rows stops at the limit too.
    """
    result: list[tuple[str, ...]] = []
    read = 0
    for row in rows:
        read += max(len(row), 1)
        if read > limit:
            raise _TooManyCells
        cells = [_render(value) for value in row]
        while cells and not cells[-1]:
            cells.pop()
        result.append(tuple(cells))
    return result, read


def _table(rows: list[tuple[str, ...]], start: int) -> Table | None:
    """The table of ``rows`` placed at ``start``: trailing empty rows and columns trimmed,
    leading empty rows dropped, every row padded to the same width; ``None`` if all empty."""
    first = next((index for index, cells in enumerate(rows) if cells), None)
    if first is None:
        return None
    last = max(index for index, cells in enumerate(rows) if cells)
    kept = rows[first : last + 1]
    width = max(len(cells) for cells in kept)
    padded = [cells + ("",) * (width - len(cells)) for cells in kept]
    return Table.of(padded, header=True).at(start)


def _sheet_page(number: int, title: str, rows: list[tuple[str, ...]]) -> Page:
    first_line = f"Sheet: {title}"
    table = _table(rows, start=len(first_line) + 1)
    if table is None:
        return Page(number, first_line)
    return Page(number, f"{first_line}\n{table.text}", (table,))


def _render(value: object) -> str:
    """A cell value as a person reads it: ``12`` not ``12.0``, dates as ``2024-03-01``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        # Excel shows 15 significant digits; this also turns 0.1+0.2 into 0.3.
        return f"{value:.15g}"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return clean_cell(str(value))


def _sniff_dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    sample = text[:CSV_SNIFF_BYTES]
    if len(text) > CSV_SNIFF_BYTES and "\n" in sample:
        # A line cut in half confuses the sniffer.
        sample = sample[: sample.rindex("\n")]
    try:
        return csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS)
    except csv.Error:
        return csv.excel
