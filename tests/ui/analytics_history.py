"""A small history across several days for the analytics dashboard's tests (Python and browser).

Documents are submitted for real and extracted at once (the in-memory queue runs tasks when
they are queued); then their batch's rows are dated to the day chosen, straight through the
workspace's database, as only test data may be: no service writes a past ``created_at``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import update

from batchnb.db.models import Document, ExtractionBatch, ExtractionJob, QueueItem
from batchnb.services.submit import submit
from batchnb.services.workspace import open_workspace

PROMPT = "invoice number, total"
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "documents"
TYPED = [
    SAMPLES / "bluefin-office-supplies-invoice.pdf",
    SAMPLES / "ridgeback-bicycle-invoice.html",
    SAMPLES / "copperleaf-web-invoice.md",
]
"""One of these per day, in turn, so that several document types are timed."""
FAILURES = {
    "corrupt": ("broken-{n}.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage {n}"),
    "empty": ("blank-{n}.txt", b"   \n\n  {pad}\n"),
}


def _invoice(day: date, number: int) -> tuple[str, bytes]:
    text = f"Invoice number: INV-{day:%m%d}-{number}\nDate: {day}\nTotal: {10 + number}.50 EUR\n"
    return f"invoice-{day:%m%d}-{number}.txt", text.encode()


def _failing(kind: str, day: date, number: int) -> tuple[str, bytes]:
    name, content = FAILURES[kind]
    tag = f"{day:%m%d}{number}"
    return name.format(n=tag), content.replace(b"{n}", tag.encode()).replace(b"{pad}", b"")


def seed_days(
    home: Path,
    days: Mapping[date, tuple[int, int]],
    *,
    user: str | None = None,
    database_url: str | None = None,
) -> list[int]:
    """One batch per day: ``(completed, failed)`` documents, created at 10:00 UTC that day.

    The first completed document of each day is a sample of :data:`TYPED`, the others text
    invoices; failures alternate between a corrupt PDF and an empty text file. Returns the
    batch ids.
    """
    overrides: dict[str, str] = {"queue_url": "memory://"}
    if user:
        overrides["user"] = user
    if database_url:
        overrides["database_url"] = database_url
    workspace = open_workspace(home=str(home), **overrides)
    ids = []
    try:
        for number, (day, (completed, failed)) in enumerate(days.items()):
            kinds = list(FAILURES)
            typed = TYPED[number % len(TYPED)]
            sources = [_invoice(day, n) for n in range(1, completed)] + [
                _failing(kinds[n % len(kinds)], day, n) for n in range(failed)
            ]
            if completed:
                sources.insert(0, (typed.name, typed.read_bytes()))
            batch = submit(sources, PROMPT, workspace=workspace, name=f"history {day}")
            ids.append(batch.id)
            moment = datetime.combine(day, time(10), UTC)
            with workspace.db.begin() as connection:
                connection.execute(
                    update(ExtractionBatch)
                    .where(ExtractionBatch.id == batch.id)
                    .values(created_at=moment, updated_at=moment)
                )
                for model in (Document, ExtractionJob, QueueItem):
                    connection.execute(
                        update(model)
                        .where(model.batch_id == batch.id)
                        .values(created_at=moment + timedelta(minutes=1))
                    )
    finally:
        workspace.close()
    return ids
