"""Classification accuracy in `batchnb eval --strategy auto`, and the classifier on real documents.

The documents come from the labelled folder (tests/conftest.py ``EVAL_DIR``: ../shared/eval),
whose datasets have known types: SROIE receipts, invoice2data and ZUGFeRD invoices. The tests
skip when it is missing. batchnb reads no PDF attachments, so a ZUGFeRD PDF's embedded XML
(its answers) plays no part.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchnb.evaluation import evaluate
from batchnb.evaluation.classification import (
    FAILED,
    ClassifiedDocument,
    accuracy_table,
    classification_summary,
    confusion_table,
)
from batchnb.evaluation.dataset import KNOWN_DOCUMENT_TYPES, in_part, load_datasets
from batchnb.services.preview import classify_file
from tests.conftest import EVAL_DIR

needs_eval = pytest.mark.skipif(not EVAL_DIR.is_dir(), reason="shared/eval is not available")


def test_accuracy_and_confusion_tables_count_each_document_once() -> None:
    records = [
        ClassifiedDocument("s", "a.jpg", "receipt", "receipt", 0.9),
        ClassifiedDocument("s", "b.jpg", "receipt", "invoice", 0.6),
        ClassifiedDocument("s", "c.jpg", "receipt", "receipt", 0.4, low_confidence=True),
        ClassifiedDocument("i", "d.pdf", "invoice", "invoice", 0.99),
        ClassifiedDocument("i", "e.pdf", "invoice", FAILED),
    ]
    table = accuracy_table(records).set_index("expected")
    assert table.loc["receipt"].to_dict() == {
        "documents": 3,
        "correct": 2,
        "accuracy": round(2 / 3, 4),
        "routed": 1,  # c.jpg is right but went to the fallback template
        "low_confidence": 1,
    }
    assert table.loc["invoice", "accuracy"] == 0.5
    assert table.loc["(all)", "correct"] == 3
    confusion = confusion_table(records)
    assert confusion.loc["receipt"].to_dict() == {FAILED: 0, "invoice": 1, "receipt": 2}
    assert confusion.loc["invoice"].to_dict() == {FAILED: 1, "invoice": 1, "receipt": 0}
    summary = classification_summary(records)
    assert summary["accuracy"] == 0.6
    assert summary["confusion"] == {
        "invoice": {FAILED: 1, "invoice": 1},
        "receipt": {"invoice": 1, "receipt": 2},
    }
    assert [m["document"] for m in summary["misclassified"]] == ["b.jpg", "e.pdf"]
    json.dumps(summary)  # numpy numbers would not serialise


def test_a_dataset_declares_its_document_type(tmp_path: Path) -> None:
    (tmp_path / "documents").mkdir()
    (tmp_path / "ground_truth").mkdir()
    for name, own_type in (("a.txt", None), ("b.txt", "purchase_order")):
        (tmp_path / "documents" / name).write_text("x")
        truth = {"document": name, "source": "mine", "fields": {}}
        if own_type:
            truth["document_type"] = own_type
        (tmp_path / "ground_truth" / f"{name[0]}.json").write_text(json.dumps(truth))
    tasks = {"mine": {"prompt": "total", "schema": {"properties": {"total": {"type": "number"}}}}}
    (tmp_path / "tasks.json").write_text(json.dumps({"tasks": tasks}))
    [dataset] = load_datasets(tmp_path)
    assert dataset.task.document_type is None
    assert [d.document_type for d in dataset.documents] == [None, "purchase_order"]
    tasks["mine"]["document_type"] = "invoice"
    (tmp_path / "tasks.json").write_text(json.dumps({"tasks": tasks}))
    [dataset] = load_datasets(tmp_path)
    assert [d.document_type for d in dataset.documents] == ["invoice", "purchase_order"]


@needs_eval
def test_the_public_datasets_have_their_known_types() -> None:
    for dataset in load_datasets(EVAL_DIR):
        assert {d.document_type for d in dataset.documents} == {KNOWN_DOCUMENT_TYPES[dataset.name]}


@needs_eval
def test_parts_split_the_folder_stably_and_keep_renderings_with_their_pdf() -> None:
    halves = [
        {d.file_name for ds in load_datasets(EVAL_DIR, part=(k, 2)) for d in ds.documents}
        for k in (1, 2)
    ]
    every = {d.file_name for ds in load_datasets(EVAL_DIR) for d in ds.documents}
    assert halves[0] | halves[1] == every and not halves[0] & halves[1]
    assert min(len(h) for h in halves) >= len(every) // 3
    for truth_path in (EVAL_DIR / "ground_truth").glob("*.json"):
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        if truth.get("variant_of"):  # a PNG rendering goes where its PDF goes
            assert any(truth["document"] in h and truth["variant_of"] in h for h in halves)
    # Pinned: the parts must not move between versions, or "measured only" documents leak.
    assert in_part("i2d__NetpresseInvoice.pdf", (1, 2))
    assert in_part("i2d__AmazonWebServices.pdf", (2, 2))
    assert in_part("a.pdf", (1, 2)) != in_part("a.pdf", (2, 2))


@needs_eval
def test_auto_eval_reports_accuracy_per_type_and_a_confusion_table() -> None:
    report = evaluate(EVAL_DIR, strategy="auto", datasets=["sroie", "zugferd-corpus"], limit=2)
    records = report.classifications
    assert sorted((r.document, r.expected) for r in records) == [
        ("sroie__train_040.jpg", "receipt"),
        ("sroie__train_042.jpg", "receipt"),
        ("zugferd__Avoir_FR_type381_BASIC.pdf", "invoice"),
        ("zugferd__EN16931_Betriebskostenabrechnung.pdf", "invoice"),
    ]
    assert all(r.classified != FAILED and r.confidence is not None for r in records)
    table = report.classification_table().set_index("expected")
    assert table.loc["receipt", "documents"] == table.loc["invoice", "documents"] == 2
    correct = sum(r.correct for r in records)
    assert table.loc["(all)", "correct"] == correct
    confusion = report.confusion_table()
    assert int(confusion.to_numpy().sum()) == 4
    assert (
        confusion.loc["invoice"].get("invoice", 0) + confusion.loc["receipt"].get("receipt", 0)
        == correct
    )
    summary = report.summary()
    assert summary["strategy"] == "auto"
    assert summary["classification"]["accuracy"] == round(correct / 4, 4)
    text = report.to_text()
    assert "Classification" in text and "expected type x classified type" in text
    # A document classified right ran with its dataset's own prompt: its fields are scored.
    assert {s.document for s in report.scores if s.counts.tp} >= {
        r.document for r in records if r.routed
    }


@needs_eval
@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        # Till receipts titled "TAX INVOICE" / "SIMPLIFIED INVOICE" (a GST rule), with a tender,
        # change given back and the time of the sale printed.
        ("sroie__train_131.jpg", "receipt"),
        ("sroie__train_407.jpg", "receipt"),
        # German compounds ("Handelsrechnung", "Rechnungssumme") and an invoice that cites the
        # order it bills ("Rechnung gemäß Bestellung"): not a purchase order.
        ("zugferd__EN16931_Einfach.pdf", "invoice"),
        # Dutch ("FACTUUR", "Factuurnummer") with the seller's IBAN: not a bank statement.
        ("i2d__coolblue1.pdf", "invoice"),
    ],
)
def test_real_documents_get_their_type(file_name: str, expected: str) -> None:
    found = classify_file(EVAL_DIR / "documents" / file_name)
    assert found.type == expected, found.scores
    assert found.confidence >= 0.5
