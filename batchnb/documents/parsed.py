"""What a parser returns: pages of text in reading order.

This is the contract between parsers and extractors. The extraction engine issue extends it
(word boxes, tables) without changing what was here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Table:
    """A table found on a page, with where its text sits in the page's ``text``.

    The page text holds the table as :attr:`text`: the header (if any) and then each row, one
    line per row, cells separated by tabs. So ``page.text[table.start:table.end] == table.text``
    and an extractor can ground a value found in a cell to its offset in the page. Parsers turn
    tabs and line breaks inside a cell into spaces, so cells never contain them.
    """

    rows: tuple[tuple[str, ...], ...]
    header: tuple[str, ...] | None = None
    start: int = 0
    end: int = 0

    @property
    def text(self) -> str:
        """The table as it appears in the page text: tab-separated cells, one line per row."""
        lines = ((self.header,) if self.header is not None else ()) + self.rows
        return "\n".join("\t".join(cells) for cells in lines)

    @classmethod
    def of(cls, rows: Sequence[tuple[str, ...]], *, header: bool) -> Table:
        """A table of ``rows``; ``header``: the first row is the header (the rest are rows)."""
        if header and rows:
            return cls(rows=tuple(rows[1:]), header=rows[0])
        return cls(rows=tuple(rows))

    def at(self, start: int) -> Table:
        """This table placed at ``start`` of its page's text (``end`` follows from its text)."""
        return replace(self, start=start, end=start + len(self.text))


@dataclass(frozen=True)
class Word:
    """A word recognised by OCR, with where it sits in the page text and on the page image.

    ``page.text[word.start:word.end] == word.text``, so a value found in the text can be
    grounded to a box on the page. ``box`` is ``(x0, y0, x1, y1)`` in pixels of the image that
    was recognised (for a PDF page, its rendering at 200 dpi), origin at the top left.
    ``confidence`` is the engine's, from 0 to 1.
    """

    text: str
    start: int
    end: int
    box: tuple[int, int, int, int]
    confidence: float


@dataclass(frozen=True)
class Page:
    """One page of a document. ``number`` starts at 1; ``text`` keeps reading order.

    ``tables`` are the tables on the page (spreadsheets, Word tables), in reading order.
    ``words`` are set only for pages read by OCR.
    """

    number: int
    text: str
    tables: tuple[Table, ...] = ()
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class ParsedDocument:
    """The text of a document, page by page, and the parser that produced it."""

    pages: tuple[Page, ...]
    parser: str
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """All pages joined by form feeds (a page break that never occurs inside a page)."""
        return "\f".join(page.text for page in self.pages)

    @property
    def page_count(self) -> int:
        return len(self.pages)
