"""A contract test kit for extractors: one call checks what batchnb relies on.

Plugin authors run it in their own test suites (batchnb runs it against its built-ins)::

    from batchnb.testing import check_extractor

    def test_my_extractor_keeps_the_contract():
        check_extractor(MyExtractor())

:func:`check_extractor` runs the extractor on a few sample documents (an English invoice with
header fields and a line-item table, a two-page German invoice, a till receipt) or on yours,
and checks every result: exactly the schema's fields; values typed per field type and
JSON-able; spans that point at the raw text; confidences within 0..1. It raises one
``AssertionError`` listing every problem found, so a single run shows all there is to fix.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from batchnb.documents.parsed import Page, ParsedDocument, Table
from batchnb.extract.base import ExtractedValue, ExtractionResult, Extractor
from batchnb.extract.schema import Field, Schema, schema_from_dict

__all__ = ["SAMPLE_DOCUMENTS", "SAMPLE_SCHEMA", "check_extractor"]

SAMPLE_SCHEMA = schema_from_dict(
    {
        "fields": [
            {"name": "invoice_number", "label": "invoice number"},
            {"name": "date", "label": "date", "type": "date"},
            {"name": "vendor_name", "label": "vendor name"},
            {"name": "total", "label": "total", "type": "money"},
            {"name": "paid", "label": "paid?", "type": "boolean"},
            {"name": "page_count", "label": "number of pages", "type": "number"},
            {
                "name": "line_items",
                "label": "line items",
                "type": "array",
                "fields": [
                    {"name": "description", "label": "description"},
                    {"name": "quantity", "label": "quantity", "type": "number"},
                    {"name": "unit_price", "label": "unit price", "type": "money"},
                    {"name": "amount", "label": "amount", "type": "money"},
                ],
            },
        ]
    }
)
"""One field of every type, and an array of line items."""


def _page(
    number: int, before: str, header: tuple[str, ...] | None = None, rows: Any = (), after: str = ""
) -> Page:
    """A page whose text holds ``before``, then the table (if any), then ``after``."""
    if header is None:
        return Page(number, before + after)
    table = Table(rows=tuple(rows), header=header)
    start = len(before)
    table = Table(table.rows, header, start, start + len(table.text))
    return Page(number, before + table.text + after, tables=(table,))


SAMPLE_DOCUMENTS: tuple[ParsedDocument, ...] = (
    ParsedDocument(
        pages=(
            _page(
                1,
                "ACME Office Supplies Ltd\n12 Harbour Road, Bristol BS1 4DJ\n\n"
                "INVOICE\nInvoice Number: INV-2024-0042\nDate: 2024-03-15\n"
                "Bill to: Northwind Traders\n\n",
                ("Description", "Quantity", "Unit price", "Amount"),
                (
                    ("Stapler", "2", "$12.50", "$25.00"),
                    ("Printer paper (box)", "3", "$30.00", "$90.00"),
                ),
                "\n\nSubtotal: $115.00\nVAT 20%: $23.00\nTotal: $138.00\nPaid: yes\n",
            ),
        ),
        parser="sample",
    ),
    ParsedDocument(
        pages=(
            _page(
                1,
                "Müller & Söhne GmbH\nHauptstraße 5, 10115 Berlin\n\nRechnung\n"
                "Rechnungsnummer: RE-7781\nDatum: 03.04.2024\nSeite 1 von 2\n",
            ),
            _page(
                2,
                "Positionen\n",
                ("Beschreibung", "Menge", "Einzelpreis", "Betrag"),
                (("Beratung", "4", "120,00 €", "480,00 €"),),
                "\n\nGesamtbetrag: 1.234,50 €\nBezahlt: nein\n",
            ),
        ),
        parser="sample",
    ),
    ParsedDocument(
        pages=(
            _page(
                1,
                "KEDAI RUNCIT MAJU SDN BHD\nNO 3, JALAN MAWAR, 81300 JOHOR\nTEL 07-5561234\n"
                "TAX INVOICE\nRECEIPT NO: CS00012345   DATE: 25/12/2018\n"
                "MILO 1KG        1 x 17.90     17.90\nROTI           2 x 2.50       5.00\n"
                "TOTAL                          22.90\nCASH                           50.00\n"
                "CHANGE                         27.10\nTHANK YOU\n",
            ),
        ),
        parser="sample",
    ),
)
"""An English invoice with a line-item table, a two-page German invoice, a till receipt."""


def check_extractor(
    extractor: Extractor,
    documents: Sequence[ParsedDocument] | None = None,
    schema: Schema | None = None,
) -> list[ExtractionResult]:
    """Run ``extractor`` on sample documents and check every result against the contract.

    Checked: ``name`` and ``version`` are non-empty strings; each result holds exactly the
    schema's fields (``None`` for a field not found); values are typed per field type (money
    ``{"amount": float, "currency": str | None}``, dates ISO ``YYYY-MM-DD`` strings, numbers
    int or float, booleans bool, arrays lists of objects with only their sub-fields, each
    typed) and JSON-able; a value with a span points at its raw text
    (``document.pages[page - 1].text[start:end] == raw``); confidences are within 0..1.

    Parameters
    ----------
    extractor:
        The extractor to check, e.g. ``MyExtractor()`` or ``ExtractorPool(settings).get(name)``.
    documents:
        Documents to run on; default :data:`SAMPLE_DOCUMENTS`.
    schema:
        Fields to ask for; default :data:`SAMPLE_SCHEMA` (every field type and an array).

    Returns
    -------
    list[ExtractionResult]
        One result per document, for further assertions of your own.

    Raises
    ------
    AssertionError
        Listing every problem found, each with the document and field it concerns.
    """
    documents = SAMPLE_DOCUMENTS if documents is None else tuple(documents)
    schema = SAMPLE_SCHEMA if schema is None else schema
    problems: list[str] = []
    for attribute in ("name", "version"):
        value = getattr(extractor, attribute, None)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"extractor.{attribute} must be a non-empty string, got {value!r}")
    if not callable(getattr(extractor, "extract", None)):
        problems.append("the extractor has no extract(document, schema) method")
        raise AssertionError(_report(extractor, problems))
    results: list[ExtractionResult] = []
    for index, document in enumerate(documents, start=1):
        where = f"document {index}"
        try:
            result = extractor.extract(document, schema)
        except Exception as exc:
            problems.append(f"{where}: extract() raised {type(exc).__name__}: {exc}")
            continue
        problems.extend(
            f"{where}: {problem}" for problem in result_problems(result, document, schema)
        )
        results.append(result)
    if problems:
        raise AssertionError(_report(extractor, problems))
    return results


def result_problems(result: Any, document: ParsedDocument, schema: Schema) -> list[str]:
    """What is wrong with one result for ``document`` and ``schema`` (empty when nothing).

    The checks of :func:`check_extractor`, for one result you already have.
    """
    if not isinstance(result, ExtractionResult):
        return [f"extract() returned {type(result).__name__}, not an ExtractionResult"]
    problems: list[str] = []
    given = list(result.values)
    extra = [name for name in given if name not in schema.names]
    missing = [name for name in schema.names if name not in given]
    if extra:
        problems.append(f"fields outside the schema: {', '.join(map(str, extra))}")
    if missing:
        problems.append(f"schema fields missing (give None when not found): {', '.join(missing)}")
    if not isinstance(result.notes, tuple) or not all(isinstance(n, str) for n in result.notes):
        problems.append(f"notes must be a tuple of strings, got {result.notes!r}")
    for field in schema.fields:
        found = result.values.get(field.name)
        if found is None:
            continue
        if not isinstance(found, ExtractedValue):
            problems.append(f"{field.name}: {type(found).__name__} instead of an ExtractedValue")
            continue
        problems.extend(f"{field.name}: {p}" for p in _value_problems(field, found.value))
        problems.extend(f"{field.name}: {p}" for p in _evidence_problems(found, document))
    return problems


def _value_problems(field: Field, value: Any) -> list[str]:
    """Type and JSON problems of one value (``None`` allowed for array cells only)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return [f"value {value!r} is not JSON-able ({exc})"]
    if field.type != "array":
        problem = _scalar_problem(field, value)
        return [problem] if problem else []
    if not isinstance(value, list) or not all(isinstance(row, Mapping) for row in value):
        return [f"an array value must be a list of objects, got {value!r}"]
    problems = []
    subs = {sub.name: sub for sub in field.fields}
    for number, row in enumerate(value, start=1):
        extra = sorted(set(row) - set(subs))
        if extra:
            problems.append(f"row {number} has keys outside its sub-fields: {', '.join(extra)}")
        for name, cell in row.items():
            if name in subs and cell is not None:
                problem = _scalar_problem(subs[name], cell)
                if problem:
                    problems.append(f"row {number}.{name}: {problem}")
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_iso_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_money(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and set(value) == {"amount", "currency"}
        and _is_number(value["amount"])
        and (value["currency"] is None or isinstance(value["currency"], str))
    )


_TYPE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "string": (lambda v: isinstance(v, str), "a string"),
    "number": (_is_number, "an int or float"),
    "money": (_is_money, 'a {"amount": float, "currency": str | None} object'),
    "date": (_is_iso_date, "an ISO YYYY-MM-DD date string"),
    "boolean": (lambda v: isinstance(v, bool), "a bool"),
}


def _scalar_problem(field: Field, value: Any) -> str | None:
    check, expected = _TYPE_CHECKS[field.type]
    return None if check(value) else f"a {field.type} value must be {expected}, got {value!r}"


def _evidence_problems(found: ExtractedValue, document: ParsedDocument) -> list[str]:
    """Problems of a value's page, span and confidence."""
    problems = []
    confidence = found.confidence
    if confidence is not None and not (_is_number(confidence) and 0.0 <= confidence <= 1.0):
        problems.append(f"confidence must be None or within 0..1, got {confidence!r}")
    if found.page is None:
        if found.start is not None:
            problems.append("a span (start, end) is given without its page")
        return problems
    if not isinstance(found.page, int) or not 1 <= found.page <= document.page_count:
        return [*problems, f"page {found.page!r} is not a page of the document (1-based)"]
    if found.start is None or found.end is None:
        return problems
    text = document.pages[found.page - 1].text[found.start : found.end]
    if found.raw != text:
        problems.append(
            f"the span {found.start}..{found.end} of page {found.page} reads {text!r}, "
            f"not the raw text {found.raw!r}"
        )
    return problems


def _report(extractor: Any, problems: list[str]) -> str:
    name = getattr(extractor, "name", type(extractor).__name__)
    lines = "\n".join(f"- {problem}" for problem in problems)
    return f"extractor {name!r} breaks the extractor contract ({len(problems)} problems):\n{lines}"
