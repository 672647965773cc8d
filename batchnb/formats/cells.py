"""Cell encoding for exports: JSON text, formula neutralising, Excel limits and sheet titles.

Spreadsheet programs run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some, a
tab or carriage return) as a formula: an extracted value such as ``=HYPERLINK(...)`` could then
act when the file is opened. Text cells of CSV and Excel exports are prefixed with ``'`` so they
stay text; real numbers are numbers, not text, and are left alone.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

EXCEL_MAX_CELL_CHARS = 32_767
TRUNCATION_MARKER = "…[truncated]"
EXCEL_MAX_SHEET_TITLE = 31

# Control characters that an .xlsx file cannot hold (openpyxl refuses them).
_ILLEGAL_XLSX_RE = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")
_BAD_TITLE_RE = re.compile(r"[\[\]:*?/\\]")


def json_default(value: Any) -> Any:
    """``json.dumps`` hook: dates as ISO strings, anything else as its text."""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, default=json_default)


def json_text(value: Any) -> str:
    """Compact JSON text of a value (non-ASCII kept as is), as ``json.dumps`` writes it."""
    return _JSON_ENCODER.encode(value)


def neutralise(text: str) -> str:
    """``text`` prefixed with ``'`` when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


CSV_AS_IS = frozenset({type(None), int, float, dt.date})
"""Types the csv module writes as :func:`text_cell` would (``None`` empty, dates ISO): a writer
may skip the call for them."""
XLSX_AS_IS = frozenset({type(None), bool, int, float, dt.date})
"""Types :func:`xlsx_cell` returns unchanged: a writer may skip the call for them."""


def text_cell(value: Any) -> Any:
    """A CSV cell: empty for ``None``, ISO dates, ``true``/``false``, JSON for lists and dicts."""
    if isinstance(value, str):
        return neutralise(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    return neutralise(json_text(value))


def xlsx_cell(value: Any) -> Any:
    """An Excel cell: numbers, dates and booleans typed; text neutralised and cut to fit."""
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool | int | float | dt.date):
        return value
    else:
        text = json_text(value)
    if not text.isprintable():  # printable text holds no control character: skip the regex
        text = _ILLEGAL_XLSX_RE.sub("\ufffd", text)
    return truncate(neutralise(text))


def truncate(text: str, limit: int = EXCEL_MAX_CELL_CHARS) -> str:
    """``text`` cut to ``limit`` characters, ending with :data:`TRUNCATION_MARKER` when cut.

    Excel counts UTF-16 code units, so a character outside the Basic Multilingual Plane (most
    emoji) counts twice.
    """
    if len(text) <= limit // 2 or _utf16_length(text) <= limit:
        return text
    budget = limit - len(TRUNCATION_MARKER)
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > budget:
            return text[:index] + TRUNCATION_MARKER
    return text


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def sheet_title(base: str, number: int, used: set[str]) -> str:
    """A valid, unused Excel sheet title: ``base`` or ``base (number)``, at most 31 characters.

    Characters Excel forbids (``[ ] : * ? / \\``) are dropped; ``used`` holds the lower-cased
    titles taken so far (Excel compares titles without case).
    """
    clean = _BAD_TITLE_RE.sub("", base).strip("' ") or "Sheet"
    while True:
        suffix = "" if number == 1 else f" ({number})"
        title = clean[: EXCEL_MAX_SHEET_TITLE - len(suffix)].rstrip("' ") + suffix
        if title.lower() not in used:
            return title
        number += 1
