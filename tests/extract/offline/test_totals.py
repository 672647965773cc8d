"""Net + tax = gross: the offline extractor's totals cross-check (offline/totals.py)."""

from __future__ import annotations

import pytest

from batchnb.documents.parsed import Page, ParsedDocument
from batchnb.documents.parsers import parse_document
from batchnb.extract import OfflineExtractor, schema_from_prompt
from tests.conftest import EVAL_DIR

PROMPT = "total amount, amount before tax, tax amount"


def document(text: str) -> ParsedDocument:
    return ParsedDocument(pages=(Page(1, text),), parser="text")


def amounts(text: str) -> dict[str, object]:
    schema = schema_from_prompt(PROMPT)
    result = OfflineExtractor().extract(document(text), schema)
    return {
        name: value["amount"] if isinstance(value, dict) else value
        for name, value in result.data().items()
    }


def test_a_subtotal_with_tax_is_replaced_by_the_printed_net_amount() -> None:
    # "Subtotaal" is the amount with tax here; the net amount has a label the search
    # does not know, but the arithmetic points at it and the page prints it.
    text = (
        "Factuur 12\n"
        "Netto bedrag € 593,36   Subtotaal € 717,97\n"
        "BTW 21% € 124,61\n"
        "Totaal € 717,97\n"
    )
    found = amounts(text)
    assert found == {
        "total_amount": 717.97,
        "amount_before_tax": 593.36,
        "tax_amount": 124.61,
    }


def test_a_missing_total_is_filled_only_when_printed() -> None:
    printed = amounts("Subtotal: 100.00\nTax: 19.00\nPlease pay 119.00 by transfer\n")
    assert printed["total_amount"] == 119.0
    # Not printed: the search's own pick (the largest amount, a fallback) stays.
    not_printed = amounts("Subtotal: 100.00\nTax: 19.00\n")
    assert not_printed["total_amount"] == 100.0


def test_totals_that_add_up_are_left_alone() -> None:
    found = amounts("Subtotal: 100.00\nTax: 19.00\nTotal: 119.00\nOther 81.00\n")
    assert found == {"total_amount": 119.0, "amount_before_tax": 100.0, "tax_amount": 19.0}


def test_nothing_is_invented_when_no_printed_amount_fits() -> None:
    found = amounts("Subtotal: 120.00\nTax: 19.00\nTotal: 119.00\n")
    assert found == {"total_amount": 119.0, "amount_before_tax": 120.0, "tax_amount": 19.0}


def test_the_reconciled_value_points_at_its_page_span() -> None:
    text = "Subtotal: 100.00\nTax: 19.00\nPlease pay 119.00 by transfer\n"
    schema = schema_from_prompt(PROMPT)
    result = OfflineExtractor().extract(document(text), schema)
    found = result.values["total_amount"]
    assert found is not None and found.start is not None and found.end is not None
    assert text[found.start : found.end] == found.raw == "119.00"


@pytest.mark.skipif(
    not (EVAL_DIR / "documents" / "i2d__coolblue1.pdf").is_file(),
    reason="shared/eval is not available",
)
def test_real_invoice_whose_subtotal_includes_tax() -> None:
    pdf = (EVAL_DIR / "documents" / "i2d__coolblue1.pdf").read_bytes()
    schema = schema_from_prompt(PROMPT)
    result = OfflineExtractor().extract(parse_document(pdf, "pdf"), schema)
    found = {
        name: value["amount"] if isinstance(value, dict) else value
        for name, value in result.data().items()
    }
    assert found == {
        "total_amount": 717.97,
        "amount_before_tax": 593.36,
        "tax_amount": 124.61,
    }
