"""Corrections and review on a real workspace: stored, audited, refused, typed, counted.

Batches run through a real worker (SQLite and PostgreSQL); the cases that need line items use
results written the way the worker writes them (``seed_batch``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

import batchnb
from batchnb.db.models import AuditEvent, Document, FieldCorrection
from batchnb.errors import BatchStateError, NotFoundError, PermissionDeniedError, SchemaError
from batchnb.extract import Field
from batchnb.services.batches import Batch
from batchnb.services.review import (
    Correction,
    ReviewStatus,
    correct_value,
    list_corrections,
    mark_reviewed,
    review_status,
)
from batchnb.services.review_values import coerce_value
from batchnb.services.submit import submit
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace

from .conftest import SAMPLES
from .test_exports import INVOICE, invoice, seed_batch

TEXT_SAMPLES = [
    SAMPLES / "maplewood-print-invoice.txt",
    SAMPLES / "ridgeback-bicycle-invoice.html",
    SAMPLES / "copperleaf-web-invoice.md",
]
PROMPT = "invoice number, date, total"
ADMIN = "boss"


@pytest.fixture(params=["workspace", "postgres_workspace"])
def ws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """SQLite and PostgreSQL; alice acts unless told otherwise, boss is an admin."""
    monkeypatch.setenv("BATCHNB_USER", "alice")
    monkeypatch.setenv("BATCHNB_ADMINS", ADMIN)
    workspace: Workspace = request.getfixturevalue(request.param)
    yield workspace


@pytest.fixture
def done(ws: Workspace) -> Iterator[Batch]:
    """Three text invoices extracted by a real worker, all completed."""
    worker = start_worker(ws, threads=2)
    try:
        batch = submit(TEXT_SAMPLES, PROMPT, workspace=ws)
        assert batch.wait(timeout=120, progress=False).completed == 3
        yield batch
    finally:
        worker.stop()


def _snapshot(workspace: Workspace) -> dict[str, Any]:
    with workspace.db.connect() as connection:
        return {
            "corrections": connection.execute(select(FieldCorrection.id)).all(),
            "reviewed": connection.execute(
                select(Document.id, Document.reviewed_at, Document.reviewed_by).order_by(
                    Document.id
                )
            ).all(),
        }


def _events(workspace: Workspace, action: str) -> list[AuditEvent]:
    with workspace.db.read() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


def test_a_correction_is_stored_audited_and_read_everywhere(ws: Workspace, done: Batch) -> None:
    before = done.results()
    document_id = int(before.document_id[0])
    extracted = before.total[0], before.total_currency[0]

    correction = correct_value(document_id, "total", "999.50", workspace=ws)

    assert isinstance(correction, Correction)
    assert correction.field == "total" and correction.corrected_by == "alice"
    assert correction.old_value == {"amount": extracted[0], "currency": extracted[1]}
    # Typed as extraction types money; the currency typed without one is kept.
    assert correction.new_value == {"amount": 999.5, "currency": extracted[1]}
    assert list_corrections(document_id=document_id, workspace=ws) == [correction]
    [event] = _events(ws, "correct")
    assert (event.actor, event.target_type, event.target_id) == (
        "alice",
        "document",
        str(document_id),
    )
    assert event.details["old"] == correction.old_value
    assert event.details["new"] == correction.new_value

    after = done.results()
    assert after.total[0] == 999.5
    assert after.corrected[0] == ["total"] and after.corrected[1] == []
    assert not after.reviewed.any()
    assert done.results(originals=True).total[0] == extracted[0]
    assert done.to_dataframe().total[0] == 999.5
    assert done.to_dataframe(originals=True).total[0] == extracted[0]


def test_the_newest_correction_wins_and_going_back_is_a_correction(
    ws: Workspace, done: Batch
) -> None:
    document_id = int(done.results().document_id[1])
    original = done.results().invoice_number[1]
    first = correct_value(document_id, "invoice_number", "INV-1", workspace=ws)
    second = correct_value(document_id, "invoice_number", "INV-2", workspace=ws)
    back = correct_value(document_id, "invoice_number", original, workspace=ws)

    assert (first.old_value, second.old_value, back.old_value) == (original, "INV-1", "INV-2")
    assert back.new_value == original
    assert [c.id for c in list_corrections(batch_id=done.id, workspace=ws)] == [
        back.id,
        second.id,
        first.id,
    ]  # newest first
    results = done.results()
    assert results.invoice_number[1] == original
    assert results.corrected[1] == ["invoice_number"]  # still corrected: it was checked
    assert review_status(done.id, workspace=ws).corrections == 3


def test_a_user_who_is_not_the_owner_is_refused_and_nothing_changes(
    ws: Workspace, done: Batch
) -> None:
    document_id = int(done.results().document_id[0])
    before = _snapshot(ws)

    with pytest.raises(PermissionDeniedError, match=r"mallory.*may not correct"):
        correct_value(document_id, "total", "1", workspace=ws, actor="mallory")
    with pytest.raises(PermissionDeniedError):
        mark_reviewed(document_id, workspace=ws, actor="mallory")
    with pytest.raises(PermissionDeniedError):
        list_corrections(batch_id=done.id, workspace=ws, actor="mallory")

    assert _snapshot(ws) == before
    refused = [e for e in _events(ws, "correct") if not e.allowed]
    assert [(e.actor, e.details["reason"]) for e in refused] == [("mallory", "not the owner")]
    # An admin may, and the owner sees it in their audit trail.
    assert correct_value(document_id, "total", "2", workspace=ws, actor=ADMIN).corrected_by == ADMIN
    trail = batchnb.list_audit_events(workspace=ws, action="correct")
    assert list(trail.actor) == [ADMIN, "mallory"]  # the refusal names her too


def test_a_bad_value_or_field_is_refused_and_nothing_is_stored(ws: Workspace, done: Batch) -> None:
    document_id = int(done.results().document_id[0])
    before = _snapshot(ws)

    with pytest.raises(SchemaError, match="'abc' is not a money for field 'total'"):
        correct_value(document_id, "total", "abc", workspace=ws)
    with pytest.raises(SchemaError, match="not a date for field 'date'"):
        correct_value(document_id, "date", "next tuesday", workspace=ws)
    with pytest.raises(SchemaError, match="no field 'iban'"):
        correct_value(document_id, "iban", "DE00", workspace=ws)
    with pytest.raises(SchemaError, match="not a field path"):
        correct_value(document_id, "total.x", "1", workspace=ws)
    with pytest.raises(SchemaError, match="is a money, not an array"):
        correct_value(document_id, "total.0.amount", "1", workspace=ws)
    with pytest.raises(NotFoundError):
        correct_value(10_000, "total", "1", workspace=ws)

    assert _snapshot(ws) == before
    assert _events(ws, "correct") == []


def test_a_document_that_did_not_complete_cannot_be_corrected_or_reviewed(
    workspace: Workspace,
) -> None:
    _, (ok, failed, pending) = seed_batch(
        workspace,
        [
            {
                "file_name": "a.pdf",
                "status": "completed",
                "results": [(INVOICE, invoice("A", [], 1))],
            },
            {"file_name": "b.pdf", "status": "failed", "error": "DocumentError: corrupt"},
            {"file_name": "c.pdf", "status": "pending"},
        ],
    )
    with pytest.raises(BatchStateError, match=f"document {failed} is failed"):
        correct_value(failed, "total", "1", workspace=workspace)
    with pytest.raises(BatchStateError, match=f"{pending} \\(pending\\)"):
        mark_reviewed([ok, pending], workspace=workspace)
    with workspace.db.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(FieldCorrection)) == 0
        assert connection.scalar(select(func.count(Document.reviewed_at))) == 0


def test_an_item_correction_patches_that_item_only(workspace: Workspace) -> None:
    batch_id, (document_id,) = seed_batch(
        workspace,
        [
            {
                "file_name": "a.pdf",
                "status": "completed",
                "results": [(INVOICE, invoice("A-1", [("chairs", 10.0), ("desk", 5.5)], 15.5))],
            }
        ],
    )
    correction = correct_value(document_id, "line_items.1.amount", "7.25", workspace=workspace)

    assert correction.old_value == {"amount": 5.5, "currency": "EUR"}
    assert correction.new_value == {"amount": 7.25, "currency": "EUR"}
    items = batchnb.get_batch(batch_id, workspace).results().line_items[0]
    assert items == [
        {"description": "chairs", "amount": 10.0, "amount_currency": "EUR"},
        {"description": "desk", "amount": 7.25, "amount_currency": "EUR"},
    ]
    with pytest.raises(SchemaError, match="has items 0 to 1, not item 2"):
        correct_value(document_id, "line_items.2.amount", "1", workspace=workspace)
    with pytest.raises(SchemaError, match="have no field 'price'"):
        correct_value(document_id, "line_items.0.price", "1", workspace=workspace)
    whole = correct_value(
        document_id,
        "line_items",
        [{"description": "sofa", "amount": "EUR 99"}],
        workspace=workspace,
    )
    assert whole.new_value == [
        {"description": "sofa", "amount": {"amount": 99.0, "currency": "EUR"}}
    ]


def test_reviewed_documents_are_counted_and_can_be_unmarked(ws: Workspace, done: Batch) -> None:
    ids = [int(i) for i in done.results().document_id]
    assert review_status(done.id, workspace=ws) == ReviewStatus(done.id, 3, 3, 0, 0, 0)

    assert mark_reviewed(ids[:2], workspace=ws) == 2
    assert mark_reviewed(ids[0], workspace=ws) == 0  # already reviewed: kept as it was
    correct_value(ids[0], "total", "5", workspace=ws)

    status = done.review_status()
    assert (status.reviewed, status.corrected_documents, status.corrections) == (2, 1, 1)
    assert status.text == "reviewed 2 of 3"
    assert "reviewed 2 of 3" in (done._repr_html_() or "")
    assert "reviewed 2 of 3" in status._repr_html_()
    assert list(done.results().reviewed) == [True, True, False]
    with ws.db.connect() as connection:
        assert (
            connection.scalar(select(Document.reviewed_by).where(Document.id == ids[0])) == "alice"
        )

    assert mark_reviewed(ids, reviewed=False, workspace=ws) == 2
    assert review_status(done.id, workspace=ws).reviewed == 0
    assert [e.details["documents"] for e in _events(ws, "review")] == [2, 0]
    assert [e.details["documents"] for e in _events(ws, "unreview")] == [2]
    with pytest.raises(NotFoundError):
        review_status(10_000, workspace=ws)


@pytest.mark.parametrize(
    ("kind", "given", "expected"),
    [
        ("string", " ACME  Ltd ", "ACME  Ltd"),
        ("string", 42, "42"),
        ("number", "12.50", 12.5),
        ("number", "1.234,5", 1234.5),
        ("number", 3, 3.0),
        ("money", "12.50", {"amount": 12.5, "currency": "USD"}),
        ("money", "EUR 12.50", {"amount": 12.5, "currency": "EUR"}),
        ("money", "€ 1.234,50", {"amount": 1234.5, "currency": "EUR"}),
        ("money", {"amount": "3", "currency": "gbp"}, {"amount": 3.0, "currency": "GBP"}),
        ("date", "2024-03-01", "2024-03-01"),
        ("date", "1 March 2024", "2024-03-01"),
        ("boolean", "yes", True),
        ("boolean", False, False),
        ("string", "", None),
        ("date", None, None),
    ],
)
def test_values_are_typed_like_extracted_ones(kind: str, given: Any, expected: Any) -> None:
    field = Field("x", "x", kind)  # type: ignore[arg-type]
    previous = {"amount": 1.0, "currency": "USD"}
    assert coerce_value(field, given, previous=previous) == expected


@pytest.mark.parametrize(
    ("kind", "given"),
    [
        ("number", "12 apples"),
        ("number", True),
        ("number", "nan"),
        ("money", "about 12"),
        ("money", {"amount": 1, "currency": "XYZ"}),
        ("date", "2024-02-30"),
        ("date", "2024-03-01 and 2024-03-02"),
        ("boolean", "maybe"),
        ("string", ["a"]),
    ],
)
def test_values_that_are_not_of_the_type_are_refused(kind: str, given: Any) -> None:
    with pytest.raises(SchemaError, match="field 'x'"):
        coerce_value(Field("x", "x", kind), given)  # type: ignore[arg-type]
