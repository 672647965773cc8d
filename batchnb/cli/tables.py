"""Tables for a terminal: short cells, the terminal's width, and a count of what is left out.

Every command that prints a DataFrame goes through :func:`render`. A cell shows what a reader
needs at a glance: an array as "3 items", a record as its first keys, a date without a
midnight time, a moment to the second, long text cut with "…". Columns narrow to fit the
terminal; those that still do not fit are left out and named below the table, as are rows
past ``max_rows``. ``--json`` or an export gives everything.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

MAX_CELL = 40
MIN_CELL = 16
GAP = "  "
ELLIPSIS = "…"


def render(
    frame: pd.DataFrame,
    *,
    max_rows: int | None = None,
    width: int | None = None,
    see_all: str = "use --json for every value",
) -> str:
    """The frame as aligned text at most ``width`` characters wide (default: the terminal's)."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    hidden_rows = 0
    if max_rows is not None and len(frame) > max_rows:
        hidden_rows = len(frame) - max_rows
        frame = frame.head(max_rows)
    columns = [str(column) for column in frame.columns]
    cells = [[cell_text(value) for value in row] for row in frame.itertuples(index=False)]
    numeric = [_is_numeric_column(frame[column]) for column in frame.columns]
    widths = [
        min(MAX_CELL, max([len(name), *(len(row[i]) for row in cells)]))
        for i, name in enumerate(columns)
    ]
    shown = _fit(widths, columns, width)
    lines = [
        _line([columns[i] for i in range(shown)], widths, numeric),
        *(_line(row[:shown], widths, numeric) for row in cells),
    ]
    notes = []
    if shown < len(columns):
        left_out = columns[shown:]
        notes.append(f"{_count(len(left_out), 'more column')}: {', '.join(left_out)}")
    if hidden_rows:
        notes.append(_count(hidden_rows, "more row"))
    if notes:
        lines.append(f"({'; '.join(notes)}; {see_all})")
    return "\n".join(lines)


def cell_text(value: Any) -> str:
    """One value as a short single line."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or _is_missing(value):
        return ""
    if isinstance(value, datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.date().isoformat()
        return value.replace(microsecond=0, tzinfo=None).isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        inner = ", ".join(f"{key}: {cell_text(item)}" for key, item in value.items())
        return _cut("{" + inner + "}")
    if (isinstance(value, Sequence) and not isinstance(value, str | bytes)) or _is_array(value):
        return _count(len(value), "item")
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e15 else str(value)
    return _cut(" ".join(str(value).split()))


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def _cut(text: str, limit: int = MAX_CELL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def _is_missing(value: Any) -> bool:
    # pandas' NaT and NA, without importing pandas for a plain value.
    return type(value).__name__ in ("NaTType", "NAType")


def _is_array(value: Any) -> bool:
    return type(value).__name__ == "ndarray"


def _is_numeric_column(column: pd.Series) -> bool:
    return column.dtype.kind in "iuf"


def _fit(widths: list[int], headers: list[str], width: int) -> int:
    """Narrow the widest columns until the table fits; return how many columns are shown.

    No column narrows below its header (or :data:`MIN_CELL`), so every column shown can be
    read; columns that still do not fit are left out from the right.
    """
    floors = [
        min(natural, max(MIN_CELL, len(header)))
        for natural, header in zip(widths, headers, strict=True)
    ]

    def total(count: int) -> int:
        return sum(widths[:count]) + len(GAP) * (count - 1)

    while total(len(widths)) > width:
        room = [natural - floor for natural, floor in zip(widths, floors, strict=True)]
        if max(room) <= 0:
            break
        widths[room.index(max(room))] -= 1
    shown = len(widths)
    while shown > 1 and total(shown) > width:
        shown -= 1
    return shown


def _line(cells: list[str], widths: list[int], numeric: list[bool]) -> str:
    parts = []
    for i, cell in enumerate(cells):
        text = _cut(cell, widths[i])
        parts.append(text.rjust(widths[i]) if numeric[i] else text.ljust(widths[i]))
    return GAP.join(parts).rstrip()
