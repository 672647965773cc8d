"""The export service: selections read from the database, export rows, queue, expiry, access."""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow.parquet as pq
import pytest
from sqlalchemy import insert, select, update

import batchnb
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
from batchnb.errors import ExportError, PermissionDeniedError
from batchnb.jobs.export_records import Selection, merge_fields
from batchnb.queue.worker import Worker
from batchnb.services.batches import get_batch
from batchnb.services.exports import cancel_export, export, safe_file_name
from batchnb.services.results import export_dataframe
from batchnb.services.submit import submit
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace, open_workspace

from .conftest import SAMPLES

INVOICE = {
    "fields": [
        {"name": "invoice_number", "type": "string"},
        {"name": "invoice_date", "type": "date"},
        {"name": "total", "type": "money"},
        {
            "name": "line_items",
            "type": "array",
            "fields": [
                {"name": "description", "type": "string"},
                {"name": "amount", "type": "money"},
            ],
        },
    ]
}
RECEIPT = {
    "fields": [
        {"name": "company", "type": "string"},
        {"name": "total", "type": "money"},
    ]
}


def seed_batch(
    workspace: Workspace,
    documents: list[dict[str, Any]],
    *,
    owner: str | None = None,
    name: str = "seeded",
) -> tuple[int, list[int]]:
    """A batch with documents and results written the way the worker writes them.

    Each document dict has ``file_name``, ``status``, optional ``error`` and optional
    ``results``: a list of (schema, data) tuples, oldest first.
    """
    owner = owner or workspace.settings.user
    now = utcnow()
    with workspace.db.begin() as connection:
        batch_id = connection.execute(
            insert(ExtractionBatch).returning(ExtractionBatch.id),
            {
                "name": name,
                "owner": owner,
                "status": "completed",
                "strategy": "global",
                "extractor": "offline",
                "plan": "local",
                "options": {},
                "document_count": len(documents),
                "created_at": now,
                "updated_at": now,
            },
        ).scalar_one()
        document_ids = []
        for number, spec in enumerate(documents):
            document_id = connection.execute(
                insert(Document).returning(Document.id),
                {
                    "batch_id": batch_id,
                    "owner": owner,
                    "file_name": spec["file_name"],
                    "content_hash": f"{batch_id:08d}{number:056d}",
                    "storage_key": f"aa/{batch_id}-{number}",
                    "size_bytes": 1,
                    "file_type": "pdf",
                    "mime_type": "application/pdf",
                    "status": spec["status"],
                    "error": spec.get("error"),
                    "created_at": now,
                    "updated_at": now,
                },
            ).scalar_one()
            document_ids.append(document_id)
            for schema, data in spec.get("results", []):
                job_id = connection.execute(
                    insert(ExtractionJob).returning(ExtractionJob.id),
                    {
                        "batch_id": batch_id,
                        "document_id": document_id,
                        "owner": owner,
                        "status": "completed",
                        "extractor": "offline",
                        "created_at": now,
                        "updated_at": now,
                    },
                ).scalar_one()
                connection.execute(
                    insert(ExtractedData),
                    {
                        "job_id": job_id,
                        "document_id": document_id,
                        "batch_id": batch_id,
                        "data": data,
                        "evidence": {
                            name: {"page": 1, "text": str(value)} for name, value in data.items()
                        },
                        "schema": schema,
                        "confidence": 0.9,
                        "flags": [],
                        "created_at": now,
                    },
                )
    return batch_id, document_ids


def invoice(number: str, items: list[tuple[str, float]], total: float) -> dict[str, Any]:
    return {
        "invoice_number": number,
        "invoice_date": "2024-03-05",
        "total": {"amount": total, "currency": "EUR"},
        "line_items": [
            {"description": d, "amount": {"amount": a, "currency": "EUR"}} for d, a in items
        ],
    }


@pytest.fixture
def invoices(workspace: Workspace) -> tuple[int, list[int]]:
    return seed_batch(
        workspace,
        [
            {
                "file_name": "a.pdf",
                "status": "completed",
                "results": [(INVOICE, invoice("A-1", [("Stühle ✓", 10.0), ("=1+1", 5.5)], 15.5))],
            },
            {
                "file_name": "b.pdf",
                "status": "completed",
                "results": [
                    (INVOICE, invoice("old", [("stale", 1.0)], 1.0)),
                    (INVOICE, invoice("B-2", [], 0.0)),
                ],
            },
            {"file_name": "broken.pdf", "status": "failed", "error": "DocumentError: corrupt"},
            {"file_name": "waiting.pdf", "status": "pending"},
        ],
        name="März / ../invoices",
    )


def test_csv_export_of_a_batch_reads_back_as_the_stored_results(
    workspace: Workspace, invoices: tuple[int, list[int]], tmp_path: Path
) -> None:
    batch_id, ids = invoices
    handle = export(batch_id, "csv", path=tmp_path / "out.csv", workspace=workspace)
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as handle_file:
        rows = list(csv.DictReader(handle_file))
    # Completed documents only (failed only when asked, waiting ones never); newest result wins.
    assert [r["document_id"] for r in rows] == [str(ids[0]), str(ids[1])]
    assert rows[0]["invoice_number"] == "A-1"
    assert rows[1]["invoice_number"] == "B-2"
    assert rows[0]["total"] == "15.5" and rows[0]["total_currency"] == "EUR"
    assert json.loads(rows[0]["line_items"]) == [
        {"description": "Stühle ✓", "amount": 10.0, "amount_currency": "EUR"},
        {"description": "=1+1", "amount": 5.5, "amount_currency": "EUR"},
    ]  # the cell starts with "[", so the JSON text inside needs no neutralising
    assert json.loads(rows[1]["line_items"]) == []
    row = handle.info()
    assert row.status == "completed"
    assert row.row_count == 2 and row.documents_total == 2 and row.documents_done == 2
    assert row.size_bytes == (tmp_path / "out.csv").stat().st_size
    assert row.location == str(tmp_path / "out.csv")
    assert row.owner == workspace.settings.user
    assert row.selection == {"batch_ids": [batch_id], "document_ids": []}
    assert (row.format, row.mode, row.managed, row.expires_at) == ("csv", "normal", False, None)


def test_multi_row_xlsx_repeats_document_columns_per_item(
    workspace: Workspace, invoices: tuple[int, list[int]], tmp_path: Path
) -> None:
    batch_id, ids = invoices
    path = export(
        batch_id,
        mode="multi-row",
        path=tmp_path / "items.xlsx",
        include_failed=True,
        workspace=workspace,
    ).wait()
    sheet = openpyxl.load_workbook(path).worksheets[0]  # read_only would trim empty cells
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    at = {name: header.index(name) for name in header}
    got = [
        (
            r[at["document_id"]],
            r[at["invoice_number"]],
            r[at["line_items.description"]],
            r[at["line_items.amount"]],
            r[at["status"]],
        )
        for r in rows
    ]
    assert got == [
        (ids[0], "A-1", "Stühle ✓", 10.0, "completed"),
        (ids[0], "A-1", "'=1+1", 5.5, "completed"),
        (ids[1], "B-2", None, None, "completed"),  # an empty array still gives its document
        (ids[2], None, None, None, "failed"),
    ]
    assert rows[0][at["invoice_date"]] == dt.datetime(2024, 3, 5)
    assert rows[3][at["error"]] == "DocumentError: corrupt"


def test_excel_sheets_mode_links_items_to_documents(
    workspace: Workspace, invoices: tuple[int, list[int]], tmp_path: Path
) -> None:
    batch_id, ids = invoices
    path = export(batch_id, "xlsx", "sheets", tmp_path / "s.xlsx", workspace=workspace).wait()
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames[0] == "Documents"
    documents = [list(r) for r in book["Documents"].iter_rows(values_only=True)]
    assert "line_items" not in documents[0]
    assert [r[0] for r in documents[1:]] == ids[:2]
    items = [list(r) for r in book[book.sheetnames[1]].iter_rows(values_only=True)]
    assert items[0][0] == "document_id"
    assert [(r[0], r[1]) for r in items[1:]] == [(ids[0], "Stühle ✓"), (ids[0], "'=1+1")]


def test_parquet_and_json_keep_types_and_arrays(
    workspace: Workspace, invoices: tuple[int, list[int]], tmp_path: Path
) -> None:
    batch_id, _ = invoices
    table = pq.read_table(
        export(batch_id, "parquet", path=tmp_path / "o.parquet", workspace=workspace).wait()
    ).to_pylist()
    assert table[0]["invoice_date"] == dt.date(2024, 3, 5)
    assert table[0]["line_items"][1] == {
        "description": "=1+1",  # kept verbatim: Parquet is not run by a spreadsheet
        "amount": 5.5,
        "amount_currency": "EUR",
    }
    documents = json.loads(
        export(
            batch_id, "json", path=tmp_path / "o.json", include_confidence=True, workspace=workspace
        )
        .wait()
        .read_text(encoding="utf-8")
    )
    assert documents[0]["confidence"] == 0.9
    assert documents[0]["evidence"]["invoice_number"] == {"page": 1, "text": "A-1"}
    assert documents[1]["line_items"] == []


def test_mixed_schemas_export_under_their_union(workspace: Workspace, tmp_path: Path) -> None:
    first, _ = seed_batch(
        workspace,
        [
            {
                "file_name": "i.pdf",
                "status": "completed",
                "results": [(INVOICE, invoice("I-1", [], 3.0))],
            }
        ],
    )
    second, _ = seed_batch(
        workspace,
        [
            {
                "file_name": "r.pdf",
                "status": "completed",
                "results": [
                    (RECEIPT, {"company": "Café Ñ", "total": {"amount": 2.5, "currency": "USD"}})
                ],
            }
        ],
    )
    frame = export_dataframe([first, second], workspace=workspace)
    assert list(frame.columns) == [
        "document_id",
        "file_name",
        "batch_id",
        "status",
        "error",
        "invoice_number",
        "invoice_date",
        "total",
        "total_currency",
        "line_items",
        "company",
    ]
    assert frame["company"].isna().tolist() == [True, False]
    assert frame["company"].tolist()[1] == "Café Ñ"
    assert frame["total"].tolist() == [3.0, 2.5]


def test_fields_with_clashing_types_become_text() -> None:
    merged = merge_fields(
        [
            {"name": "total", "type": "money"},
            {"name": "items", "type": "array", "fields": [{"name": "a", "type": "string"}]},
        ],
        [
            {"name": "total", "type": "number"},
            {"name": "items", "type": "array", "fields": [{"name": "b", "type": "date"}]},
        ],
    )
    assert merged == [
        {"name": "total", "type": "string"},
        {
            "name": "items",
            "type": "array",
            "fields": [{"name": "a", "type": "string"}, {"name": "b", "type": "date"}],
        },
    ]


def test_to_dataframe_both_modes(workspace: Workspace, invoices: tuple[int, list[int]]) -> None:
    batch_id, ids = invoices
    batch = get_batch(batch_id, workspace)
    normal = batch.to_dataframe()
    assert normal["document_id"].tolist() == ids[:2]
    assert str(normal["invoice_date"].dtype).startswith("datetime64")
    assert normal["line_items"].tolist()[1] == []
    rows = batch.to_dataframe(mode="multi-row", include_failed=True)
    assert rows["document_id"].tolist() == [ids[0], ids[0], ids[1], ids[2]]
    assert rows["line_items.description"].tolist()[:2] == ["Stühle ✓", "=1+1"]
    with pytest.raises(ExportError, match="array_field"):
        batch.to_dataframe(mode="multi-row", array_field="nope")


def test_a_managed_export_gets_a_safe_name_and_expires(
    workspace: Workspace, invoices: tuple[int, list[int]]
) -> None:
    batch_id, _ = invoices
    handle = export(batch_id, "jsonl", workspace=workspace)
    path = handle.wait()
    assert path.parent == workspace.settings.exports_dir
    assert path.name == f"batch-{batch_id}-{handle.id}.jsonl"
    row = handle.info()
    assert row.managed and row.expires_at is not None
    retention = dt.timedelta(hours=workspace.settings.export_retention_hours)
    assert abs((row.expires_at - row.updated_at) - retention) < dt.timedelta(seconds=1)
    # Not expired yet: the cleanup leaves it.
    assert workspace.remove_expired_exports() == 0 and path.exists()
    with workspace.db.begin() as connection:
        connection.execute(
            update(Export)
            .where(Export.id == handle.id)
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )
    # The hourly cleanup task of the workspace's queue removes it.
    cleanup = workspace.runtime.huey._registry.string_to_task(
        "batchnb.queue.tasks.batchnb.cleanup_temp_files"
    )
    cleanup().execute()
    assert not path.exists()
    assert handle.info().status == "expired" and handle.info().location is None
    assert handle.path is None


def test_a_user_path_is_never_removed_by_cleanup(
    workspace: Workspace, invoices: tuple[int, list[int]], tmp_path: Path
) -> None:
    handle = export(invoices[0], path=tmp_path / "mine.csv", workspace=workspace)
    with workspace.db.begin() as connection:
        connection.execute(update(Export).values(expires_at=utcnow() - dt.timedelta(days=1)))
    assert workspace.remove_expired_exports() == 0
    assert handle.wait().exists()


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("../../etc/passwd", "etc-passwd-7.csv"),
        ("März Rechnungen", "Marz-Rechnungen-7.csv"),
        ("....", "export-7.csv"),
        ("CON", "CON-7.csv"),
        ("a" * 300, "a" * 80 + "-7.csv"),
    ],
)
def test_safe_file_names(stem: str, expected: str) -> None:
    assert safe_file_name(stem, 7, "csv") == expected


def test_bad_requests_fail_before_anything_is_recorded(
    workspace: Workspace, invoices: tuple[int, list[int]], tmp_path: Path
) -> None:
    batch_id, _ = invoices
    with pytest.raises(ExportError, match="unknown export format"):
        export(batch_id, "docx", path=tmp_path / "x.docx", workspace=workspace)
    with pytest.raises(ExportError, match="does not look like a csv"):
        export(batch_id, "csv", path=tmp_path / "x.xlsx", workspace=workspace)
    with pytest.raises(ExportError, match="needs format xlsx"):
        export(batch_id, "csv", "sheets", tmp_path / "x.csv", workspace=workspace)
    with pytest.raises(ExportError, match="array_field"):
        export(
            batch_id,
            "csv",
            "multi-row",
            tmp_path / "x.csv",
            array_field="total",
            workspace=workspace,
        )
    with pytest.raises(ExportError, match="does not exist"):
        export(Selection(document_ids=(999_999,)), "csv", workspace=workspace)
    with workspace.db.read() as session:
        assert session.scalar(select(Export.id)) is None
    assert not list(tmp_path.glob("x.*"))


def test_a_non_owner_is_refused_and_audited(
    workspace: Workspace, invoices: tuple[int, list[int]], tmp_path: Path
) -> None:
    batch_id, _ = invoices
    with pytest.raises(PermissionDeniedError, match="may not export"):
        export(batch_id, "csv", path=tmp_path / "x.csv", workspace=workspace, actor="mallory")
    with pytest.raises(PermissionDeniedError):
        export_dataframe(batch_id, workspace=workspace, actor="mallory")
    assert not (tmp_path / "x.csv").exists()
    with workspace.db.read() as session:
        assert session.scalar(select(Export.id)) is None
        refusals = session.scalars(select(AuditEvent).where(AuditEvent.actor == "mallory")).all()
    assert [(e.action, e.allowed, e.target_id) for e in refusals] == [
        ("export", False, str(batch_id)),
        ("export", False, str(batch_id)),
    ]


def test_an_admin_may_export_anyones_batch(tmp_path: Path) -> None:
    workspace = open_workspace(home=str(tmp_path / "h"), admins="root, boss")
    try:
        batch_id, _ = seed_batch(
            workspace,
            [
                {
                    "file_name": "a.pdf",
                    "status": "completed",
                    "results": [(RECEIPT, {"company": "x"})],
                }
            ],
            owner="alice",
        )
        path = export(batch_id, path=tmp_path / "a.json", workspace=workspace, actor="boss").wait()
        assert json.loads(path.read_text())[0]["company"] == "x"
    finally:
        workspace.close()


def test_a_failed_write_marks_the_row_and_leaves_no_file(
    workspace: Workspace, invoices: tuple[int, list[int]], tmp_path: Path
) -> None:
    target = tmp_path / "missing-dir-is-a-file"
    target.write_text("not a folder")
    with pytest.raises(OSError):
        export(invoices[0], path=target / "out.csv", workspace=workspace)
    with workspace.db.read() as session:
        row = session.scalars(select(Export)).one()
    assert row.status == "failed" and row.error


@pytest.fixture
def running_worker(workspace: Workspace) -> Iterator[Worker]:
    worker = start_worker(workspace, threads=1)
    yield worker
    worker.stop()


def test_a_background_export_runs_on_the_exports_queue_with_progress(
    workspace: Workspace, running_worker: Worker, tmp_path: Path
) -> None:
    docs = [
        {
            "file_name": f"d{i}.pdf",
            "status": "completed",
            "results": [(INVOICE, invoice(f"N-{i}", [("x", 1.0)] * 3, 3.0))],
        }
        for i in range(2500)
    ]
    batch_id, _ = seed_batch(workspace, docs)
    seen: list[int] = []
    handle = export(
        batch_id, "csv", "multi-row", tmp_path / "big.csv", background=True, workspace=workspace
    )
    path = handle.wait(timeout=120, on_progress=lambda row: seen.append(row.documents_done))
    with workspace.db.read() as session:
        item = session.scalars(select(QueueItem).where(QueueItem.job_type == "export")).one()
    assert (item.queue_name, item.status, item.batch_id) == ("exports", "completed", None)
    with path.open(encoding="utf-8") as f:
        assert sum(1 for _ in f) == 1 + 2500 * 3
    row = handle.info()
    assert (row.status, row.row_count, row.documents_done) == ("completed", 7500, 2500)
    assert seen == sorted(seen) and seen[-1] == 2500


def test_the_cli_exports_a_batch(
    invoices: tuple[int, list[int]],
    workspace: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from batchnb.cli import main

    monkeypatch.setenv("BATCHNB_HOME", str(workspace.settings.home))
    out = tmp_path / "cli.xlsx"
    result = CliRunner().invoke(
        main,
        ["export", str(invoices[0]), "--format", "xlsx", "--mode", "multi-row", "-o", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert f"wrote 3 rows from 2 documents to {out}" in result.stderr
    rows = list(
        openpyxl.load_workbook(out, read_only=True).worksheets[0].iter_rows(values_only=True)
    )
    assert len(rows) == 4
    bad = CliRunner().invoke(main, ["export", str(invoices[0]), "-o", str(tmp_path / "x.doc")])
    assert bad.exit_code != 0 and "format" in bad.output


def test_end_to_end_from_real_documents(tmp_path: Path) -> None:
    workspace = open_workspace(home=str(tmp_path / "e2e"), queue_url="memory://")
    try:
        batch = submit(SAMPLES, "invoice number, date, total", workspace=workspace)
        frame = batch.to_dataframe()
        results = batch.results()
        assert frame["document_id"].tolist() == results["document_id"].tolist()
        assert frame["invoice_number"].tolist() == results["invoice_number"].tolist()
        path = batchnb.export(batch.id, "parquet", workspace=workspace).wait()
        assert pq.read_table(path).num_rows == len(results)
    finally:
        workspace.close()


@pytest.mark.postgres
def test_export_from_postgresql(postgres_workspace: Workspace, tmp_path: Path) -> None:
    workspace = postgres_workspace
    first, ids = seed_batch(
        workspace,
        [
            {
                "file_name": "ü.pdf",
                "status": "completed",
                "results": [
                    (INVOICE, invoice("old", [], 1.0)),
                    (INVOICE, invoice("P-1", [("a", 1.0), ("b", 2.0)], 3.0)),
                ],
            },
            {"file_name": "bad.pdf", "status": "failed", "error": "corrupt"},
        ],
    )
    second, more = seed_batch(
        workspace,
        [{"file_name": "r.pdf", "status": "completed", "results": [(RECEIPT, {"company": "Ω"})]}],
    )
    frame = export_dataframe([first, second], "multi-row", include_failed=True, workspace=workspace)
    assert frame["document_id"].tolist() == [ids[0], ids[0], ids[1], more[0]]
    assert frame["line_items.description"].tolist()[:2] == ["a", "b"]
    assert frame["invoice_number"].tolist()[:2] == ["P-1", "P-1"]
    assert frame["company"].tolist()[3] == "Ω"
    path = export([first, second], "jsonl", workspace=workspace).wait()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["document_id"] for line in lines] == [ids[0], more[0]]


def test_a_waiting_export_can_be_cancelled_by_its_owner_only(
    workspace: Workspace, invoices: tuple[int, list[int]], tmp_path: Path
) -> None:
    # No worker runs, so the queued export waits.
    handle = export(
        invoices[0], "csv", path=tmp_path / "q.csv", background=True, workspace=workspace
    )
    assert handle.status == "pending"
    with pytest.raises(PermissionDeniedError):
        cancel_export(handle.id, workspace=workspace, actor="mallory")
    assert handle.status == "pending"
    assert cancel_export(handle.id, workspace=workspace) is True
    assert cancel_export(handle.id, workspace=workspace) is False
    with workspace.db.read() as session:
        item = session.scalars(select(QueueItem).where(QueueItem.job_type == "export")).one()
    assert item.status == "cancelled" and handle.status == "cancelled"
    with pytest.raises(ExportError, match="cancelled"):
        handle.wait(timeout=5)
    worker = start_worker(workspace, threads=1)
    try:
        time.sleep(1.5)
    finally:
        worker.stop()
    assert not (tmp_path / "q.csv").exists()
