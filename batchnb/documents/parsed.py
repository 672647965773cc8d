"""What a parser returns: pages of text in reading order.

This is the contract between parsers and extractors. The extraction engine issue extends it
(word boxes, tables) without changing what is here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Page:
    """One page of a document. ``number`` starts at 1; ``text`` keeps reading order."""

    number: int
    text: str


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
