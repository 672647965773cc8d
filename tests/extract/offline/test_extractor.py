"""The offline extractor on synthetic documents, on the shipped samples and on the eval set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchnb.documents.parsed import Page, ParsedDocument
from batchnb.documents.parsers import parse_document
from batchnb.extract import (
    ExtractedValue,
    ExtractionResult,
    OfflineExtractor,
    Schema,
    schema_from_dict,
    schema_from_prompt,
)
from tests.conftest import EVAL_DIR

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "documents"
EVAL = EVAL_DIR
KINDS = {".pdf": "pdf", ".txt": "text", ".md": "markdown", ".html": "html"}


def document(*pages: str) -> ParsedDocument:
    return ParsedDocument(
        pages=tuple(Page(number, text) for number, text in enumerate(pages, start=1)),
        parser="test",
    )


def extract(doc: ParsedDocument, prompt: str | Schema) -> ExtractionResult:
    schema = schema_from_prompt(prompt) if isinstance(prompt, str) else prompt
    result = OfflineExtractor().extract(doc, schema)
    assert_grounded(doc, result)
    return result


def assert_grounded(doc: ParsedDocument, result: ExtractionResult) -> None:
    """Every value found points at exactly the text it was read from."""
    for name, found in result.values.items():
        if found is None:
            continue
        assert found.page is not None and found.start is not None, name
        assert doc.pages[found.page - 1].text[found.start : found.end] == found.raw, name
        assert found.confidence is not None and 0 < found.confidence <= 1, name
        assert json.dumps(found.evidence())


def test_label_colon_value() -> None:
    doc = document("ACME Ltd\nInvoice Number: INV-001\nDate: 2024-03-15\nTotal   $1,234.50\n")
    result = extract(doc, "invoice number, date, total")
    assert result.data() == {
        "invoice_number": "INV-001",
        "date": "2024-03-15",
        "total": {"amount": 1234.5, "currency": "USD"},
    }
    assert result.values["invoice_number"].raw == "INV-001"  # type: ignore[union-attr]
    assert result.values["total"].raw == "$1,234.50"  # type: ignore[union-attr]
    assert result.extractor == "offline"


def test_value_on_the_next_line() -> None:
    doc = document("Invoice Date:\n\n03/20/2023\nTotal\n  279.84 EUR\n")
    result = extract(doc, "invoice date, total")
    assert result.data() == {
        "invoice_date": "2023-03-20",
        "total": {"amount": 279.84, "currency": "EUR"},
    }
    same_line = extract(document("Invoice Date: 03/20/2023"), "invoice date")
    assert result.values["invoice_date"].confidence < same_line.values["invoice_date"].confidence  # type: ignore[union-attr,operator]


def test_windows_line_endings_keep_offsets_exact() -> None:
    doc = document("Invoice No.\r\nA-77\r\nTotal: 10.00 USD\r\n")
    assert extract(doc, "invoice number, total").data()["invoice_number"] == "A-77"


def test_the_most_specific_label_wins() -> None:
    doc = document("Total: $10.00\nGrand Total: $12.00\nTotal: $10.00\n")
    assert extract(doc, "total").data()["total"] == {"amount": 12.0, "currency": "USD"}


def test_total_is_not_subtotal_and_the_last_total_wins() -> None:
    doc = document(
        "Group A\nSubtotal $ 112.00\nTotal items 3\nGroup B\nSub total $ 150.90\n",
        "Sub-Total: $262.90\nTax: $16.94\nTotal tax: $16.94\nTotal $279.84\n",
    )
    result = extract(doc, "subtotal, tax, total")
    assert result.data() == {
        "subtotal": {"amount": 262.9, "currency": "USD"},
        "tax": {"amount": 16.94, "currency": "USD"},
        "total": {"amount": 279.84, "currency": "USD"},
    }
    assert result.values["total"].page == 2  # type: ignore[union-attr]


def test_date_is_not_due_date() -> None:
    doc = document("Due Date: 2024-04-14\nDate: 2024-03-15\n")
    assert extract(doc, "date, due date").data() == {
        "date": "2024-03-15",
        "due_date": "2024-04-14",
    }


def test_synonyms_have_lower_confidence_than_the_users_label() -> None:
    doc = document("Inv. No. 4471\nAmount due: €20.00\n")
    result = extract(doc, "invoice number, total")
    assert result.data() == {
        "invoice_number": "4471",
        "total": {"amount": 20.0, "currency": "EUR"},
    }
    exact = extract(document("Invoice number 4471"), "invoice number")
    assert result.values["invoice_number"].confidence < exact.values["invoice_number"].confidence  # type: ignore[union-attr,operator]


def test_labels_inside_words_or_sentences_do_not_match() -> None:
    doc = document("This invoice is for the period July 1 - July 31\nGreetings from Acme, Inc.\n")
    result = extract(doc, "invoice number, company")
    assert result.values["invoice_number"] is None
    # "from" inside a sentence is no label; the company falls back to the first line
    company = result.values["company"]
    assert company is not None and company.confidence == 0.4


def test_fields_not_found_are_none() -> None:
    result = extract(document("Nothing to see here."), "invoice number, due date, tax")
    assert result.data() == {"invoice_number": None, "due_date": None, "tax": None}
    assert result.confidence() is None


def test_fallbacks_have_low_confidence() -> None:
    doc = document(
        "Harbor Bakery\n3 Pier St\nWhitby YO21\nTel 555\n12 Jan 2024\nCard € 4,50\nBun € 1,20\n"
    )
    result = extract(doc, "company, address, date, total, currency")
    assert result.data() == {
        "company": "Harbor Bakery",
        "address": "3 Pier St, Whitby YO21",
        "date": "2024-01-12",
        "total": {"amount": 4.5, "currency": "EUR"},
        "currency": "EUR",
    }
    assert {found.confidence for found in result.values.values() if found} == {0.4}


def test_other_types() -> None:
    doc = document(
        "Paid: yes\nQuantity: 1,200\nCurrency: GBP\nCustomer: Ostrander AG\nTax rate: 19 %\n"
    )
    result = extract(doc, "paid?, quantity, currency, customer, tax rate")
    assert result.data() == {
        "paid": True,
        "quantity": 1200.0,
        "currency": "GBP",
        "customer": "Ostrander AG",
        "tax_rate": 19.0,
    }


def test_number_typed_money_fields_give_the_amount() -> None:
    schema = schema_from_dict({"properties": {"amount": {"type": "number"}}})
    assert extract(document("Total: 1.234,50 €"), schema).data() == {"amount": 1234.5}


def test_arrays_are_left_empty_with_a_note() -> None:
    result = extract(document("Total: $4"), "total, line items (description, quantity)")
    assert result.data()["line_items"] is None
    assert any("line_items" in note for note in result.notes)


def test_result_is_json_able() -> None:
    result = extract(document("Invoice #: 9\nTotal 3.00"), "invoice number, total, date")
    json.dumps({"data": result.data(), "evidence": result.evidence()})
    assert result.evidence()["date"] is None
    assert isinstance(result.values["total"], ExtractedValue)


EXPECTED_SAMPLES = {
    "bluefin-office-supplies-invoice.pdf": ("BOS-2024-0117", "2024-03-15", 1234.5, "USD"),
    "quillstone-consulting-invoice.pdf": ("QC-4471", "2024-03-15", 2356.2, "EUR"),
    "harbor-lane-bakery-receipt.pdf": ("000482", "2024-03-15", 23.4, "GBP"),
    "pinecrest-garden-invoice.pdf": ("PG-88213", "2024-03-15", 3410.0, "USD"),
    "maplewood-print-invoice.txt": ("TXT-0042", "2024-03-22", 845.0, "USD"),
    "copperleaf-web-invoice.md": ("MD-2024-07", "2024-05-02", 1980.0, "EUR"),
    "ridgeback-bicycle-invoice.html": ("INV-H-311", "2024-04-12", 560.25, "GBP"),
}


def test_every_sample_is_covered() -> None:
    shipped = {p.name for p in SAMPLES.iterdir() if p.suffix in KINDS}
    assert shipped == set(EXPECTED_SAMPLES)


@pytest.mark.parametrize("name", sorted(EXPECTED_SAMPLES))
def test_samples(name: str) -> None:
    path = SAMPLES / name
    doc = parse_document(path.read_bytes(), KINDS[path.suffix])
    result = extract(doc, "invoice number, date, total")
    number, date, amount, currency = EXPECTED_SAMPLES[name]
    assert result.data() == {
        "invoice_number": number,
        "date": date,
        "total": {"amount": amount, "currency": currency},
    }
    assert all(found is not None and found.confidence >= 0.6 for found in result.values.values())  # type: ignore[operator]


# Measured on the six invoice2data PDFs (prompt "invoice number, date, total"): 14 of 18 values
# right. Misses: invoice numbers printed under French/Dutch labels or only as "Booking ID", and
# one printed in a table header row. The floor leaves room for small regressions only.
EVAL_FLOOR = 13


@pytest.mark.skipif(not (EVAL / "ground_truth").is_dir(), reason=f"no eval set at {EVAL}")
def test_invoice2data_accuracy_floor() -> None:
    schema = schema_from_prompt("invoice number, date, total")
    right = total = 0
    misses = []
    for truth_path in sorted((EVAL / "ground_truth").glob("i2d__*.json")):
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        if not truth["document"].endswith(".pdf"):
            continue
        doc = parse_document((EVAL / "documents" / truth["document"]).read_bytes(), "pdf")
        result = extract(doc, schema).data()
        money = result["total"]
        got = {
            "invoice_number": result["invoice_number"],
            "date": result["date"],
            "amount": money["amount"] if isinstance(money, dict) else None,
        }
        for key, value in got.items():
            want = truth["fields"].get(key)
            if want is None:
                continue
            total += 1
            ok = abs(value - want) < 0.005 if isinstance(value, float) else value == want
            right += ok
            if not ok:
                misses.append(f"{truth['document']} {key}: got {value!r}, want {want!r}")
    assert total == 18
    assert right >= EVAL_FLOOR, "\n".join(misses)
