"""From a model's strings to an :class:`ExtractionResult`: typed, grounded values.

The model copies every value as printed (see :mod:`batchnb.extract.llm.prompt`); here dates,
amounts, numbers and yes/no are read from those strings with the same parsers the offline
backend uses, and each value is grounded in the page texts (:mod:`batchnb.extract.llm.grounding`).
A string that cannot be read as its field's type becomes a note, not a wrong value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from batchnb.documents.parsed import ParsedDocument
from batchnb.extract.base import ExtractedValue, ExtractionResult, JSONValue
from batchnb.extract.llm.grounding import UNGROUNDED_CONFIDENCE, Span, ground
from batchnb.extract.schema import Field, Schema
from batchnb.extract.values import (
    DateOrder,
    date_order_hint,
    find_boolean,
    parse_date,
    parse_money,
    parse_number,
)


def build_result(
    data: Mapping[str, Any], document: ParsedDocument, schema: Schema, extractor: str
) -> ExtractionResult:
    """Typed, grounded values for every schema field from a reply read by ``read_reply``.

    Parameters
    ----------
    data:
        Field name → the model's string (or list of row objects for array fields).
    document:
        The document the values are grounded in.
    schema:
        The fields; keys of ``data`` outside it are ignored, missing ones become ``None``.
    extractor:
        The extractor's name, recorded on the result.
    """
    order = date_order_hint(document.text)
    notes: list[str] = []
    values: dict[str, ExtractedValue | None] = {}
    for field in schema.fields:
        if field.type == "array":
            values[field.name] = _array_value(field, data.get(field.name), document, order, notes)
        else:
            found, _ = _scalar_value(field, data.get(field.name), document, order, notes)
            values[field.name] = found
    return ExtractionResult(values=values, extractor=extractor, notes=tuple(notes))


def typed_value(field: Field, raw: str, order: DateOrder | None = None) -> JSONValue:
    """The value of ``raw`` for the field's type, or ``None`` when it cannot be read as one.

    Dates become ISO ``YYYY-MM-DD`` strings (``order`` settles 03/04 day-first or month-first),
    money ``{"amount": float, "currency": code | None}``, numbers floats, booleans bools.
    """
    if field.type == "date":
        return parse_date(raw, order)
    if field.type == "money":
        return parse_money(raw)
    if field.type == "number":
        return parse_number(raw)
    if field.type == "boolean":
        match = find_boolean(raw)
        return None if match is None else match.value
    return raw


def _scalar_value(
    field: Field,
    given: Any,
    document: ParsedDocument,
    order: DateOrder | None,
    notes: list[str],
    after: tuple[int, int] = (1, 0),
    where: str = "",
) -> tuple[ExtractedValue | None, Span | None]:
    raw = _as_text(given)
    if raw is None:
        return None, None
    if isinstance(given, bool) and field.type == "boolean":
        value: JSONValue = given
    else:
        value = typed_value(field, raw, order)
    if value is None:
        notes.append(f"could not read a {field.type} from {raw!r} for {where}{field.name!r}")
        return None, None
    span = ground(raw, document.pages, after)
    if span is None:
        return ExtractedValue(value=value, raw=raw, confidence=UNGROUNDED_CONFIDENCE), None
    page_text = document.pages[span.page - 1].text
    return (
        ExtractedValue(
            value=value,
            raw=page_text[span.start : span.end],
            page=span.page,
            start=span.start,
            end=span.end,
            confidence=span.confidence,
        ),
        span,
    )


def _array_value(
    field: Field,
    given: Any,
    document: ParsedDocument,
    order: DateOrder | None,
    notes: list[str],
) -> ExtractedValue | None:
    """Rows of typed cells; the evidence spans the grounded cells on the first one's page."""
    rows: list[dict[str, JSONValue]] = []
    cells: list[ExtractedValue] = []
    spans: list[Span] = []
    cursor = (1, 0)
    for number, given_row in enumerate(given or (), start=1):
        row: dict[str, JSONValue] = {}
        for sub in field.fields:
            where = f"{field.name}[{number}]."
            found, span = _scalar_value(
                sub, given_row.get(sub.name), document, order, notes, cursor, where
            )
            row[sub.name] = None if found is None else found.value
            if found is not None:
                cells.append(found)
            if span is not None:
                spans.append(span)
                cursor = (span.page, span.end)  # rows follow each other down the page
        if any(value is not None for value in row.values()):
            rows.append(row)
    if not rows:
        return None
    confidence = sum(cell.confidence or 0.0 for cell in cells) / len(cells)
    if not spans:
        return ExtractedValue(value=list(rows), confidence=round(confidence, 3))
    page = spans[0].page
    start = min(span.start for span in spans if span.page == page)
    end = max(span.end for span in spans if span.page == page)
    return ExtractedValue(
        value=list(rows),
        raw=document.pages[page - 1].text[start:end],
        page=page,
        start=start,
        end=end,
        confidence=round(confidence, 3),
    )


def _as_text(given: Any) -> str | None:
    """The model's value as a string, whatever JSON type it used; ``None`` for blank."""
    if given is None:
        return None
    if isinstance(given, bool):
        return "true" if given else "false"
    text = given if isinstance(given, str) else json.dumps(given)
    text = text.strip()
    return text or None
