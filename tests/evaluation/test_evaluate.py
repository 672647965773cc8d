"""evaluate() end to end on a tiny eval folder, the `batchnb eval` command, and shared/eval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from batchnb.cli import main
from batchnb.documents.parsed import ParsedDocument
from batchnb.evaluation import evaluate
from batchnb.evaluation.dataset import load_datasets
from batchnb.extract import ExtractorRegistry, FunctionExtractor, Schema, register_extractor
from batchnb.extract import registry as registry_module
from tests.conftest import EVAL_DIR

SHARED_EVAL = EVAL_DIR
FAKE = "eval-json-echo"
PROMPT = (
    "Extract the invoice number, invoice date, total amount, vendor name and the line items "
    "(description, quantity, amount)."
)
TASK_SCHEMA = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "date": {"type": "string", "format": "date", "description": "invoice date"},
        "total": {"type": "number", "description": "total amount"},
        "vendor": {"type": "string", "description": "vendor name"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "qty": {"type": "number"},
                    "amount": {"type": "number"},
                },
            },
        },
    },
}
# What the fake extractor "finds" in each text document: the document is this JSON.
PREDICTED_A = {
    "invoice_number": "inv-1 ",
    "invoice_date": "2024-04-03",
    "total_amount": {"amount": 100.004, "currency": "EUR"},
    "vendor_name": "Acme Corp",
    "line_items": [
        {"description": "Gadget", "quantity": 1, "amount": {"amount": 50, "currency": None}},
        {"description": "Widgets", "quantity": 3, "amount": {"amount": 100, "currency": None}},
        {"description": "Extra", "quantity": 9, "amount": {"amount": 1, "currency": None}},
    ],
}
PREDICTED_B = {
    "invoice_number": "INV-3",
    "invoice_date": None,
    "total_amount": {"amount": 1234.5, "currency": None},
    "vendor_name": "Not labelled",
    "line_items": [{"description": "Not labelled", "quantity": 1, "amount": None}],
}
TRUTH = {
    "a.txt": {
        "invoice_number": "INV-1",
        "date": "03/04/2024",
        "total": 100.0,
        "vendor": "ACME Corp.",
        "items": [
            {"description": "Widget", "qty": 2, "amount": 50},
            {"description": "Gadget", "qty": 1, "amount": 50},
        ],
    },
    "b.txt": {"invoice_number": "INV-2", "date": "2024-05-06", "total": "1.234,50"},
    "c.png": {"invoice_number": "INV-3", "total": 10},
}


def _echo(document: ParsedDocument, schema: Schema) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(document.pages[0].text)
    return data


@pytest.fixture(autouse=True)
def _fake_extractor(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh default registry, so the fake does not leak into other tests.
    monkeypatch.setattr(registry_module, "_DEFAULT", ExtractorRegistry())
    register_extractor(FAKE, lambda: FunctionExtractor(_echo, name=FAKE))


@pytest.fixture
def eval_folder(tmp_path: Path) -> Path:
    root = tmp_path / "eval"
    (root / "documents").mkdir(parents=True)
    (root / "ground_truth").mkdir()
    (root / "documents" / "a.txt").write_text(json.dumps(PREDICTED_A), encoding="utf-8")
    (root / "documents" / "b.txt").write_text(json.dumps(PREDICTED_B), encoding="utf-8")
    # A PNG needs OCR, which does not exist yet: the document fails.
    (root / "documents" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    for name, fields in TRUTH.items():
        truth = {"document": name, "source": "demo", "fields": fields}
        (root / "ground_truth" / f"{Path(name).stem}.json").write_text(json.dumps(truth))
    tasks = {"tasks": {"demo": {"prompt": PROMPT, "schema": TASK_SCHEMA}}}
    (root / "tasks.json").write_text(json.dumps(tasks))
    return root


def test_evaluate_gives_the_hand_computed_figures(eval_folder: Path) -> None:
    report = evaluate(eval_folder, extractor=FAKE)
    summary = report.summary()
    # Header. a: 4 TP. b: number FP+FN, date FN, total TP, vendor unlabelled.
    # c (failed): number FN, total FN. → TP 5, FP 1, FN 4.
    assert summary["header"] == {
        "tp": 5,
        "fp": 1,
        "fn": 4,
        "precision": round(5 / 6, 4),
        "recall": round(5 / 9, 4),
        "micro_f1": round(10 / 15, 4),
    }
    # Line items of a: Gadget↔Gadget 3 TP; Widget↔Widgets: description TP, qty and amount
    # FP+FN; Extra unmatched: 3 FP. b's items are not labelled. → TP 4, FP 5, FN 2.
    assert (summary["line_items"]["tp"], summary["line_items"]["fp"]) == (4, 5)
    assert summary["line_items"]["fn"] == 2
    assert summary["line_items"]["micro_f1"] == round(8 / 15, 4)
    assert summary["micro_f1"] == round(18 / 30, 4)
    assert report.micro_f1 == pytest.approx(0.6)
    fields = summary["datasets"]["demo"]["fields"]
    assert fields["invoice_number"]["micro_f1"] == round(2 / 5, 4)
    assert fields["date"]["micro_f1"] == round(2 / 3, 4)
    assert fields["total"]["micro_f1"] == 0.8
    assert fields["vendor"]["micro_f1"] == 1.0
    qty = fields["items.qty"]
    assert (qty["tp"], qty["fp"], qty["fn"]) == (1, 2, 1)
    assert summary["datasets"]["demo"]["field_mapping"] == {
        "invoice_number": "invoice_number",
        "date": "invoice_date",
        "total": "total_amount",
        "vendor": "vendor_name",
        "items": "line_items",
        "items.description": "line_items.description",
        "items.qty": "line_items.quantity",
        "items.amount": "line_items.amount",
    }
    assert [f["document"] for f in summary["failures"]] == ["c.png"]
    assert summary["failed"] == 1 and summary["documents"] == 3
    table = report.dataset_table().set_index("dataset")
    assert table.loc["demo", "header_f1"] == round(10 / 15, 4)
    assert table.loc["demo", "line_items_f1"] == round(8 / 15, 4)


def test_reports_are_written(eval_folder: Path, tmp_path: Path) -> None:
    report = evaluate(eval_folder, extractor=FAKE, limit=1)
    assert report.summary()["documents"] == 1
    assert "a.txt" not in report.to_csv(tmp_path / "r.csv").read_text()
    assert "items.qty" in report.to_csv(tmp_path / "r.csv").read_text()
    assert "<table" in report.to_html(tmp_path / "r.html").read_text()
    assert "Datasets" in report.to_text()


def test_cli_json_has_the_documented_keys(eval_folder: Path) -> None:
    result = CliRunner().invoke(main, ["eval", str(eval_folder), "--extractor", FAKE, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {"micro_f1", "header", "line_items", "datasets", "fields", "failures"} <= set(summary)
    assert summary["micro_f1"] == 0.6
    assert {"micro_f1", "precision", "recall", "tp", "fp", "fn"} <= set(summary["header"])
    demo = summary["datasets"]["demo"]
    assert {"micro_f1", "header", "line_items", "fields", "unmapped"} <= set(demo)
    assert demo["line_items"]["micro_f1"] == round(8 / 15, 4)


def test_cli_reports_an_unknown_dataset_cleanly(eval_folder: Path) -> None:
    result = CliRunner().invoke(main, ["eval", str(eval_folder), "--dataset", "nope"])
    assert result.exit_code == 1
    assert "no dataset 'nope'" in result.output


@pytest.mark.skipif(not SHARED_EVAL.is_dir(), reason="shared/eval is not available")
def test_shared_eval_invoice2data_runs() -> None:
    report = evaluate(SHARED_EVAL, datasets=["invoice2data"])
    summary = report.summary()
    assert list(summary["datasets"]) == ["invoice2data"]
    assert summary["micro_f1"] is not None and 0.0 <= summary["micro_f1"] <= 1.0


def test_errors_show_expected_and_got_per_field_with_document_and_page(
    eval_folder: Path,
) -> None:
    report = evaluate(eval_folder, extractor=FAKE)
    found = {(e.document, e.field, e.item): e for e in report.errors}
    number = found["b.txt", "invoice_number", None]
    assert (number.kind, number.expected, number.got) == ("wrong", "INV-2", "INV-3")
    # The fake extractor grounds nothing, so no value has a page.
    assert number.page is None and number.as_row()["page"] == "no evidence"
    assert found["b.txt", "date", None].kind == "missing"
    assert found["c.png", "total", None].expected == 10  # a failed document misses everything
    qty = found["a.txt", "items.qty", 1]  # Widget (labelled item 1) paired with Widgets
    assert (qty.kind, qty.expected, qty.got) == ("wrong", 2, 3)
    assert found["a.txt", "items.description", 3].kind == "spurious"  # "Extra", predicted 3rd
    assert ("a.txt", "invoice_number", None) not in found  # "inv-1 " is right
    # A few per field: wrong and missed values first, spurious item values last.
    assert [(e.document, e.kind) for e in report.error_examples(1) if e.field == "total"] == [
        ("c.png", "missing")
    ]
    picked = [(e.document, e.field) for e in report.error_examples(1)]
    assert len(picked) == len(set(picked)) and ("b.txt", "invoice_number") in picked
    assert len(report.error_examples(3)) == len(report.errors)


def test_long_values_are_shortened() -> None:
    from batchnb.evaluation.errors import shorten

    assert shorten("12  Main\nStreet") == "12 Main Street"
    assert shorten("x" * 100, width=10) == "x" * 9 + "…"
    assert shorten({"amount": 9.5, "currency": "EUR"}) == "9.5 EUR"
    assert shorten(None) == shorten("") == "(nothing)"


def test_cli_errors_prints_examples_and_the_html_has_them(
    eval_folder: Path, tmp_path: Path
) -> None:
    html_path = tmp_path / "report.html"
    options = ["--extractor", FAKE, "--errors", "--examples", "2", "--html", str(html_path)]
    result = CliRunner().invoke(main, ["eval", str(eval_folder), *options])
    assert result.exit_code == 0, result.output
    errors = result.stdout.split("Errors (up to 2 per field)", 1)[1]
    row = next(line for line in errors.splitlines() if "INV-2" in line)
    expected_row = ["demo", "invoice_number", "b.txt", "no", "evidence", "wrong", "INV-2", "INV-3"]
    assert row.split() == expected_row
    assert "items.qty" in errors
    page = html_path.read_text(encoding="utf-8")
    assert "<h2>Errors (up to 2 per field)</h2>" in page and "INV-3" in page
    plain = CliRunner().invoke(main, ["eval", str(eval_folder), "--extractor", FAKE])
    assert "Errors" not in plain.stdout
    as_json = CliRunner().invoke(
        main, ["eval", str(eval_folder), "--extractor", FAKE, "--errors", "--json"]
    )
    examples = json.loads(as_json.stdout)["errors"]
    assert {"dataset": "demo", "document": "b.txt", "section": "header"} | {
        "field": "invoice_number",
        "kind": "wrong",
        "expected": "INV-2",
        "got": "INV-3",
        "page": None,
        "item": None,
    } in examples


def test_cli_part_must_be_k_of_n(eval_folder: Path) -> None:
    result = CliRunner().invoke(main, ["eval", str(eval_folder), "--part", "3/2"])
    assert result.exit_code == 2
    assert "not K/N" in result.output


@pytest.mark.skipif(not SHARED_EVAL.is_dir(), reason="shared/eval is not available")
def test_shared_eval_errors_point_at_the_page_of_the_evidence() -> None:
    # Every FeRD sample (a few seconds): some still have item errors on page 2 or later.
    report = evaluate(SHARED_EVAL, datasets=["zugferd-corpus"])
    truth = {d.file_name: d.fields for ds in load_datasets(SHARED_EVAL) for d in ds.documents}
    assert report.errors, "the offline extractor is not perfect on these documents"
    pages_seen = set()
    for example in report.errors:
        assert example.document in truth
        if example.section == "header":
            assert example.expected == truth[example.document][example.field]
        if example.kind == "missing":
            assert example.page is None
        elif example.kind == "wrong":
            assert isinstance(example.page, int) and example.page >= 1
            pages_seen.add(example.page)
    # The FeRD samples print line items on page 2 or later: item errors point there.
    assert any(e.page and e.page > 1 for e in report.errors if e.section == "line_items"), (
        pages_seen
    )
    text = report.to_text(examples=2)
    assert "Errors (up to 2 per field)" in text and "zugferd__" in text
