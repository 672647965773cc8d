"""Result types, the Extractor protocol, FunctionExtractor and the public API of batchnb.extract."""

from __future__ import annotations

import json
from typing import Any

import pytest

import batchnb.extract
from batchnb.documents.parsed import Page, ParsedDocument
from batchnb.errors import ExtractorError
from batchnb.extract import (
    ExtractedValue,
    ExtractionResult,
    Extractor,
    FunctionExtractor,
    OfflineExtractor,
    Schema,
    schema_from_prompt,
)

DOC = ParsedDocument(pages=(Page(1, "Total: $4.11"),), parser="test")
SCHEMA = schema_from_prompt("invoice number, total")


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions (ruff's RUF022 order)."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_public_api_is_sorted_and_importable() -> None:
    names = batchnb.extract.__all__
    assert names == sorted(names, key=_isort_key)
    for name in names:
        assert getattr(batchnb.extract, name) is not None


def test_result_views() -> None:
    total = ExtractedValue({"amount": 4.11, "currency": "USD"}, "$4.11", 1, 7, 12, 0.9)
    date = ExtractedValue("2024-01-02", "2 Jan 2024", 1, 20, 30, 0.5)
    result = ExtractionResult({"invoice_number": None, "total": total, "date": date})
    assert result.data() == {
        "invoice_number": None,
        "total": {"amount": 4.11, "currency": "USD"},
        "date": "2024-01-02",
    }
    assert result.evidence()["total"] == {
        "page": 1,
        "start": 7,
        "end": 12,
        "raw": "$4.11",
        "confidence": 0.9,
    }
    assert result.evidence()["invoice_number"] is None
    assert result.confidence() == pytest.approx(0.7)
    json.dumps(result.evidence())


def test_extracted_value_validation() -> None:
    with pytest.raises(ValueError, match="confidence"):
        ExtractedValue("x", confidence=1.5)
    with pytest.raises(ValueError, match="together"):
        ExtractedValue("x", start=1)
    with pytest.raises(ValueError, match="invalid span"):
        ExtractedValue("x", start=5, end=2)
    assert not ExtractedValue("x").grounded


def test_extractors_satisfy_the_protocol() -> None:
    assert isinstance(OfflineExtractor(), Extractor)
    assert isinstance(FunctionExtractor(lambda d, s: {}), Extractor)
    assert not isinstance(object(), Extractor)


def test_function_extractor_wraps_plain_values() -> None:
    def fn(document: ParsedDocument, schema: Schema) -> dict[str, Any]:
        return {"total": {"amount": 4.11, "currency": "USD"}, "extra": 1}

    extractor = FunctionExtractor(fn, name="mine")
    assert (extractor.name, extractor.version) == ("mine", "1")
    result = extractor.extract(DOC, SCHEMA)
    assert result.data() == {"invoice_number": None, "total": {"amount": 4.11, "currency": "USD"}}
    total = result.values["total"]
    assert total is not None and total.page is None and total.confidence is None
    assert result.confidence() is None
    assert result.extractor == "mine"
    assert result.notes == ("ignored keys outside the schema: extra",)


def test_function_extractor_keeps_grounded_values_and_results() -> None:
    grounded = ExtractedValue(4.11, "$4.11", 1, 7, 12, 0.8)
    result = FunctionExtractor(lambda d, s: {"total": grounded}).extract(DOC, SCHEMA)
    assert result.values["total"] is grounded
    assert result.confidence() == 0.8

    ready = ExtractionResult({"total": grounded}, extractor="x")
    completed = FunctionExtractor(lambda d, s: ready).extract(DOC, SCHEMA)
    assert list(completed.values) == ["invoice_number", "total"]
    assert completed.values["total"] is grounded


def test_function_extractor_errors() -> None:
    with pytest.raises(TypeError, match="needs a callable"):
        FunctionExtractor("nope")  # type: ignore[arg-type]
    with pytest.raises(ExtractorError, match="'f' returned list"):
        FunctionExtractor(lambda d, s: [], name="f").extract(DOC, SCHEMA)  # type: ignore[arg-type,return-value]
    with pytest.raises(ExtractorError, match="'total' that is not JSON-able"):
        FunctionExtractor(lambda d, s: {"total": object()}).extract(DOC, SCHEMA)
    with pytest.raises(ExtractorError, match="not JSON-able"):
        FunctionExtractor(lambda d, s: {"total": float("nan")}).extract(DOC, SCHEMA)
