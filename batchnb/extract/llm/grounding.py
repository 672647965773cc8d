"""Grounding: where a value a model copied is printed in the document's pages.

A model says what a value is, not where it stands. Searching the page texts for the copied
string gives the value a page and a character span like the offline extractor's, and tells how
much to trust it: found exactly, found ignoring case and whitespace, or not found at all (the
model may have reformatted or invented it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from batchnb.documents.parsed import Page

EXACT_CONFIDENCE = 0.9
"""The value was found in the page text exactly as the model copied it."""
LOOSE_CONFIDENCE = 0.8
"""Found, but only ignoring case and whitespace."""
UNGROUNDED_CONFIDENCE = 0.4
"""Not found in the text: the model may have reformatted or invented it."""


@dataclass(frozen=True)
class Span:
    """Where a value is printed: ``pages[page - 1].text[start:end]``; ``exact`` if verbatim."""

    page: int
    start: int
    end: int
    exact: bool

    @property
    def confidence(self) -> float:
        """The confidence a value found here deserves."""
        return EXACT_CONFIDENCE if self.exact else LOOSE_CONFIDENCE


def ground(raw: str, pages: tuple[Page, ...], after: tuple[int, int] = (1, 0)) -> Span | None:
    """Where ``raw`` is printed: exactly first, then ignoring case and runs of whitespace.

    The search starts at ``after`` (page, offset) and then covers the whole document, so table
    cells are found in reading order rather than at an earlier, unrelated occurrence.
    """
    words = raw.split()
    if not words:
        return None
    loose = re.compile(r"\s+".join(re.escape(word) for word in words), re.IGNORECASE)
    for exact in (True, False):
        for page, offset in _search_order(pages, after):
            if exact:
                start = page.text.find(raw, offset)
                if start >= 0:
                    return Span(page.number, start, start + len(raw), True)
            else:
                match = loose.search(page.text, offset)
                if match:
                    return Span(page.number, match.start(), match.end(), False)
    return None


def _search_order(pages: tuple[Page, ...], after: tuple[int, int]) -> list[tuple[Page, int]]:
    page_number, offset = after
    order = [(page, offset if page.number == page_number else 0) for page in pages]
    later = [(page, start) for page, start in order if page.number >= page_number]
    return later + [(page, 0) for page in pages if page.number <= page_number]
