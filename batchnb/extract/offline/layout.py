"""A page's text as lines with offsets: what the offline extractor's readers walk over.

Each :class:`Line` keeps where it starts in the page text, so a value read from a line maps
back to an exact page span; ``folded`` is the same line without accents (same length), on
which labels are matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from batchnb.extract.values import ValueMatch
from batchnb.extract.words import fold


@dataclass(frozen=True)
class Line:
    """A non-blank line of a page: its text and where it starts in the page text."""

    page: int
    start: int
    text: str
    lower: str
    folded: str
    """``text`` without accents (same length): labels are matched on it."""


@dataclass(frozen=True)
class PageLines:
    """A page's text and its non-blank lines."""

    number: int
    text: str
    lower: str
    lines: tuple[Line, ...]

    @classmethod
    def of(cls, number: int, text: str) -> PageLines:
        lines = tuple(
            Line(number, match.start(), line, line.lower(), fold(line))
            for match in re.finditer(r"[^\r\n]+", text)
            if (line := match.group()).strip()
        )
        return cls(number, text, fold(text).lower(), lines)


def line_value(line: Line) -> ValueMatch:
    """A whole line as a text value, without its surrounding whitespace (page offsets)."""
    stripped = line.text.strip()
    start = line.start + line.text.index(stripped)
    return ValueMatch(stripped, start, start + len(stripped))


def span_value(line: Line, start: int, end: int) -> ValueMatch | None:
    """``line.text[start:end]`` without surrounding whitespace, in page offsets."""
    piece = line.text[start:end]
    stripped = piece.strip()
    if not stripped:
        return None
    begin = line.start + start + piece.index(stripped)
    return ValueMatch(stripped, begin, begin + len(stripped))
