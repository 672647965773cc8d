"""The results grid's table: which columns a batch's results have, how they filter, sort and
page, and what one page of rows looks like in the browser.

The rows come from ``batch.results()`` (normal mode) or ``to_dataframe(mode="multi-row")``,
the same typed columns as every export; only the page shown goes to the browser, each row
marked with what a reviewer looks for: failed, flagged by a validation rule, low confidence,
corrected (with the value as extracted), reviewed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from batchnb.formats.rows import ITEM_SEPARATOR
from batchnb.services.document_view import ResultAnnotations
from batchnb.ui.review_cells import percent, shown

CURRENCY_SUFFIX = "_currency"
HIDDEN = frozenset({"batch_id", "corrected", "item_index", "reviewed"})
"""Columns not drawn: the reviewed mark is the row's review button, corrections its cells'."""
META_LABELS = {
    "document_id": "#",
    "file_name": "file",
    "status": "status",
    "error": "error",
    "document_type": "type",
    "type_confidence": "type conf.",
    "confidence": "confidence",
    "reviewed": "reviewed",
}
FILTERS = (
    ("all", "All documents"),
    ("completed", "Completed"),
    ("failed", "Failed"),
    ("flagged", "Flagged by a rule"),
    ("low", "Low confidence"),
    ("corrected", "Corrected"),
    ("unreviewed", "Not reviewed"),
    ("reviewed", "Reviewed"),
)


@dataclass(frozen=True)
class GridColumn:
    """A column of the grid: a document column (``meta``), a field's value, the currency of a
    money field, an array shown whole, or an item field of multi-row mode."""

    key: str
    label: str
    kind: str  # "meta", "field", "currency", "array", "item", "item_currency"
    field: str | None = None
    item: str | None = None
    money: bool = False
    """The amount of a money value (its currency is the next column)."""

    @property
    def editable(self) -> bool:
        return self.kind in ("field", "currency", "item", "item_currency")

    def path(self, item_index: int | None) -> str | None:
        """The correction path this column's cell edits in a row (``None``: not editable)."""
        if self.kind in ("field", "currency"):
            return self.field
        if self.kind in ("item", "item_currency") and item_index is not None:
            return f"{self.field}{ITEM_SEPARATOR}{item_index}{ITEM_SEPARATOR}{self.item}"
        return None

    def state(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "kind": self.kind,
            "editable": self.editable,
            "money": self.money,
        }


def grid_columns(frame: pd.DataFrame) -> list[GridColumn]:
    """The columns to show for ``frame`` (a ``batch.results()`` or multi-row frame)."""
    names = list(frame.columns)
    columns = []
    for name in names:
        if name in HIDDEN or (name == "error" and frame[name].isna().all()):
            continue  # an error column shows only when a document failed
        if name in META_LABELS:
            columns.append(GridColumn(name, META_LABELS[name], "meta"))
            continue
        base = name.removesuffix(CURRENCY_SUFFIX)
        currency = name.endswith(CURRENCY_SUFFIX) and base in names
        if ITEM_SEPARATOR in base:
            top, item = base.split(ITEM_SEPARATOR, 1)
            kind = "item_currency" if currency else "item"
            label = f"{top} · {item}" + (" currency" if currency else "")
            money = not currency and f"{name}{CURRENCY_SUFFIX}" in names
            columns.append(GridColumn(name, label, kind, top, item, money))
        elif currency:
            columns.append(GridColumn(name, f"{base} currency", "currency", base))
        elif frame[name].map(lambda v: isinstance(v, list)).any():
            columns.append(GridColumn(name, name, "array", name))
        else:
            money = f"{name}{CURRENCY_SUFFIX}" in names
            columns.append(GridColumn(name, name, "field", name, money=money))
    return columns


@dataclass
class Query:
    """What the reader asked the grid for."""

    search: str = ""
    filter: str = "all"
    sort: str = ""
    descending: bool = False
    page: int = 0
    page_size: int = 25


@dataclass
class Marks:
    """What the grid marks, beyond the values: per-document annotations (confidence, flags),
    corrected paths, reviewed documents, and each corrected path's value as extracted."""

    annotations: dict[int, ResultAnnotations] = field(default_factory=dict)
    """Read for the pages shown, and for every document by the low-confidence filter."""
    complete: bool = False
    """Whether :attr:`annotations` cover every document of the batch."""
    flags: dict[int, tuple[dict[str, Any], ...]] | None = None
    """Every document's flags, once the flags filter asked for them."""
    corrected: Mapping[int, list[str]] = field(default_factory=dict)
    reviewed: set[int] = field(default_factory=set)
    originals: Mapping[tuple[int, str], Any] = field(default_factory=dict)


def search_text(frame: pd.DataFrame) -> pd.Series:
    """Each row's values as one lower-case text: what the search looks in (made once per
    reading of the results, then searched as often as the reader types). Numbers are there
    as digits (``1234.5``), dates as ISO dates, arrays as their items' values."""
    if not len(frame):
        return pd.Series([], dtype=str)
    text: pd.Series | None = None
    for name in frame.columns:
        if name not in HIDDEN:
            column = _column_text(frame[name])
            text = column if text is None else text + " " + column
    return (text if text is not None else pd.Series("", index=frame.index)).str.lower()


def _column_text(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m-%d").fillna("")
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype(str).replace("nan", "")
    return values.map(_cell_search_text).astype(str)


def _cell_search_text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(shown(v) for item in value if isinstance(item, dict) for v in item.values())
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return shown(value) if isinstance(value, dict) else str(value)


def selected(
    frame: pd.DataFrame,
    query: Query,
    marks: Marks,
    low_confidence: float,
    text: pd.Series | None = None,
) -> pd.DataFrame:
    """``frame`` filtered, searched and sorted as ``query`` asks (all pages). ``text`` is
    :func:`search_text` of ``frame``, made here when not given."""
    rows = frame
    documents = rows["document_id"]
    if query.filter in ("completed", "failed"):
        rows = rows[rows["status"] == query.filter]
    elif query.filter == "flagged":
        flags = marks.flags or {}
        rows = rows[documents.map(lambda d: bool(flags.get(d)))]
    elif query.filter == "low":
        rows = rows[documents.map(lambda d: _is_low(_annotation(marks, d), low_confidence))]
    elif query.filter == "corrected":
        rows = rows[documents.map(lambda d: bool(marks.corrected.get(d)))]
    elif query.filter in ("reviewed", "unreviewed"):
        wanted = query.filter == "reviewed"
        rows = rows[documents.map(lambda d: (d in marks.reviewed) == wanted)]
    needle = query.search.strip().lower()
    if needle and len(rows):
        text = search_text(frame) if text is None else text
        rows = rows[text.loc[rows.index].str.contains(needle, regex=False)]
    if query.sort and query.sort in rows.columns:
        rows = rows.sort_values(
            query.sort,
            ascending=not query.descending,
            na_position="last",
            key=_sort_key,
            kind="stable",
        )
    return rows


def page_rows(
    rows: pd.DataFrame,
    columns: Iterable[GridColumn],
    marks: Marks,
    low_confidence: float,
) -> list[dict[str, Any]]:
    """One page of rows as the browser draws them: each cell's text and its marks."""
    columns = list(columns)
    found = []
    for key, row in rows.iterrows():
        document_id = int(row["document_id"])
        item_index = _item_index(row)
        annotation = _annotation(marks, document_id)
        corrected_paths = marks.corrected.get(document_id, [])
        cells: dict[str, str] = {}
        classes: dict[str, str] = {}
        titles: dict[str, str] = {}
        for column in columns:
            value = row[column.key]
            cells[column.key] = _cell_text(column, value)
            marks_of, title = _cell_marks(
                column, item_index, annotation, corrected_paths, marks, document_id, low_confidence
            )
            if marks_of:
                classes[column.key] = " ".join(marks_of)
            if title:
                titles[column.key] = title
        found.append(
            {
                "key": int(key),  # type: ignore[call-overload]
                "document_id": document_id,
                "item": item_index,
                "status": str(row["status"]),
                "error": shown(row.get("error")),
                "reviewed": document_id in marks.reviewed,
                "flags": [str(flag.get("message", "")) for flag in annotation.flags],
                "cells": cells,
                "classes": classes,
                "titles": titles,
            }
        )
    return found


def _cell_text(column: GridColumn, value: Any) -> str:
    if column.key in ("confidence", "type_confidence"):
        return percent(value)
    if column.key == "reviewed":
        return "✓" if value is True else ""
    if column.money and isinstance(value, int | float) and not pd.isna(value):
        return f"{value:,.2f}"
    return shown(value)


def _cell_marks(
    column: GridColumn,
    item_index: int | None,
    annotation: ResultAnnotations,
    corrected_paths: list[str],
    marks: Marks,
    document_id: int,
    low_confidence: float,
) -> tuple[list[str], str]:
    if column.field is None:
        return [], ""
    classes: list[str] = []
    titles: list[str] = []
    path = column.path(item_index)
    corrected = (
        path in corrected_paths
        if path is not None
        else any(p.startswith(column.field + ITEM_SEPARATOR) for p in corrected_paths)
    )
    if corrected:
        classes.append("corrected")
        original = marks.originals.get((document_id, path or ""))
        if path is not None:
            titles.append(f"corrected; extracted: {shown(original) or 'nothing'}")
        else:
            titles.append("items corrected")
    confidence = annotation.confidence.get(column.field)
    if confidence is not None and confidence < low_confidence and not corrected:
        classes.append("low")
        titles.append(f"low confidence: {percent(confidence)}")
    messages = [str(f.get("message")) for f in annotation.flags if f.get("field") == column.field]
    if messages:
        classes.append("flagged")
        titles.extend(messages)
    return classes, "\n".join(titles)


def _annotation(marks: Marks, document_id: int) -> ResultAnnotations:
    return marks.annotations.get(int(document_id)) or ResultAnnotations()


def _is_low(annotation: ResultAnnotations, threshold: float) -> bool:
    return any(c is not None and c < threshold for c in annotation.confidence.values())


def _item_index(row: pd.Series) -> int | None:
    value = row.get("item_index")
    if value is None or pd.isna(value):
        return None
    return int(value)


def _sort_key(values: pd.Series) -> pd.Series:
    """Numbers and dates sort as themselves; anything else as its text, case-blind."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return values
    return values.map(lambda v: shown(v).lower())
