"""The result cache (a rerun extracts nothing) and validation flags on stored results."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from batchnb.db.models import ExtractedData, ExtractionBatch, ExtractionJob
from batchnb.errors import SchemaError
from batchnb.extract import FunctionExtractor, OfflineExtractor, register_extractor
from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace, open_workspace

from .conftest import SAMPLES

CALLS: list[str] = []


def _counting(document, schema):  # type: ignore[no-untyped-def]
    CALLS.append(schema.hash())
    return OfflineExtractor().extract(document, schema)


register_extractor(
    "counting-test", lambda: FunctionExtractor(_counting, name="counting-test"), replace=True
)


@pytest.fixture
def inline(tmp_path: Path) -> Iterator[Workspace]:
    """Every document runs inside submit (Huey's immediate mode)."""
    workspace = open_workspace(home=str(tmp_path / "h"), queue_url="memory://")
    CALLS.clear()
    yield workspace
    workspace.close()


def _rows(workspace: Workspace, batch_id: int) -> list[tuple[ExtractedData, str | None]]:
    with workspace.db.read() as session:
        return list(
            session.execute(
                select(ExtractedData, ExtractionJob.parser)
                .join(ExtractionJob, ExtractionJob.id == ExtractedData.job_id)
                .where(ExtractedData.batch_id == batch_id)
                .order_by(ExtractedData.document_id)
            ).all()
        )


def test_rerunning_an_unchanged_batch_extracts_nothing(inline: Workspace) -> None:
    first = submit([SAMPLES], "invoice number, total", extractor="counting-test", workspace=inline)
    assert len(CALLS) == 7
    second = submit([SAMPLES], "invoice number, total", extractor="counting-test", workspace=inline)
    assert len(CALLS) == 7, "the second run must not call the extractor"
    ids = ["document_id", "batch_id"]  # the only columns that differ between the two batches
    assert second.results().drop(columns=ids).equals(first.results().drop(columns=ids))
    parsers = [parser for _, parser in _rows(inline, second.id)]
    assert all(parser and parser.startswith("cached:") for parser in parsers)


def test_a_different_schema_is_not_served_from_the_cache(inline: Workspace) -> None:
    submit([SAMPLES], "invoice number, total", extractor="counting-test", workspace=inline)
    submit([SAMPLES], "invoice number, date", extractor="counting-test", workspace=inline)
    assert len(CALLS) == 14


def test_validation_flags_are_stored_on_the_result(inline: Workspace) -> None:
    # The sample prints no due date, and its two item amounts add up to its total.
    batch = submit(
        [SAMPLES / "maplewood-print-invoice.txt"],
        "invoice number, due date, total",
        rules=[{"required": ["invoice_number", "due_date", "total"]}],
        workspace=inline,
    )
    [(row, _)] = _rows(inline, batch.id)
    assert row.data["invoice_number"] == "TXT-0042"
    assert row.data["due_date"] is None
    assert [(f["rule"], f["field"]) for f in row.flags] == [("required", "due_date")]


def test_a_rule_naming_an_unknown_field_is_refused_before_anything_is_stored(
    inline: Workspace,
) -> None:
    with pytest.raises(SchemaError, match="validation rule 1"):
        submit([SAMPLES], "invoice number", rules=[{"required": ["total"]}], workspace=inline)
    with inline.db.read() as session:
        assert session.scalars(select(ExtractionBatch.id)).all() == []


ITEMS_CSV = (
    b"description,quantity,amount\nPosters,150,525.00\nBooklets,200,320.00\nFlyers,500,95.00\n"
)


def _first_item_only(document, schema):  # type: ignore[no-untyped-def]
    result = OfflineExtractor().extract(document, schema).data()
    return {**result, "line_items": result["line_items"][:1]}


register_extractor(
    "first-item-only-test",
    lambda: FunctionExtractor(_first_item_only, name="first-item-only-test"),
    replace=True,
)


@pytest.mark.parametrize(("extractor", "expected"), [("offline", []), ("first-item-only-test", 1)])
def test_arrays_shorter_than_their_table_are_flagged(
    inline: Workspace, extractor: str, expected: object
) -> None:
    batch = submit(
        [("items.csv", ITEMS_CSV)],
        "line items (description, quantity, amount)",
        extractor=extractor,
        workspace=inline,
    )
    [(row, _)] = _rows(inline, batch.id)
    incomplete = [flag for flag in row.flags if flag["rule"] == "incomplete"]
    if expected == []:
        assert len(row.data["line_items"]) == 3 and incomplete == []
    else:
        assert [flag["message"] for flag in incomplete] == [
            "line_items has 1 of the 3 rows of the table on page 1"
        ]


def test_no_cache_extracts_again_and_later_runs_reuse_the_newest_result(
    inline: Workspace,
) -> None:
    submit([SAMPLES], "invoice number, total", extractor="counting-test", workspace=inline)
    assert len(CALLS) == 7
    fresh = submit(
        [SAMPLES],
        "invoice number, total",
        extractor="counting-test",
        result_cache=False,
        workspace=inline,
    )
    assert len(CALLS) == 14, "result_cache=False must extract every document again"
    assert fresh.info().options["result_cache"] is False
    assert not any(parser.startswith("cached:") for _, parser in _rows(inline, fresh.id))
    again = submit([SAMPLES], "invoice number, total", extractor="counting-test", workspace=inline)
    assert len(CALLS) == 14
    newest = {row.document_id: row.id for row, _ in _rows(inline, fresh.id)}
    reused = [row for row, _ in _rows(inline, again.id)]
    assert all(row.cache_key for row in reused)
    # The reused values are the fresh run's (the newest result with each key).
    fresh_data = {row.cache_key: row.data for row, _ in _rows(inline, fresh.id)}
    assert all(row.data == fresh_data[row.cache_key] for row in reused)
    assert len(newest) == 7


def test_the_result_cache_setting_turns_reuse_off(tmp_path: Path) -> None:
    workspace = open_workspace(home=str(tmp_path / "h"), queue_url="memory://", result_cache=False)
    CALLS.clear()
    try:
        for _ in range(2):
            submit([SAMPLES], "invoice number", extractor="counting-test", workspace=workspace)
        assert len(CALLS) == 14
    finally:
        workspace.close()


class _Versioned:
    """An extractor whose ``version`` says when its output changed."""

    name = "versioned-test"
    version = "1"

    def extract(self, document, schema):  # type: ignore[no-untyped-def]
        CALLS.append(schema.hash())
        return OfflineExtractor().extract(document, schema)


def test_a_new_extractor_version_is_a_new_cache_key(tmp_path: Path) -> None:
    register_extractor("versioned-test", _Versioned, replace=True)
    home = str(tmp_path / "h")
    CALLS.clear()

    def run_once() -> None:
        workspace = open_workspace(home=home, queue_url="memory://")  # a fresh process's pool
        try:
            submit([SAMPLES], "invoice number", extractor="versioned-test", workspace=workspace)
        finally:
            workspace.close()

    run_once()
    run_once()
    assert len(CALLS) == 7, "the same version reuses every result"
    _Versioned.version = "2"
    try:
        run_once()
    finally:
        _Versioned.version = "1"
    assert len(CALLS) == 14, "a new version extracts again"
