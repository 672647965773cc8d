"""retry, cancel, delete, bulk status and the audit trail, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from batchnb.cache.summary import cache_key_prefix
from batchnb.db.models import (
    AuditEvent,
    Document,
    Export,
    ExtractedData,
    ExtractionBatch,
    ExtractionJob,
    QueueItem,
    utcnow,
)
from batchnb.errors import (
    BatchnbError,
    BatchStateError,
    ConfigurationError,
    DocumentError,
    NotFoundError,
    PermissionDeniedError,
    SchemaError,
)
from batchnb.extract import FunctionExtractor, register_extractor
from batchnb.services import listing
from batchnb.services.audit_trail import AUDIT_COLUMNS, list_audit_events
from batchnb.services.listing import list_batches
from batchnb.services.manage import (
    bulk_update_status,
    cancel_batch,
    delete_batch,
    retry_failed,
)
from batchnb.services.submit import submit
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace, open_workspace

from .conftest import SAMPLES
from .test_listing import ADMIN, T0, Doc, Spec, seed

TEXT_SAMPLES = [
    SAMPLES / "maplewood-print-invoice.txt",
    SAMPLES / "ridgeback-bicycle-invoice.html",
    SAMPLES / "copperleaf-web-invoice.md",
]
PROMPT = "invoice number, date, total"
FAILING = "always-fails-test"


def _always_fails(document: Any, schema: Any) -> dict[str, Any]:
    raise DocumentError("this extractor refuses every document")


register_extractor(FAILING, lambda: FunctionExtractor(_always_fails, name=FAILING), replace=True)


@pytest.fixture(params=["workspace", "postgres_workspace"])
def ws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """SQLite and PostgreSQL; alice acts unless told otherwise, boss is an admin."""
    monkeypatch.setenv("BATCHNB_USER", "alice")
    monkeypatch.setenv("BATCHNB_ADMINS", ADMIN)
    # A cached page could only hide a missing invalidation if it outlived the test's reads.
    monkeypatch.setattr(listing, "LIST_TTL_SECONDS", 3600.0)
    workspace: Workspace = request.getfixturevalue(request.param)
    yield workspace


def _snapshot(workspace: Workspace) -> dict[str, Any]:
    """Every row that a refused operation must leave as it was."""
    with workspace.db.read() as session:
        return {
            model.__tablename__: sorted(
                tuple(row) for row in session.execute(select(*model.__table__.columns)).all()
            )
            for model in (ExtractionBatch, Document, ExtractionJob, ExtractedData, QueueItem)
        }


def _count(workspace: Workspace, model: Any, *where: Any) -> int:
    with workspace.db.read() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _events(workspace: Workspace) -> list[tuple[Any, ...]]:
    with workspace.db.read() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(
                    AuditEvent.actor, AuditEvent.action, AuditEvent.target_id, AuditEvent.allowed
                ).order_by(AuditEvent.id)
            )
        ]


def _status(workspace: Workspace, batch_id: int) -> str:
    with workspace.db.read() as session:
        return session.get_one(ExtractionBatch, batch_id).status


# ---------------------------------------------------------------- delete


def test_delete_removes_the_batch_and_its_unshared_files_only(ws: Workspace) -> None:
    shared, unique, other = b"%PDF- shared bytes", b"%PDF- only in A", b"%PDF- only in B"
    doomed, kept = seed(
        ws,
        [
            Spec(
                "A",
                status="processing",
                docs=[
                    Doc("shared.pdf", "completed", shared),
                    Doc("unique.pdf", "failed", unique),
                    Doc("running.pdf", "processing", b"%PDF- running"),
                    Doc("waiting.pdf", "pending", b"%PDF- waiting"),
                ],
            ),
            Spec(
                "B",
                docs=[Doc("same-bytes.pdf", "completed", shared), Doc("b.pdf", "completed", other)],
            ),
        ],
    )
    with ws.db.begin() as connection:
        connection.execute(
            insert(Export),
            {"owner": "alice", "batch_id": doomed, "format": "csv", "status": "completed"},
        )
    before_b = {
        model.__tablename__: _count(ws, model, model.batch_id == kept)
        for model in (Document, ExtractionJob, ExtractedData, QueueItem)
    }
    key = {
        name: ws.storage.put(data).key
        for name, data in (("shared", shared), ("unique", unique), ("other", other))
    }
    assert names_of(list_batches(workspace=ws)) == ["B", "A"]

    summary = delete_batch(doomed, workspace=ws)

    assert (summary.documents, summary.files_removed, summary.stopped) == (4, 3, 2)
    for model in (Document, ExtractionJob, ExtractedData, QueueItem):
        assert _count(ws, model, model.batch_id == doomed) == 0, model.__tablename__
    assert _count(ws, ExtractionBatch, ExtractionBatch.id == doomed) == 0
    after_b = {
        model.__tablename__: _count(ws, model, model.batch_id == kept)
        for model in (Document, ExtractionJob, ExtractedData, QueueItem)
    }
    assert (
        after_b
        == before_b
        == {
            "documents": 2,
            "extraction_jobs": 2,
            "extracted_data": 2,
            "queue_items": 2,
        }
    )
    assert ws.storage.exists(key["shared"]), "batch B still uses these bytes"
    assert ws.storage.exists(key["other"])
    assert not ws.storage.exists(key["unique"])
    with ws.db.read() as session:
        export = session.execute(select(Export)).scalar_one()
        event = session.execute(
            select(AuditEvent).where(AuditEvent.action == "delete")
        ).scalar_one()
    assert export.batch_id is None, "exports outlive their batch"
    assert (event.actor, event.target_id, event.allowed) == ("alice", str(doomed), True)
    assert event.details == {
        "name": "A",
        "owner": "alice",
        "documents": 4,
        "jobs": 4,
        "results": 1,
        "stopped": 2,
        "files": 3,
    }
    assert names_of(list_batches(workspace=ws)) == ["B"], "the cached page was invalidated"
    with pytest.raises(NotFoundError, match=f"batch {doomed} does not exist"):
        delete_batch(doomed, workspace=ws)


def names_of(page: listing.BatchPage) -> list[str]:
    return [row.name for row in page.rows]


def test_a_storage_error_after_delete_is_logged_not_raised(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (batch_id,) = seed(
        workspace,
        [Spec("A", owner=workspace.settings.user, docs=[Doc("a.pdf", "completed", b"%PDF-a")])],
    )

    def broken(key: str) -> None:
        raise OSError("storage is read-only")

    monkeypatch.setattr(workspace.storage, "delete", broken)
    summary = delete_batch(batch_id, workspace=workspace)
    assert (summary.documents, summary.files_removed) == (1, 0)
    assert _count(workspace, Document) == 0
    assert "was not removed" in caplog.text and "storage is read-only" in caplog.text


def test_deleting_a_batch_while_a_worker_runs_it(workspace: Workspace) -> None:
    """Whatever the worker was doing, nothing of the batch survives and the next batch runs."""
    worker = start_worker(workspace, threads=2)
    try:
        batch = submit(TEXT_SAMPLES, PROMPT, workspace=workspace)
        # SQLite hands the highest id out again once it is deleted; a later batch keeps
        # the deleted id from being reused, so its rows can be looked for below.
        submit(TEXT_SAMPLES[2:], PROMPT, name="keeper", workspace=workspace)
        time.sleep(0.3)
        delete_batch(batch.id, workspace=workspace)
        after = submit(TEXT_SAMPLES[:1], PROMPT, name="after", workspace=workspace)
        assert after.wait(timeout=60).completed == 1
    finally:
        worker.stop()
    for model in (Document, ExtractionJob, ExtractedData, QueueItem):
        assert _count(workspace, model, model.batch_id == batch.id) == 0
    # The later batch stored the same bytes again, so its file is there.
    with workspace.db.read() as session:
        key = session.scalars(
            select(Document.storage_key).where(Document.batch_id == after.id)
        ).one()
    assert workspace.storage.exists(key)


# ---------------------------------------------------------------- retry


def test_retry_reruns_only_the_failed_documents(ws: Workspace, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pdf"
    corrupt.write_bytes(b"%PDF-1.7\nthis is not really a PDF\n%%EOF\n")
    worker = start_worker(ws, threads=2)
    try:
        batch = submit([*TEXT_SAMPLES, corrupt], PROMPT, workspace=ws)
        first = batch.wait(timeout=60)
        assert (first.completed, first.failed) == (3, 1)
        assert list_batches(workspace=ws).rows[0].failed == 1
        assert retry_failed(batch.id, workspace=ws) == 1
        batch.wait(timeout=60)
    finally:
        worker.stop()
    with ws.db.read() as session:
        jobs = dict(
            session.execute(
                select(Document.file_name, func.count(ExtractionJob.id))
                .join(ExtractionJob, ExtractionJob.document_id == Document.id)
                .group_by(Document.file_name)
            ).all()
        )
        results = dict(
            session.execute(
                select(Document.file_name, func.count(ExtractedData.id))
                .outerjoin(ExtractedData, ExtractedData.document_id == Document.id)
                .group_by(Document.file_name)
            ).all()
        )
        corrupt_doc = session.execute(
            select(Document).where(Document.file_name == "corrupt.pdf")
        ).scalar_one()
    assert jobs == {**{p.name: 1 for p in TEXT_SAMPLES}, "corrupt.pdf": 2}
    assert results == {**{p.name: 1 for p in TEXT_SAMPLES}, "corrupt.pdf": 0}
    assert corrupt_doc.status == "failed" and corrupt_doc.error
    assert _status(ws, batch.id) == "completed_with_errors"
    retry = [e for e in _events(ws) if e[1] == "retry"]
    assert retry == [("alice", "retry", str(batch.id), True)]


def test_retry_with_another_prompt_and_extractor_takes_effect(
    workspace: Workspace, worker: Any
) -> None:
    batch = submit(TEXT_SAMPLES[:2], PROMPT, extractor=FAILING, workspace=workspace)
    assert batch.wait(timeout=60).failed == 2
    assert _status(workspace, batch.id) == "failed"
    with workspace.db.read() as session:
        first, second = session.scalars(
            select(Document.id).where(Document.batch_id == batch.id).order_by(Document.id)
        ).all()
    queued = retry_failed(
        batch.id,
        document_ids=[first],
        prompt="invoice number",
        extractor="offline",
        workspace=workspace,
    )
    assert queued == 1
    batch.wait(timeout=60)
    results = batch.results().set_index("document_id")
    assert results.loc[first, "status"] == "completed"
    assert results.loc[first, "invoice_number"] == "TXT-0042"
    assert "total" not in results.columns, "the retry's prompt replaced the batch's"
    assert results.loc[second, "status"] == "failed"
    with workspace.db.read() as session:
        jobs = session.execute(
            select(ExtractionJob.document_id, ExtractionJob.extractor, ExtractionJob.prompt)
            .where(ExtractionJob.batch_id == batch.id)
            .order_by(ExtractionJob.id)
        ).all()
        event = session.execute(select(AuditEvent).where(AuditEvent.action == "retry")).scalar_one()
    assert [tuple(j) for j in jobs] == [
        (first, FAILING, None),
        (second, FAILING, None),
        (first, "offline", "invoice number"),
    ]
    assert event.details == {
        "prompt": "invoice number",
        "extractor": "offline",
        "documents": 1,
        "document_ids": [first],
    }
    assert _status(workspace, batch.id) == "completed_with_errors"


def test_retry_queues_new_jobs_and_reopens_the_batch(ws: Workspace) -> None:
    (batch_id,) = seed(
        ws,
        [
            Spec(
                "A",
                status="completed_with_errors",
                completed_day=1,
                docs=[Doc("ok.pdf"), Doc("bad1.pdf", "failed"), Doc("bad2.pdf", "failed")],
            )
        ],
    )
    assert retry_failed(batch_id, workspace=ws) == 2
    with ws.db.read() as session:
        batch = session.get_one(ExtractionBatch, batch_id)
        documents = {
            d.file_name: (d.status, d.error)
            for d in session.scalars(select(Document).where(Document.batch_id == batch_id))
        }
        new_items = session.scalars(
            select(QueueItem).where(QueueItem.status == "pending").order_by(QueueItem.id)
        ).all()
        new_jobs = session.scalars(
            select(ExtractionJob)
            .where(ExtractionJob.status == "pending")
            .order_by(ExtractionJob.id)
        ).all()
    assert (batch.status, batch.completed_at) == ("pending", None)
    assert documents == {
        "ok.pdf": ("completed", None),
        "bad1.pdf": ("pending", None),
        "bad2.pdf": ("pending", None),
    }
    assert [job.extractor for job in new_jobs] == ["offline", "offline"]
    assert [item.payload["job_id"] for item in new_items] == [job.id for job in new_jobs]
    assert all(item.batch_id == batch_id for item in new_items)
    # The failed items stay as history.
    assert _count(ws, QueueItem, QueueItem.status == "failed") == 2
    assert retry_failed(batch_id, workspace=ws) == 0, "nothing has failed any more"


def test_retry_checks_the_documents_it_is_given(ws: Workspace) -> None:
    batch_id, _ = seed(
        ws,
        [
            Spec("A", docs=[Doc("ok.pdf"), Doc("bad.pdf", "failed")]),
            Spec("B", docs=[Doc("other.pdf", "failed")]),
        ],
    )
    with ws.db.read() as session:
        ids = {name: i for name, i in session.execute(select(Document.file_name, Document.id))}
    before = _snapshot(ws)
    with pytest.raises(NotFoundError, match=f"batch {batch_id} has no document {ids['other.pdf']}"):
        retry_failed(batch_id, document_ids=[ids["bad.pdf"], ids["other.pdf"]], workspace=ws)
    with pytest.raises(BatchStateError, match=rf"have not failed: {ids['ok.pdf']} \(completed\)"):
        retry_failed(batch_id, document_ids=[ids["ok.pdf"], ids["bad.pdf"]], workspace=ws)
    with pytest.raises(SchemaError):
        retry_failed(batch_id, prompt="   ", workspace=ws)
    with pytest.raises(BatchnbError, match="no-such-extractor"):
        retry_failed(batch_id, extractor="no-such-extractor", workspace=ws)
    assert _snapshot(ws) == before
    assert retry_failed(batch_id, document_ids=[ids["bad.pdf"]], workspace=ws) == 1
    assert _count(ws, Document, Document.status == "failed") == 1, "B's document untouched"


# ---------------------------------------------------------------- cancel and bulk status


def test_cancel_stops_open_work_and_is_audited(ws: Workspace) -> None:
    batch_id, other_id = seed(
        ws,
        [
            Spec(
                "A",
                status="processing",
                docs=[Doc("done.pdf"), Doc("run.pdf", "processing"), Doc("wait.pdf", "pending")],
            ),
            Spec("B", status="processing", docs=[Doc("b.pdf", "pending")]),
        ],
    )
    assert list_batches(workspace=ws, sort="id", descending=False).rows[0].status == "processing"
    assert cancel_batch(batch_id, workspace=ws) == 2
    with ws.db.read() as session:
        documents = dict(
            session.execute(
                select(Document.file_name, Document.status).where(Document.batch_id == batch_id)
            ).all()
        )
    assert documents == {"done.pdf": "completed", "run.pdf": "cancelled", "wait.pdf": "cancelled"}
    assert _status(ws, batch_id) == "cancelled"
    assert _status(ws, other_id) == "processing"
    assert _count(ws, QueueItem, QueueItem.batch_id == other_id, QueueItem.status == "pending") == 1
    assert list_batches(workspace=ws, sort="id", descending=False).rows[0].status == "cancelled"
    assert _events(ws) == [("alice", "cancel", str(batch_id), True)]


def test_bulk_status_sets_allowed_statuses_all_or_nothing(ws: Workspace) -> None:
    done, errors, running = seed(
        ws,
        [
            Spec("done", status="completed", docs=[Doc("a.pdf")]),
            Spec("errors", status="completed_with_errors", docs=[Doc("b.pdf", "failed")]),
            Spec("running", status="processing", docs=[Doc("c.pdf", "processing")]),
        ],
    )
    with pytest.raises(ConfigurationError, match="cannot set batches to 'pending'"):
        bulk_update_status([done], "pending", workspace=ws)
    before = _snapshot(ws)
    with pytest.raises(BatchStateError, match=rf"pending or processing: {running} \(1 open\)"):
        bulk_update_status([errors, running], "completed", workspace=ws)
    with pytest.raises(NotFoundError, match="batch 9999 does not exist"):
        bulk_update_status([errors, 9999], "failed", workspace=ws)
    assert _snapshot(ws) == before
    assert bulk_update_status([errors, done], "completed", workspace=ws) == 1
    assert _status(ws, errors) == "completed"
    assert bulk_update_status([running, done], "cancelled", workspace=ws) == 2
    assert (_status(ws, running), _status(ws, done)) == ("cancelled", "cancelled")
    assert (
        _count(ws, QueueItem, QueueItem.batch_id == running, QueueItem.status == "cancelled") == 1
    )
    assert bulk_update_status([], "cancelled", workspace=ws) == 0
    with ws.db.read() as session:
        details = session.scalars(
            select(AuditEvent.details)
            .where(AuditEvent.action == "update_status")
            .order_by(AuditEvent.id)
        ).all()
    assert details == [
        {"from": "completed", "to": "completed", "items": 0},
        {"from": "completed_with_errors", "to": "completed", "items": 0},
        {"from": "completed", "to": "cancelled", "items": 0},
        {"from": "processing", "to": "cancelled", "items": 1},
    ]


# ---------------------------------------------------------------- authorization


def test_a_non_owner_is_refused_audited_and_nothing_changes(ws: Workspace) -> None:
    alices, bobs = seed(
        ws,
        [
            Spec(
                "alice's",
                status="processing",
                docs=[Doc("a.pdf", "failed", b"%PDF-a"), Doc("b.pdf", "pending", b"%PDF-b")],
            ),
            Spec("bob's", owner="bob", status="processing", docs=[Doc("c.pdf", "pending")]),
        ],
    )
    before = _snapshot(ws)
    files_before = sorted(p for p in Path(ws.settings.storage_url).rglob("*") if p.is_file())
    attempts = [
        ("delete", lambda: delete_batch(alices, actor="bob", workspace=ws)),
        ("retry", lambda: retry_failed(alices, actor="bob", workspace=ws)),
        ("cancel", lambda: cancel_batch(alices, actor="bob", workspace=ws)),
        (
            "update_status",
            lambda: bulk_update_status([bobs, alices], "cancelled", actor="bob", workspace=ws),
        ),
    ]
    for action, attempt in attempts:
        with pytest.raises(
            PermissionDeniedError,
            match=rf"user 'bob' may not {action} batch {alices} \(owned by alice\)",
        ):
            attempt()
    assert _snapshot(ws) == before, "a refusal changes nothing (bulk: not even bob's own batch)"
    assert (
        sorted(p for p in Path(ws.settings.storage_url).rglob("*") if p.is_file()) == files_before
    )
    assert _events(ws) == [("bob", action, str(alices), False) for action, _ in attempts]
    with ws.db.read() as session:
        details = session.scalars(select(AuditEvent.details).order_by(AuditEvent.id)).all()
    assert details[1] == {
        "prompt": None,
        "extractor": None,
        "owner": "alice",
        "reason": "not the owner",
    }


def test_an_admin_may_act_on_every_batch(ws: Workspace) -> None:
    (batch_id,) = seed(ws, [Spec("alice's", status="processing", docs=[Doc("a.pdf", "pending")])])
    assert cancel_batch(batch_id, actor=ADMIN, workspace=ws) == 1
    assert delete_batch(batch_id, actor=ADMIN, workspace=ws).documents == 1
    assert _events(ws) == [
        (ADMIN, "cancel", str(batch_id), True),
        (ADMIN, "delete", str(batch_id), True),
    ]


# ---------------------------------------------------------------- audit listing


def test_audit_events_show_what_each_user_may_see(ws: Workspace) -> None:
    alices, kept, bobs = seed(
        ws,
        [
            Spec("alice's", status="processing", docs=[Doc("a.pdf", "pending")]),
            Spec("alice's kept", status="processing", docs=[Doc("k.pdf", "pending")]),
            Spec("bob's", owner="bob", status="processing", docs=[Doc("b.pdf", "pending")]),
        ],
    )
    cancel_batch(bobs, actor="bob", workspace=ws)
    with pytest.raises(PermissionDeniedError):
        cancel_batch(alices, actor="bob", workspace=ws)
    cancel_batch(kept, actor=ADMIN, workspace=ws)
    delete_batch(alices, actor=ADMIN, workspace=ws)

    everything = list_audit_events(workspace=ws, actor=ADMIN)
    assert list(everything.columns) == list(AUDIT_COLUMNS)
    assert list(
        zip(everything["actor"], everything["action"], everything["allowed"], strict=True)
    ) == [
        (ADMIN, "delete", True),
        (ADMIN, "cancel", True),
        ("bob", "cancel", False),
        ("bob", "cancel", True),
    ], "newest first"
    alice = list_audit_events(workspace=ws)
    # Her batches' events, the deleted one's included (the delete event names the owner).
    assert sorted(zip(alice["action"], alice["target_id"], strict=True)) == [
        ("cancel", str(alices)),
        ("cancel", str(kept)),
        ("delete", str(alices)),
    ]
    bob = list_audit_events(workspace=ws, actor="bob")
    assert set(bob["actor"]) == {"bob"} and len(bob) == 2
    assert list(list_audit_events(workspace=ws, actor=ADMIN, action="delete")["target_id"]) == [
        str(alices)
    ]
    assert len(list_audit_events(workspace=ws, actor=ADMIN, actor_filter="bob")) == 2
    assert len(list_audit_events(workspace=ws, actor=ADMIN, target_id=bobs)) == 1
    assert len(list_audit_events(workspace=ws, actor=ADMIN, limit=3)) == 3
    assert list_audit_events(workspace=ws, actor=ADMIN, since=utcnow()).empty
    assert everything["details"].iloc[0]["owner"] == "alice"


def test_a_new_batch_never_shows_a_deleted_batchs_events(workspace: Workspace) -> None:
    (earlier,) = seed(workspace, [Spec("alice's", owner="alice", docs=[Doc("a.pdf", "pending")])])
    cancel_batch(earlier, actor="alice", workspace=workspace)
    delete_batch(earlier, actor="alice", workspace=workspace)
    now_in_days = (utcnow() - T0).total_seconds() / 86400
    (later,) = seed(workspace, [Spec("bob's", owner="bob", day=now_in_days)])
    assert later == earlier + 1, "a deleted batch's id is never given out again (migration 0004)"
    assert list_audit_events(workspace=workspace, actor="bob").empty
    cancel_batch(later, actor="bob", workspace=workspace)
    assert list(list_audit_events(workspace=workspace, actor="bob")["actor"]) == ["bob"]
    assert len(list_audit_events(workspace=workspace, actor="alice")) == 2


# ---------------------------------------------------------------- cache invalidation


@pytest.fixture(params=["memory://", "redis"])
def cached(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A workspace whose list pages would be served for an hour unless invalidated."""
    url = request.param if request.param != "redis" else request.getfixturevalue("redis_url")
    monkeypatch.setattr(listing, "LIST_TTL_SECONDS", 3600.0)
    workspace = open_workspace(home=str(tmp_path / "cached"), cache_url=url)
    yield workspace
    workspace.close()
    if url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(url)
        prefix = cache_key_prefix(workspace.settings.database_url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def test_every_change_is_visible_on_the_next_list(cached: Workspace) -> None:
    owner = cached.settings.user
    first, second, third = seed(
        cached,
        [
            Spec("first", owner=owner, status="processing", docs=[Doc("a.pdf", "pending")]),
            Spec("second", owner=owner, status="failed", day=1, docs=[Doc("b.pdf", "failed")]),
            Spec("third", owner=owner, status="completed", day=2, docs=[Doc("c.pdf")]),
        ],
    )

    def statuses() -> dict[str, tuple[str, int]]:
        page = list_batches(workspace=cached)
        return {row.name: (row.status, row.failed) for row in page.rows}

    assert statuses() == {
        "first": ("processing", 0),
        "second": ("failed", 1),
        "third": ("completed", 0),
    }
    cancel_batch(first, workspace=cached)
    assert statuses()["first"] == ("cancelled", 0)
    retry_failed(second, workspace=cached)
    assert statuses()["second"] == ("pending", 0)
    bulk_update_status([third], "failed", workspace=cached)
    assert statuses()["third"] == ("failed", 0)
    delete_batch(third, workspace=cached)
    assert set(statuses()) == {"first", "second"}
    assert cached.cache.stats().hits == 0, "every read after a change was a miss"
    assert statuses() == statuses() and cached.cache.stats().hits == 2
