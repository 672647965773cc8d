"""The offline extractor's per-schema plan and its early stops: quicker, same results.

The reference search here reads every label variant on every line, the way the extractor did
before it kept a plan per schema and stopped early; on real documents both must pick the same
values with the same evidence.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from batchnb.documents.parsed import Page, ParsedDocument
from batchnb.documents.parsers import parse_document
from batchnb.extract import ExtractedValue, OfflineExtractor, schema_from_dict, schema_from_prompt
from batchnb.extract.offline import extractor as offline
from batchnb.extract.offline.labels import document_language, label_variants
from batchnb.extract.offline.layout import PageLines
from batchnb.extract.offline.plan import plan_for
from batchnb.extract.offline.receipts import looks_like_receipt
from batchnb.extract.offline.totals import reconcile_totals
from batchnb.extract.templates import builtin_templates
from batchnb.extract.values import find_dates
from batchnb.extract.words import fold
from tests.conftest import EVAL_DIR

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "documents"
KINDS = {".pdf": "pdf", ".txt": "text", ".md": "markdown", ".html": "html"}
INVOICE_PROMPTS = (
    "invoice number, invoice date, due date, total amount, tax amount, currency",
    "seller name, buyer name, seller address, vat id, order number, subtotal, amount due",
    "company, customer, address, grand total, receipt number, paid?",
)
PROMPTS = (*INVOICE_PROMPTS, *builtin_templates().values())


def test_a_plan_is_made_once_per_schema_and_never_shared() -> None:
    first = schema_from_prompt("invoice number, total")
    again = schema_from_dict(first.to_dict())  # equal, not the same object
    other = schema_from_prompt("invoice number, due date")
    assert plan_for(first) is plan_for(again)
    assert plan_for(other) is not plan_for(first)
    assert [plan.field.name for plan in plan_for(other).fields] == ["invoice_number", "due_date"]
    keywords = set(plan_for(other).keywords)
    assert "due" in keywords and "total" not in keywords


def test_variants_come_in_falling_rank_order() -> None:
    """The early stop in ``_find_field`` relies on it."""
    for prompt in PROMPTS:
        for field in schema_from_prompt(prompt).fields:
            orders = [variant.order for variant in label_variants(field)]
            assert orders == sorted(orders, reverse=True), field.name


def _reference(document: ParsedDocument, prompt: str) -> dict[str, ExtractedValue | None]:
    """Every variant on every line, no early stop: the extractor's answer for plain fields."""
    texts = offline._text_layers(document)
    pages = [
        PageLines.of(page.number, text) for page, text in zip(document.pages, texts, strict=True)
    ]
    text = "\f".join(texts)
    signals = offline._Signals(text, text.lower())  # the whole text, not its distinct words
    values: dict[str, ExtractedValue | None] = {}
    plans = plan_for(schema_from_prompt(prompt)).fields
    for plan in plans:
        if plan.field.type == "array":
            continue
        found = None
        if plan.receipt_reader and signals.receipt:
            found = offline._receipt_field(plan, pages)
        order = signals.order if plan.kind == "date" else None
        candidates = [
            candidate
            for variant in plan.variants
            for candidate in offline._labelled(variant, plan, pages, order)
        ]
        if found is None and candidates:
            best_key = max(c.rank for c in candidates)
            best = sorted((c for c in candidates if c.rank == best_key), key=lambda c: c.position)
            last = plan.concept is not None and plan.concept.pick == "last"
            found = best[-1 if last else 0].found
        elif found is None:
            found = offline._fallback(plan.concept, plan.kind, pages, order)
        values[plan.field.name] = found
    # The totals cross-check runs on the search's results, early stop or not.
    reconcile_totals(plans, values, pages)
    return values


def _real_documents() -> list[tuple[str, ParsedDocument]]:
    found = [
        (path.name, parse_document(path.read_bytes(), KINDS[path.suffix]))
        for path in sorted(SAMPLES.iterdir())
        if path.suffix in KINDS
    ]
    eval_documents = EVAL_DIR / "documents"
    if eval_documents.is_dir():
        found += [
            (path.name, parse_document(path.read_bytes(), "pdf"))
            for path in sorted(eval_documents.glob("*.pdf"))
        ]
    return found


@pytest.mark.parametrize("prompt", PROMPTS)
def test_early_stops_find_every_field_the_full_search_finds(prompt: str) -> None:
    extractor = OfflineExtractor()
    documents = _real_documents()
    assert len(documents) >= 7
    found = 0
    for name, document in documents:
        result = extractor.extract(document, schema_from_prompt(prompt))
        for field, expected in _reference(document, prompt).items():
            assert result.values[field] == expected, (name, field)
            found += expected is not None
    if prompt in INVOICE_PROMPTS:
        # The samples hold invoices and receipts: these fields are there, so the comparison
        # above compared values, not only Nones. The templates' other kinds (a resume, a
        # contract) may find nothing where ../shared/eval is missing.
        assert found


def test_early_stops_keep_the_pick_on_repeated_labels_across_pages() -> None:
    """First-picked fields keep the first page's value, last-picked ones the last page's,
    also when several labels of the same rank tie (the early stop's bound)."""
    pages = (
        "Invoice No: A-1\nInvoice Number: A-2\nDate: 01.02.2024\nSubtotal: 5.00 EUR\n"
        "Total: 10.00 EUR\nTotal due: 11.00 EUR\nVAT: 1.00 EUR",
        "Invoice No. B-1\nDate 03/04/2024\nTotal 12.00 EUR\nAmount due 13.00\nTax 2.00",
        "Continued\nTotal: 14.00 EUR\nGrand total 15.00 EUR\nTOTAL\n16.00 EUR\nVAT 3.00",
    )
    document = ParsedDocument(
        pages=tuple(Page(number, text) for number, text in enumerate(pages, start=1)),
        parser="test",
    )
    for prompt in PROMPTS:
        result = OfflineExtractor().extract(document, schema_from_prompt(prompt))
        for field, expected in _reference(document, prompt).items():
            assert result.values[field] == expected, (prompt, field)
    result = OfflineExtractor().extract(document, schema_from_prompt(PROMPTS[0]))
    number, total = result.values["invoice_number"], result.values["total_amount"]
    assert number is not None and number.value == "A-1"  # the first of equal rank
    assert total is not None and total.raw == "15.00 EUR"


def test_the_invoice_sample_is_read_whole() -> None:
    document = parse_document((SAMPLES / "bluefin-office-supplies-invoice.pdf").read_bytes(), "pdf")
    result = OfflineExtractor().extract(
        document, schema_from_prompt("invoice number, invoice date, due date, total")
    )
    assert all(value is not None for value in result.values.values()), result.values
    total = result.values["total"]
    assert total is not None and total.raw == "$1,234.50"


def test_lines_with_is_the_per_line_search() -> None:
    text = (
        "Rechnungsnummer: 7\r\nDATE d'échéance  03/04/2024\n\n  \n(Total) TOTAL: 5\n"
        "subtotal|total 4\nİnvoice no 9\nQuantité  totals\n"
    )
    page = PageLines.of(1, text)
    assert [line.text for line in page.lines][:2] == [
        "Rechnungsnummer: 7",
        "DATE d'échéance  03/04/2024",
    ]
    for keyword in ("total", "rechnung", "date", "echeance", "quantite", "no", "zzz", ""):
        expected = [i for i, line in enumerate(page.lines) if keyword in line.folded.lower()]
        assert list(page.lines_with(keyword)) == expected, keyword
    starts = [
        i
        for i, line in enumerate(page.lines)
        if re.search(r"(?:^|[\s(\[|*])total", line.folded.lower())
    ]
    assert list(page.lines_with("total", word_start=True)) == starts


def test_the_date_order_is_worked_out_only_for_an_ambiguous_date() -> None:
    asked: list[int] = []

    def order() -> str:
        asked.append(1)
        return "mdy"

    assert [m.value for m in find_dates("2024-03-05, 15/03/2024, 3.4.2024", order)] == [
        "2024-03-05",
        "2024-03-15",
        "2024-04-03",
    ]
    assert not asked
    assert find_dates("03/04/2024", order) == find_dates("03/04/2024", "mdy")
    assert asked == [1]


_REFERENCE_DATES = (
    re.compile(r"(?<![\d.])(?P<y>\d{4})([-/.])(?P<m>\d{1,2})\2(?P<d>\d{1,2})(?![\d])"),
    re.compile(
        r"(?<![\d./-])(?P<a>\d{1,2})(?P<sep>[./-])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4}|\d{2})(?![\d])"
    ),
)


def test_digit_first_date_patterns_match_as_the_look_behind_ones() -> None:
    from batchnb.extract import values

    ours = (values._ISO_DATE, values._NUMERIC_DATE)
    rng = random.Random(20240101)
    alphabet = "0123456789" * 3 + "./- a\n"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))
        for reference, pattern in zip(_REFERENCE_DATES, ours, strict=True):
            expected = [(m.span(), m.groups()) for m in reference.finditer(text)]
            assert [(m.span(), m.groups()) for m in pattern.finditer(text)] == expected, text


def test_quick_document_signals_answer_as_the_word_patterns() -> None:
    long_s = "\u017f"  # reads as "s" case-insensitively
    assert looks_like_receipt(f"CA{long_s}H\nCHANGE\nGST 6%")
    assert not looks_like_receipt("Invoice\nCashier: Ann\nQty 2")
    assert looks_like_receipt("Cashier: Ann\nQty 2\nRounding 0.01")
    assert document_language("Rechnung vom 3.4.2024, Summe 12,00 EUR") == "de"
    assert document_language("Total HT 12.00, shipping right away") is None
    assert document_language("Betrag: 5; Betragsangabe; Nettobetrag") is None
    assert fold("Montant TTC échéance").lower().count("ttc") == 1


@pytest.mark.skipif(not (EVAL_DIR / "tasks.json").is_file(), reason=f"no eval set at {EVAL_DIR}")
def test_eval_tasks_find_the_same_values_with_early_stops() -> None:
    tasks = json.loads((EVAL_DIR / "tasks.json").read_text())["tasks"]
    extractor = OfflineExtractor()
    for name, document in _real_documents():
        for task in tasks.values():
            result = extractor.extract(document, schema_from_prompt(task["prompt"]))
            for field, expected in _reference(document, task["prompt"]).items():
                assert result.values[field] == expected, (name, field)
