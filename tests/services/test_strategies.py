"""Prompt strategies of a batch: a schema given directly, per-document prompts, "auto" routing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select

from batchnb.db.models import ExtractedData, ExtractionBatch
from batchnb.errors import ConfigurationError, SchemaError
from batchnb.extract import Field, Schema
from batchnb.extract.classify import DOCUMENT_TYPES
from batchnb.extract.schema_input import coerce_schema
from batchnb.extract.templates import FALLBACK, builtin_templates, load_templates
from batchnb.queue.worker import Worker
from batchnb.services.submit import submit
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace, open_workspace

from .conftest import SAMPLES

INVOICE = SAMPLES / "maplewood-print-invoice.txt"
RECEIPT_TEXT = b"""SUNNY SIDE CAFE
12 Harbour Street, Portsmouth
RECEIPT
Date: 14/03/2024
Cashier: Tom
Latte              3.50
Croissant          2.20
TOTAL              5.70
Cash              10.00
Change             4.30
Thank you for your visit!
"""
RECEIPT = ("cafe-receipt.txt", RECEIPT_TEXT)
VAGUE = ("notes.txt", b"Meeting notes\nWe paid in cash for the coffee.\nNext meeting: Monday.\n")


@pytest.fixture
def inline(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace in immediate mode: each document runs during ``submit``."""
    ws = open_workspace(home=str(tmp_path / "h"), queue_url="memory://")
    yield ws
    ws.close()


def _result_by_document(workspace: Workspace, batch_id: int) -> list[ExtractedData]:
    with workspace.db.read() as session:
        return list(
            session.scalars(
                select(ExtractedData)
                .where(ExtractedData.batch_id == batch_id)
                .order_by(ExtractedData.document_id)
            )
        )


# A schema given directly


def test_a_schema_dict_is_used_instead_of_a_prompt(inline: Workspace) -> None:
    schema = {
        "properties": {
            "invoice_number": {"type": "string", "title": "Invoice Number"},
            "total": {"type": "number", "title": "Total"},
        }
    }
    batch = submit([INVOICE], schema=schema, workspace=inline)
    info = batch.info()
    assert (info.strategy, info.prompt) == ("global", None)
    assert info.options["schema"] == coerce_schema(schema).to_dict()
    row = batch.results().iloc[0]
    assert row["status"] == "completed"
    assert row["invoice_number"] == "TXT-0042"
    assert row["total"] == pytest.approx(845.0)  # a number, not money: no currency column
    assert "total_currency" not in batch.results().columns
    [stored] = _result_by_document(inline, batch.id)
    assert stored.schema["fields"][1] == {"name": "total", "label": "Total", "type": "number"}


def test_a_schema_object_and_a_fields_dict(inline: Workspace) -> None:
    as_object = Schema(
        (Field("invoice_number", "invoice number"), Field("total", "total", "money"))
    )
    batch = submit([INVOICE], schema=as_object, workspace=inline)
    assert batch.results().iloc[0]["total_currency"] == "USD"
    as_fields = {"fields": ["invoice number", {"name": "total", "type": "money"}]}
    assert coerce_schema(as_fields) == as_object


class _PydanticLike:
    """What pydantic's ``model_json_schema()`` returns for a model with a list of sub-models."""

    calls: ClassVar[int] = 0

    @classmethod
    def model_json_schema(cls) -> dict[str, Any]:
        cls.calls += 1
        return {
            "$defs": {
                "LineItem": {
                    "properties": {
                        "description": {"title": "Description", "type": "string"},
                        "quantity": {"title": "Quantity", "type": "integer"},
                    },
                    "required": ["description", "quantity"],
                    "title": "LineItem",
                    "type": "object",
                }
            },
            "properties": {
                "invoice_number": {"title": "Invoice Number", "type": "string"},
                "total": {
                    "anyOf": [{"type": "number"}, {"type": "null"}],
                    "default": None,
                    "title": "Total",
                },
                "issued": {"format": "date", "title": "Issued", "type": "string"},
                "line_items": {
                    "items": {"$ref": "#/$defs/LineItem"},
                    "title": "Line Items",
                    "type": "array",
                },
            },
            "required": ["invoice_number", "issued", "line_items"],
            "title": "Invoice",
            "type": "object",
        }


def test_a_pydantic_model_class_is_read_through_its_json_schema(inline: Workspace) -> None:
    batch = submit([INVOICE], schema=_PydanticLike, workspace=inline)  # type: ignore[arg-type]
    assert _PydanticLike.calls == 1
    fields = {f["name"]: f for f in batch.info().options["schema"]["fields"]}
    assert fields["total"]["type"] == "number"
    assert fields["issued"]["type"] == "date"
    assert fields["line_items"]["type"] == "array"
    assert [sub["type"] for sub in fields["line_items"]["fields"]] == ["string", "number"]
    assert batch.progress().completed == 1


def test_a_schema_that_refers_to_nothing_is_an_error() -> None:
    broken = {"properties": {"rows": {"type": "array", "items": {"$ref": "#/$defs/Row"}}}}
    with pytest.raises(SchemaError, match="#/\\$defs/Row"):
        coerce_schema(broken)
    recursive = {
        "$defs": {"Node": {"properties": {"child": {"$ref": "#/$defs/Node"}}}},
        "properties": {"root": {"$ref": "#/$defs/Node"}},
    }
    with pytest.raises(SchemaError, match="recursive"):
        coerce_schema(recursive)


# Auto


def test_auto_gives_each_document_its_types_fields(inline: Workspace) -> None:
    batch = submit([INVOICE, RECEIPT], strategy="auto", workspace=inline)
    info = batch.info()
    assert info.strategy == "auto" and info.prompt is None
    assert info.options["templates"] == builtin_templates()
    assert info.options["min_confidence"] == 0.5
    assert batch.progress().completed == 2

    invoice, receipt = _result_by_document(inline, batch.id)
    assert invoice.evidence["_document"]["type"] == "invoice"
    assert invoice.evidence["_document"]["low_confidence"] is False
    assert invoice.evidence["_document"]["prompt"] == builtin_templates()["invoice"]
    assert "line_items" in invoice.data and "due_date" in invoice.data
    assert receipt.evidence["_document"]["type"] == "receipt"
    assert receipt.evidence["_document"]["confidence"] >= 0.5
    assert set(receipt.data) == {"company_name", "date", "address", "total"}

    results = batch.results().set_index("file_name")
    assert list(results.columns[:6]) == [
        "document_id",
        "batch_id",
        "status",
        "error",
        "document_type",
        "type_confidence",
    ]
    assert results.columns[-1] == "confidence"
    assert results.loc["maplewood-print-invoice.txt", "invoice_number"] == "TXT-0042"
    assert results.loc["cafe-receipt.txt", "total"] == pytest.approx(5.70)
    assert results.isna().loc["cafe-receipt.txt", "invoice_number"]  # the union of fields
    assert results.isna().loc["maplewood-print-invoice.txt", "company_name"]
    assert results["document_type"].to_dict() == {
        "maplewood-print-invoice.txt": "invoice",
        "cafe-receipt.txt": "receipt",
    }


def test_a_low_confidence_document_gets_the_fallback_and_a_flag(inline: Workspace) -> None:
    unrelated = ("poem.txt", b"Roses are red,\nviolets are blue.\n")
    batch = submit([INVOICE, VAGUE, unrelated], strategy="auto", workspace=inline)
    _, vague, other = _result_by_document(inline, batch.id)
    fallback = builtin_templates()[FALLBACK]
    assert vague.evidence["_document"]["type"] == "receipt"  # "cash": a weak hint
    assert vague.evidence["_document"]["confidence"] < 0.5
    assert vague.evidence["_document"]["low_confidence"] is True
    assert vague.evidence["_document"]["prompt"] == fallback
    assert set(vague.data) == {f.split(" (")[0].replace(" ", "_") for f in fallback.split(", ")}
    assert other.evidence["_document"]["type"] == "other"
    assert other.evidence["_document"]["prompt"] == fallback


def test_min_confidence_and_a_prompt_as_the_fallback(inline: Workspace) -> None:
    batch = submit([VAGUE], strategy="auto", min_confidence=0.0, workspace=inline)
    [vague] = _result_by_document(inline, batch.id)
    assert vague.evidence["_document"]["low_confidence"] is False
    assert vague.evidence["_document"]["prompt"] == builtin_templates()["receipt"]

    batch = submit([VAGUE], "date, total", strategy="auto", workspace=inline)
    [vague] = _result_by_document(inline, batch.id)
    assert vague.evidence["_document"]["prompt"] == "date, total"
    assert set(vague.data) == {"date", "total"}


def test_auto_with_templates_from_a_dict_and_from_a_folder(
    inline: Workspace, tmp_path: Path
) -> None:
    batch = submit(
        [RECEIPT], strategy="auto", templates={"receipt": "total, date"}, workspace=inline
    )
    [receipt] = _result_by_document(inline, batch.id)
    assert set(receipt.data) == {"total", "date"}
    assert batch.info().options["templates"]["invoice"] == builtin_templates()["invoice"]

    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "receipt.toml").write_text('prompt = """\ntotal,\ncompany name\n"""\n')
    (folder / "delivery_note.toml").write_text('prompt = "delivery number, date"\n')
    batch = submit([RECEIPT], strategy="auto", templates=folder, workspace=inline)
    [receipt] = _result_by_document(inline, batch.id)
    assert set(receipt.data) == {"total", "company_name"}
    assert batch.info().options["templates"]["delivery_note"] == "delivery number, date"


def test_auto_on_the_samples_with_a_worker(workspace: Workspace, worker: Worker) -> None:
    batch = submit([SAMPLES], strategy="auto", workspace=workspace)
    assert batch.wait(timeout=60).completed == 7
    types = batch.results().set_index("file_name")["document_type"]
    assert types["harbor-lane-bakery-receipt.pdf"] == "receipt"
    assert (types.drop("harbor-lane-bakery-receipt.pdf") == "invoice").all()


# Per document


def test_per_document_falls_back_to_the_default_prompt(inline: Workspace) -> None:
    batch = submit(
        [INVOICE, RECEIPT],
        "total",
        strategy="per_document",
        document_prompts={"cafe-receipt.txt": "date, total"},
        workspace=inline,
    )
    assert batch.info().strategy == "per_document"
    invoice, receipt = _result_by_document(inline, batch.id)
    assert set(invoice.data) == {"total"}
    assert set(receipt.data) == {"date", "total"}
    assert "_document" not in receipt.evidence


def test_per_document_with_a_schema_as_the_default(inline: Workspace) -> None:
    batch = submit(
        [INVOICE, RECEIPT],
        schema={"fields": [{"name": "total", "type": "number"}]},
        document_prompts={"cafe-receipt.txt": "date"},
        workspace=inline,
    )
    invoice, receipt = _result_by_document(inline, batch.id)
    assert invoice.data == {"total": pytest.approx(845.0)}
    assert set(receipt.data) == {"date"}


def test_per_document_without_a_default_needs_a_prompt_for_every_file(
    inline: Workspace,
) -> None:
    only_receipt = {"cafe-receipt.txt": "date, total"}
    batch = submit(
        [RECEIPT], strategy="per_document", document_prompts=only_receipt, workspace=inline
    )
    assert batch.progress().completed == 1
    with pytest.raises(SchemaError, match=r"no prompt for maplewood-print-invoice\.txt"):
        submit(
            [INVOICE, RECEIPT],
            strategy="per_document",
            document_prompts=only_receipt,
            workspace=inline,
        )


# Validation: nothing is stored when the arguments do not fit together


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({}, SchemaError, r"give a prompt \(e\.g\. .*\) or a schema"),
        ({"prompt": "total", "schema": {"fields": ["total"]}}, SchemaError, "not both"),
        ({"prompt": ""}, SchemaError, "empty"),
        ({"prompt": "total", "strategy": "per_document"}, SchemaError, "needs document_prompts"),
        ({"prompt": "total", "strategy": "magic"}, ConfigurationError, "'global', 'per_document'"),
        ({"strategy": "auto", "schema": {"fields": ["total"]}}, SchemaError, "templates="),
        ({"prompt": "total", "templates": {"invoice": "total"}}, ConfigurationError, "only by"),
        ({"prompt": "total", "min_confidence": 0.8}, ConfigurationError, "only by"),
        ({"strategy": "auto", "min_confidence": 1.5}, ConfigurationError, "within 0..1"),
        ({"schema": 42}, SchemaError, "got int"),
        ({"schema": {"columns": []}}, SchemaError, "'fields'"),
        ({"strategy": "auto", "templates": {"invoice": ""}}, SchemaError, "'invoice' .overrides"),
        ({"strategy": "auto", "templates": {"Bad Name": "total"}}, SchemaError, "snake_case"),
        (
            {"prompt": "total", "document_prompts": {"a.txt": " "}},
            SchemaError,
            "document_prompts\\['a.txt'\\]",
        ),
    ],
)
def test_arguments_that_do_not_fit(
    inline: Workspace, arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        submit([INVOICE], workspace=inline, **arguments)
    with inline.db.read() as session:
        assert session.scalar(select(func.count()).select_from(ExtractionBatch)) == 0


def test_a_bad_template_file_is_named(inline: Workspace, tmp_path: Path) -> None:
    (tmp_path / "receipt.toml").write_text('prompt = "total"\n')
    (tmp_path / "broken.toml").write_text("prompt = \n")
    with pytest.raises(SchemaError, match=r"broken\.toml.*not valid TOML"):
        submit([INVOICE], strategy="auto", templates=tmp_path, workspace=inline)
    (tmp_path / "broken.toml").write_text('description = "no prompt"\n')
    with pytest.raises(SchemaError, match=r"broken\.toml.*needs a 'prompt'"):
        load_templates(extra_dir=tmp_path)
    (tmp_path / "broken.toml").write_text('prompt = "total, total"\n')
    with pytest.raises(SchemaError, match=r"broken\.toml.*twice"):
        load_templates(extra_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_templates(extra_dir=tmp_path / "missing")


def test_every_classified_type_has_a_template() -> None:
    templates = load_templates()
    assert set(DOCUMENT_TYPES) - {"other"} | {FALLBACK} == set(templates)
    assert load_templates({"invoice": "total"})["invoice"] == "total"
    assert builtin_templates()["invoice"] != "total"  # overrides never leak into the built-ins


def test_strategies_on_postgres(postgres_workspace: Workspace) -> None:
    """The worker reads the stored schema and templates through JSON paths on PostgreSQL too."""
    worker = start_worker(postgres_workspace, threads=2)
    try:
        auto = submit([INVOICE, RECEIPT], strategy="auto", workspace=postgres_workspace)
        schema = {"fields": [{"name": "total", "type": "number"}]}
        given = submit([INVOICE], schema=schema, workspace=postgres_workspace)
        auto.wait(timeout=60)
        given.wait(timeout=60)
    finally:
        worker.stop()
    types = auto.results().set_index("file_name")["document_type"].to_dict()
    assert types == {"maplewood-print-invoice.txt": "invoice", "cafe-receipt.txt": "receipt"}
    assert given.results().iloc[0]["total"] == pytest.approx(845.0)
