"""The extractor contract kit (batchnb.testing) against every backend kind, and its own checks."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from batchnb.config import load_settings
from batchnb.documents.parsed import Page, ParsedDocument
from batchnb.extract import (
    ExtractedValue,
    ExtractionResult,
    ExtractorPool,
    FunctionExtractor,
    OfflineExtractor,
    Schema,
)
from batchnb.testing import SAMPLE_DOCUMENTS, SAMPLE_SCHEMA, check_extractor
from tests.extract.llm.chat_server import KEY, MODEL, ChatServer, Reply

# What a model copies from the first sample, as printed.
ANSWER = {
    "invoice_number": "INV-2024-0042",
    "date": "2024-03-15",
    "vendor_name": "ACME Office Supplies Ltd",
    "total": "$138.00",
    "paid": "yes",
    "page_count": None,
    "line_items": [
        {"description": "Stapler", "quantity": "2", "unit_price": "$12.50", "amount": "$25.00"},
        {
            "description": "Printer paper (box)",
            "quantity": "3",
            "unit_price": "$30.00",
            "amount": "$90.00",
        },
    ],
}


def test_offline_keeps_the_contract() -> None:
    results = check_extractor(OfflineExtractor())
    assert len(results) == len(SAMPLE_DOCUMENTS)
    first = results[0].data()
    assert first["invoice_number"] == "INV-2024-0042"
    assert first["total"] == {"amount": 138.0, "currency": "USD"}
    assert results[1].data()["date"] == "2024-04-03"  # German, day first


def test_openai_keeps_the_contract(server: ChatServer, tmp_path: Path) -> None:
    server.default = Reply(content=json.dumps(ANSWER))
    settings = load_settings(
        home=str(tmp_path), openai_base_url=server.url, openai_api_key=KEY, openai_model=MODEL
    )
    with ExtractorPool(settings) as pool:
        results = check_extractor(pool.get("openai"))
    line_items = results[0].values["line_items"]
    assert line_items is not None and line_items.grounded
    assert len(server.requests) == len(SAMPLE_DOCUMENTS)


def test_a_plugin_module_keeps_the_contract(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SLOW_EXTRACTOR_SECONDS", "0")
    settings = load_settings(home=str(tmp_path), plugins="tests.plugins.slow_extractor")
    with ExtractorPool(settings) as pool:
        check_extractor(pool.get("slow"))


def test_a_function_extractor_keeps_the_contract_with_your_documents() -> None:
    document = ParsedDocument(pages=(Page(1, "Total: 12.00 EUR"),), parser="test")
    schema = Schema.from_dict({"fields": [{"name": "total", "label": "total", "type": "money"}]})

    def total(document: ParsedDocument, schema: Schema) -> dict[str, Any]:
        return {
            "total": ExtractedValue(
                {"amount": 12.0, "currency": "EUR"}, raw="12.00 EUR", page=1, start=7, end=16
            )
        }

    [result] = check_extractor(FunctionExtractor(total, name="total"), [document], schema)
    assert result.data() == {"total": {"amount": 12.0, "currency": "EUR"}}


class Sloppy:
    """Breaks every rule the kit checks, once each."""

    name = ""
    version = 2

    def extract(self, document: ParsedDocument, schema: Schema) -> ExtractionResult:
        values: dict[str, ExtractedValue | None] = {
            "invoice_number": ExtractedValue(42),
            "date": ExtractedValue("15/03/2024"),
            "total": ExtractedValue({"amount": "138", "currency": "USD"}),
            "paid": ExtractedValue("yes"),
            "page_count": ExtractedValue(math.nan),
            "line_items": ExtractedValue([{"description": "x", "sku": "1", "quantity": "2"}]),
            "vendor_name": ExtractedValue("ACME", raw="ACME", page=1, start=0, end=3),
            "surprise": None,
        }
        return ExtractionResult(values=values, extractor="sloppy")


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(AssertionError) as caught:
        check_extractor(Sloppy(), SAMPLE_DOCUMENTS[:1])  # type: ignore[arg-type]
    message = str(caught.value)
    for problem in (
        "extractor.name must be a non-empty string",
        "extractor.version must be a non-empty string",
        "document 1: fields outside the schema: surprise",
        "invoice_number: a string value must be a string, got 42",
        "date: a date value must be an ISO YYYY-MM-DD date string, got '15/03/2024'",
        "total: a money value must be",
        "paid: a boolean value must be a bool",
        "page_count: value nan is not JSON-able",
        "line_items: row 1 has keys outside its sub-fields: sku",
        "line_items: row 1.quantity: a number value must be an int or float, got '2'",
        "vendor_name: the span 0..3 of page 1 reads 'ACM', not the raw text 'ACME'",
    ):
        assert problem in message, problem
    assert "(11 problems)" in message


class Partial:
    """Leaves fields out, points at a page that does not exist, and fails on German."""

    name = "partial"
    version = "1"

    def extract(self, document: ParsedDocument, schema: Schema) -> ExtractionResult:
        if document is SAMPLE_DOCUMENTS[1]:
            raise ValueError("cannot read German")
        found = ExtractedValue("INV", raw="INV", page=9, start=0, end=3)
        return ExtractionResult(values={"invoice_number": found})


def test_missing_fields_bad_pages_and_exceptions_are_problems() -> None:
    with pytest.raises(AssertionError) as caught:
        check_extractor(Partial(), SAMPLE_DOCUMENTS[:2])
    message = str(caught.value)
    assert "document 1: schema fields missing (give None when not found): date," in message
    assert "document 1: invoice_number: page 9 is not a page of the document" in message
    assert "document 2: extract() raised ValueError: cannot read German" in message


def test_sample_schema_has_every_field_type() -> None:
    types = {field.type for field in SAMPLE_SCHEMA.fields}
    assert types == {"string", "date", "money", "boolean", "number", "array"}
    for document in SAMPLE_DOCUMENTS:
        for page in document.pages:
            assert all(page.text[t.start : t.end] == t.text for t in page.tables)
