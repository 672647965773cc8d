"""A page's text as lines with offsets: what the offline extractor's readers walk over.

Each :class:`Line` keeps where it starts in the page text, so a value read from a line maps
back to an exact page span; ``folded`` is the same line without accents (same length), on
which labels are matched.

A :class:`PageLines` is built once per page and document and shared by every field of the
schema: the label search asks it which lines hold a label's first word
(:meth:`PageLines.lines_with`), which it answers from the page's folded text with a cached
substring search instead of looking at every line for every label.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from dataclasses import dataclass

from batchnb.extract.values import ValueMatch
from batchnb.extract.words import fold

_LINE = re.compile(r"[^\r\n]+")


@dataclass(frozen=True)
class Line:
    """A non-blank line of a page: its text and where it starts in the page text."""

    page: int
    start: int
    text: str
    folded: str
    """``text`` without accents (same length): labels are matched on it."""


class PageLines:
    """A page's text and its non-blank lines.

    ``lower`` is the page's folded text in lowercase. ``line_starts`` are the lines' offsets,
    for finding the line of a page offset by bisection. A :class:`Line` is made when it is
    first asked for (:meth:`line`, :attr:`lines`): the label search reads a few lines of a page.
    """

    def __init__(self, number: int, text: str) -> None:
        self.number = number
        self.text = text
        self.lower = fold(text).lower()
        starts, ends = _line_spans(text)
        self.line_starts = starts
        self._ends = ends
        self._made: list[Line | None] = [None] * len(starts)
        # Line indexes per searched keyword: every field asking for "total" shares one search.
        self._found: dict[tuple[str, bool], tuple[int, ...]] = {}

    @classmethod
    def of(cls, number: int, text: str) -> PageLines:
        return cls(number, text)

    @property
    def line_count(self) -> int:
        """The number of non-blank lines."""
        return len(self.line_starts)

    def line(self, index: int) -> Line:
        """The ``index``-th non-blank line."""
        made = self._made[index]
        if made is None:
            start, end = self.line_starts[index], self._ends[index]
            text = self.text[start:end]
            made = self._made[index] = Line(self.number, start, text, fold(text))
        return made

    @functools.cached_property
    def lines(self) -> tuple[Line, ...]:
        """Every non-blank line, in order."""
        return tuple(self.line(index) for index in range(len(self.line_starts)))

    def lines_with(self, keyword: str, word_start: bool = False) -> tuple[int, ...]:
        """Indexes of the lines whose folded lowercase text contains ``keyword``, in order.

        ``word_start``: only where the keyword opens its line or follows whitespace or one of
        ``( [ | *``, the only places a label pattern (see
        :func:`~batchnb.extract.offline.labels.label_pattern`) can start.

        Found with substring searches over the whole page's ``lower`` text, so a page is read
        once per keyword, not once per line. ``keyword`` must be ASCII without a line break.
        Matching the page's lowercase text is the same as matching each line's only when
        lowercasing kept every character's length; otherwise each line is lowered on its own
        (and ``word_start`` is not checked). A dotless i (U+0131) also turns ``word_start``
        off: case-insensitive patterns match it as "i" though no lowercase keyword contains it.
        """
        key = (keyword, word_start)
        found = self._found.get(key)
        if found is not None:
            return found
        if not keyword or len(self.lower) != len(self.text):
            found = tuple(
                index for index, line in enumerate(self.lines) if keyword in line.folded.lower()
            )
        else:
            word_start = word_start and "\u0131" not in self.lower
            indexes: list[int] = []
            position = self.lower.find(keyword)
            while position >= 0:
                index = bisect.bisect_right(self.line_starts, position) - 1
                if word_start and not _opens_word(self.lower, position, self.line_starts[index]):
                    position = self.lower.find(keyword, position + 1)
                    continue
                indexes.append(index)
                # The next occurrence on another line: one line is searched once.
                position = self.lower.find(keyword, self._ends[index])
            found = tuple(indexes)
        self._found[key] = found
        return found

    def line_index(self, offset: int) -> int:
        """Index of the last line starting at or before page offset ``offset``."""
        return bisect.bisect_right(self.line_starts, offset) - 1


def distinct_words(lower: str) -> str:
    """The whitespace-separated words of ``lower``, each once, joined by spaces.

    A word without whitespace (every label word is one) lies inside one of the text's words,
    so it is in this string exactly when it is in ``lower``, which is often several times
    longer: item tables repeat their words on every row.
    """
    return " ".join(dict.fromkeys(lower.split()))


def _line_spans(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Where each non-blank line (a run of characters other than CR and LF) starts and ends.

    Text without CR is split on LF by ``str.split``, quicker than a pattern that finds the runs.
    """
    if "\r" in text:
        spans = [match.span() for match in _LINE.finditer(text) if not match.group().isspace()]
        return tuple([start for start, _ in spans]), tuple([end for _, end in spans])
    parts = text.split("\n")
    lengths = list(map(len, parts))
    ends = list(itertools.accumulate(lengths))  # without the line breaks before each part
    kept = [index for index, part in enumerate(parts) if part and not part.isspace()]
    return (
        tuple([ends[index] + index - lengths[index] for index in kept]),
        tuple([ends[index] + index for index in kept]),
    )


def _opens_word(text: str, position: int, line_start: int) -> bool:
    """Whether a label may start at ``position``: see :meth:`PageLines.lines_with`."""
    if position == line_start:
        return True
    before = text[position - 1]
    return before.isspace() or before in "([|*"


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
