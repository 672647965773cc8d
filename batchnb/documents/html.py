"""HTML pages to :class:`~batchnb.documents.parsed.ParsedDocument`: visible text and data tables.

Block elements go on their own lines, scripts and styles are dropped, and data tables are
written like Word tables (cells tab-separated, one row per line) with their offsets recorded.
A table holding another table lays out the page: it stays text, and only the tables inside it
are recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from itertools import accumulate

from batchnb.documents.parsed import Page, ParsedDocument, Table
from batchnb.documents.pdf_tables import reads_like_header
from batchnb.documents.text import PARSER_VERSION, decode_text
from batchnb.errors import DocumentError


def parse_html(data: bytes) -> ParsedDocument:
    """Parse an HTML page: its visible text, and its data tables placed in that text."""
    source, encoding = decode_text("HTML page", data)
    extractor = _HtmlText()
    extractor.feed(source)
    extractor.close()
    text, tables = extractor.text_and_tables()
    if not text:
        raise DocumentError("the HTML page has no visible text", kind="empty")
    return ParsedDocument(
        pages=(Page(1, text, tables),),
        parser=PARSER_VERSION["html"],
        metadata={"encoding": encoding, "tables": str(len(tables))},
    )


class _HtmlTable:
    """A ``<table>`` being read: its rows of cell texts, and the text outside its cells.

    A table holding another table lays out the page rather than listing data: it stays
    text, line by line, and only the tables inside it are recorded.
    """

    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []
        self.loose: list[str] = []  # a caption, stray text between rows
        self.layout = False
        self.header_cells = False  # the first row is all <th>
        self._row: list[str] | None = None
        self._row_th = True
        self._cell: list[str] | None = None

    def data(self, text: str) -> None:
        (self._cell if self._cell is not None else self.loose).append(text)

    def open_cell(self, tag: str) -> None:
        if self._row is None:
            self.open_row()
        self.close_cell()
        self._cell = []
        self._row_th = self._row_th and tag == "th"

    def close_cell(self) -> None:
        if self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
        self._cell = None

    def open_row(self) -> None:
        self.close_row()
        self._row, self._row_th = [], True

    def close_row(self) -> None:
        self.close_cell()
        if self._row is not None and any(self._row):
            if not self.rows:
                self.header_cells = self._row_th
            self.rows.append(tuple(self._row))
        self._row = None

    def as_table(self) -> Table | None:
        """The data table, its header being a first row of ``<th>`` or one that reads like an
        item table's header; ``None`` for a layout table or one without text."""
        self.close_row()
        if self.layout or not self.rows:
            return None
        rows = self.rows
        header = len(rows) > 1 and (self.header_cells or reads_like_header(rows[0]))
        return Table.of(rows, header=header)


@dataclass(frozen=True)
class _TableMark:
    """Where a table opens or closes among the collected text parts."""

    table: _HtmlTable
    end: bool


class _HtmlText(HTMLParser):
    """Visible text of an HTML page: block elements on their own lines, scripts dropped.

    Data tables are written like Word tables (cells tab-separated, one line per row) and
    recorded with their offsets, as the :class:`Table` contract asks.
    """

    _SKIP = frozenset({"script", "style", "template"})
    _BLOCK = frozenset(
        {
            "address", "article", "aside", "blockquote", "br", "caption", "dd", "div", "dl",
            "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
            "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
            "section", "table", "tbody", "thead", "tfoot", "title", "tr", "ul",
        }
    )  # fmt: skip
    _CELL = frozenset({"td", "th"})
    _SPACES = re.compile(r"[^\S\n]+")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str | _TableMark] = []
        self._tables: list[_HtmlTable] = []  # the open tables, innermost last
        self._skipping = 0
        self._preformatted = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag == "table":
            for outer in self._tables:
                outer.layout = True
            self._tables.append(_HtmlTable())
            self._parts.append(_TableMark(self._tables[-1], end=False))
        elif self._tables and tag == "tr":
            self._tables[-1].open_row()
        elif self._tables and tag in self._CELL:
            self._tables[-1].open_cell(tag)
        self._break(tag)
        if tag == "pre":
            self._preformatted += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCK:
            self._append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag == "table" and self._tables:
            self._parts.append(_TableMark(self._tables.pop(), end=True))
        elif self._tables and tag == "tr":
            self._tables[-1].close_row()
        elif self._tables and tag in self._CELL:
            self._tables[-1].close_cell()
        self._break(tag)
        if tag == "pre":
            self._preformatted = max(0, self._preformatted - 1)

    def _break(self, tag: str) -> None:
        if tag in self._SKIP:
            return
        if tag in self._BLOCK:
            self._append("\n")
        elif tag in self._CELL:
            self._append(" ")

    def _append(self, text: str) -> None:
        self._parts.append(text)
        if self._tables:
            # Inside a cell a line break is a space: a row stays on one line.
            self._tables[-1].data(" " if text == "\n" else text)

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        # Outside <pre>, a newline in the source is just a space.
        self._append(data if self._preformatted else re.sub(r"\s", " ", data))

    def text_and_tables(self) -> tuple[str, tuple[Table, ...]]:
        """The page text (one line per block, spaces collapsed, blank lines dropped) and the
        data tables placed in it."""
        for open_table in self._tables:
            open_table.close_row()
        lines: list[str] = []
        placed: list[tuple[int, Table]] = []
        texts: list[str] = []
        inside: _HtmlTable | None = None  # the data table whose parts are being skipped
        for part in self._parts:
            if inside is not None:
                inside = None if isinstance(part, _TableMark) and part.table is inside else inside
            elif isinstance(part, str):
                texts.append(part)
            elif not part.end and (table := part.table.as_table()) is not None:
                lines += self._lines(texts) + self._lines(part.table.loose)
                texts = []
                placed.append((len(lines), table))
                lines.append(table.text)
                inside = part.table
        lines += self._lines(texts)
        offsets = list(accumulate((len(line) + 1 for line in lines), initial=0))
        return "\n".join(lines), tuple(table.at(offsets[index]) for index, table in placed)

    def _lines(self, parts: list[str]) -> list[str]:
        lines = (self._SPACES.sub(" ", line).strip() for line in "".join(parts).split("\n"))
        return [line for line in lines if line]
