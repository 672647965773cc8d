"""The document type analytics group by is stored on each job by the real document handler.

A "global" batch stores the file type, an "auto" batch the type it classified, and a run served
from the result cache the type of the result it reuses. Documents run in immediate mode
(``memory://`` queue) during ``submit``, on SQLite and PostgreSQL. On PostgreSQL the timing
queries per document type and extractor can be answered from their partial indexes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from batchnb.db.models import Document, ExtractionJob
from batchnb.services.analytics import compute_summary
from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace, open_workspace

from .conftest import SAMPLES

INVOICE = SAMPLES / "maplewood-print-invoice.txt"
RECEIPT = SAMPLES / "harbor-lane-bakery-receipt.pdf"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def inline(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    """A workspace in immediate mode (each document runs during ``submit``)."""
    database = {}
    if request.param == "postgresql":
        database["database_url"] = request.getfixturevalue("postgres_url")
    ws = open_workspace(home=str(tmp_path / "h"), queue_url="memory://", **database)
    yield ws
    ws.close()


def _jobs(workspace: Workspace, batch_id: int) -> dict[str, tuple[str, str | None, str | None]]:
    """File name -> (job status, stored document type, parser)."""
    with workspace.db.connect() as connection:
        rows = connection.execute(
            select(
                Document.file_name,
                ExtractionJob.status,
                ExtractionJob.document_type,
                ExtractionJob.parser,
            )
            .join(Document, Document.id == ExtractionJob.document_id)
            .where(ExtractionJob.batch_id == batch_id)
        ).all()
    return {name: (status, kind, parser) for name, status, kind, parser in rows}


def test_processed_jobs_store_their_document_type(inline: Workspace) -> None:
    plain = submit([INVOICE, RECEIPT], "invoice number, date, total", workspace=inline)
    auto = submit([INVOICE, RECEIPT], strategy="auto", workspace=inline)
    # The same bytes and route as the "auto" run above: served from the result cache.
    again = submit([INVOICE], strategy="auto", workspace=inline)

    assert {name: found[:2] for name, found in _jobs(inline, plain.id).items()} == {
        INVOICE.name: ("completed", "text"),
        RECEIPT.name: ("completed", "pdf"),
    }
    assert {name: found[:2] for name, found in _jobs(inline, auto.id).items()} == {
        INVOICE.name: ("completed", "invoice"),
        RECEIPT.name: ("completed", "receipt"),
    }
    [(status, kind, parser)] = _jobs(inline, again.id).values()
    assert (status, kind) == ("completed", "invoice")
    assert parser is not None and parser.startswith("cached:")

    timing = compute_summary(inline).timing
    by_type = timing[timing["dimension"] == "document_type"]
    assert list(zip(by_type["value"], by_type["jobs"], strict=True)) == [
        ("invoice", 2),
        ("pdf", 1),
        ("receipt", 1),
        ("text", 1),
    ]


@pytest.mark.postgres
def test_postgresql_reads_job_percentiles_off_the_partial_indexes(
    postgres_workspace: Workspace,
) -> None:
    """The job timing queries match the partial indexes' condition, so PostgreSQL can answer
    them from the indexes, whose order per type and extractor spares the sort of every job."""
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "percentile_cont" in statement and "extraction_jobs" in statement:
            statements.append((statement, parameters))

    event.listen(postgres_workspace.db.engine, "before_cursor_execute", record)
    try:
        compute_summary(postgres_workspace)
    finally:
        event.remove(postgres_workspace.db.engine, "before_cursor_execute", record)

    plans = {}
    for statement, parameters in statements:
        with postgres_workspace.db.connect() as connection:
            # An empty table is cheaper to scan: forbid that, so only a usable index is used.
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters).all()
        plan = "\n".join(row[0] for row in rows)
        plans["document_type" if "document_type" in statement else "extractor"] = plan
    assert (
        "Index Only Scan using ix_extraction_jobs_completed_document_type"
        in (plans["document_type"])
    )
    assert "Index Only Scan using ix_extraction_jobs_completed_extractor" in plans["extractor"]
    assert all("Sort" not in plan.split("->")[1] for plan in plans.values())
