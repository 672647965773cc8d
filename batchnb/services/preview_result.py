"""What a preview found: each field's value and evidence, the page texts, and how it looks.

:class:`Preview` is what :func:`~batchnb.services.preview.preview_extraction` returns. In a
notebook it shows a table of the fields (value, confidence, where found), then each page's text
with the span of every value marked (``<mark>``, titled with the field's name), so a reader sees
at a glance what was read from where. Everything is escaped: page texts and values are the
document's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from batchnb.extract.base import JSONValue
from batchnb.extract.schema import Schema
from batchnb.services.display import Html, card, html_or_none, join, note, table, text


@dataclass(frozen=True)
class Evidence:
    """Where a value was found.

    Parameters
    ----------
    page:
        1-based page number.
    start, end:
        Character span in that page's text (``Preview.pages[page - 1][start:end]``), or
        ``None`` when the extractor names only the page.
    raw:
        The text the value was read from, as printed.
    box:
        ``(x0, y0, x1, y1)`` in pixels of the page image around the span, when OCR read the
        page (see :class:`~batchnb.documents.parsed.Word`); ``None`` for text layers.
    """

    page: int
    start: int | None
    end: int | None
    raw: str | None
    box: tuple[int, int, int, int] | None


@dataclass(frozen=True)
class PreviewField:
    """One field of the schema and what was found for it (``value`` ``None``: not found)."""

    name: str
    label: str
    type: str
    value: JSONValue
    confidence: float | None
    evidence: Evidence | None

    @property
    def found(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class Preview:
    """What extracting one document gave, field by field, with the page texts it came from.

    ``document_type``, ``type_confidence`` and ``low_confidence`` are set for the "auto"
    strategy only: the classifier's choice, how sure it was, and whether it was below the
    threshold so the fallback template was used. ``prompt`` is the template prompt "auto"
    chose (``None`` for the other strategies).
    """

    file_name: str
    file_type: str
    fields: tuple[PreviewField, ...]
    pages: tuple[str, ...]
    schema: Schema
    extractor: str
    parser: str
    document_type: str | None = None
    type_confidence: float | None = None
    low_confidence: bool = False
    prompt: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def values(self) -> dict[str, JSONValue]:
        """Field name → value, as a batch's result would hold them."""
        return {field.name: field.value for field in self.fields}

    def field(self, name: str) -> PreviewField:
        """The field called ``name``; :class:`KeyError` when the schema has none."""
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(f"no field {name!r} in the preview; fields: {', '.join(self.schema.names)}")

    def page_text(self, page: int) -> str:
        """The text of page ``page`` (1-based), which evidence spans index into."""
        return self.pages[page - 1]

    def __repr__(self) -> str:
        found = sum(field.found for field in self.fields)
        kind = f", type {self.document_type}" if self.document_type else ""
        return (
            f"Preview({self.file_name!r}: {found} of {len(self.fields)} fields found, "
            f"{len(self.pages)} page{'s' if len(self.pages) != 1 else ''}{kind})"
        )

    def _repr_html_(self) -> str | None:
        return html_or_none(lambda: _card(self))


_PAGE = (
    "white-space:pre-wrap;font-family:monospace;font-size:0.9em;margin:0.3em 0;padding:0.4em;"
    "border:1px solid rgba(128,128,128,0.3);border-radius:4px;max-height:32em;overflow:auto"
)
_MARK = "background:rgba(255,213,0,0.45);color:inherit;border-radius:2px"
MAX_ROWS = 10
"""Rows of an array field shown in the fields table."""
OPEN_PAGES = 2
"""Pages shown unfolded; later ones open on a click."""


def format_value(field: PreviewField) -> Any:
    """A field's value for a person: money with its currency, arrays as a small table."""
    value = field.value
    if value is None:
        return Html("<span style='opacity:0.6'>not found</span>")
    if isinstance(value, dict) and "amount" in value:
        amount = value.get("amount")
        shown = f"{amount:,.2f}" if isinstance(amount, int | float) else str(amount)
        return f"{shown} {value.get('currency') or ''}".strip()
    if isinstance(value, list):
        rows = [row for row in value if isinstance(row, dict)]
        columns = list(rows[0]) if rows else []
        footer = f"{len(rows)} rows" if len(rows) <= MAX_ROWS else f"the first {MAX_ROWS} rows"
        return table(
            columns,
            ([_cell(row.get(column)) for column in columns] for row in rows[:MAX_ROWS]),
            footer=footer,
        )
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def _pages(count: int) -> str:
    return f"{count} page{'s' if count != 1 else ''}"


def _page_section(preview: Preview, number: int) -> Html:
    """A page's marked text, folded; the first pages start open, where values usually are."""
    opened = " open" if number <= OPEN_PAGES else ""
    return Html(
        f"<details{opened} style='margin-top:0.3em'><summary style='cursor:pointer'>"
        f"page {number}</summary>{_page_html(preview, number)}</details>"
    )


def _cell(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict) and "amount" in value:
        amount = value.get("amount")
        return f"{amount:,.2f}" if isinstance(amount, int | float) else amount
    return value


def _where(field: PreviewField) -> str:
    evidence = field.evidence
    if evidence is None:
        return ""
    where = f"page {evidence.page}"
    if evidence.start is not None:
        where += f", characters {evidence.start}:{evidence.end}"
    if evidence.box is not None:
        where += f", box {evidence.box}"
    return where


def _card(preview: Preview) -> Html:
    facts: list[tuple[str, Any]] = [
        ("file", f"{preview.file_name} ({preview.file_type}, {_pages(len(preview.pages))})"),
        ("extractor", f"{preview.extractor} (parser {preview.parser})"),
    ]
    if preview.document_type is not None:
        sure = f"{preview.type_confidence:.0%}" if preview.type_confidence is not None else "?"
        chosen = "fallback template: not sure" if preview.low_confidence else "its template"
        facts.append(("document type", f"{preview.document_type} ({sure}; {chosen})"))
    fields = table(
        ["field", "type", "value", "confidence", "found at"],
        (
            [
                Html(f"<span title='{text(field.label)}'>{text(field.name)}</span>"),
                field.type,
                format_value(field),
                "" if field.confidence is None else f"{field.confidence:.0%}",
                _where(field),
            ]
            for field in preview.fields
        ),
    )
    pages = join(*(_page_section(preview, number) for number in range(1, len(preview.pages) + 1)))
    notes = join(*(note(line) for line in preview.notes))
    return card(f"Preview of {preview.file_name}", facts, after=join(fields, notes, pages))


def _page_html(preview: Preview, number: int) -> Html:
    """The page's text with each field's span marked."""
    spans = [
        (field.evidence.start, field.evidence.end, field.name)
        for field in preview.fields
        if field.evidence is not None
        and field.evidence.page == number
        and field.evidence.start is not None
        and field.evidence.end is not None
    ]
    return Html(f"<div style='{_PAGE}'>{marked_text(preview.pages[number - 1], spans)}</div>")


def marked_text(page: str, spans: Iterable[tuple[int, int, str]]) -> Html:
    """``page`` escaped, each ``(start, end, field)`` span in a ``<mark>`` titled with its
    field (class ``batchnb-evidence``, ``data-field``); overlapping spans are clipped. The
    preview and the document view both mark evidence with it."""
    parts: list[str] = []
    cursor = 0
    for start, end, name in sorted(spans):
        start = max(start, cursor)
        end = min(end, len(page))
        if start >= end:
            continue
        parts.append(text(page[cursor:start]))
        parts.append(
            f"<mark class='batchnb-evidence' data-field='{text(name)}' title='{text(name)}' "
            f"style='{_MARK}'>{text(page[start:end])}</mark>"
        )
        cursor = end
    parts.append(text(page[cursor:]))
    return Html("".join(parts))
