"""list_batches: visibility, filters, search, sort and pages on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text

from batchnb.db.models import (
    AuditEvent,
    Document,
    ExtractedData,
    ExtractionBatch,
    ExtractionJob,
    QueueItem,
)
from batchnb.documents.storage import key_for_hash
from batchnb.errors import ConfigurationError, PermissionDeniedError
from batchnb.jobs.documents import ProcessDocument
from batchnb.services import listing
from batchnb.services.listing import COUNT_COLUMNS, SORT_COLUMNS, BatchPage, list_batches
from batchnb.services.workspace import Workspace

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
ADMIN = "boss"
ITEM_STATUS = {"pending": "pending", "processing": "processing"}


@dataclass
class Doc:
    file_name: str
    status: str = "completed"
    content: bytes | None = None
    """Stored for real when given (delete tests); otherwise only a key is made up."""


@dataclass
class Spec:
    name: str
    owner: str = "alice"
    status: str = "completed"
    day: float = 0
    strategy: str = "global"
    extractor: str = "offline"
    docs: list[Doc] = field(default_factory=list)
    completed_day: float | None = None


def seed(workspace: Workspace, specs: Sequence[Spec]) -> list[int]:
    """Insert batches with documents, jobs, results and queue items in bulk; their ids.

    Completed documents get a job and a result; open ones (pending, processing) a queue item
    in the same status; every other document a finished job and item.
    """
    ids: list[int] = []
    with workspace.db.begin() as connection:
        for spec in specs:
            created = T0 + timedelta(days=spec.day)
            completed = None if spec.completed_day is None else T0 + timedelta(spec.completed_day)
            batch_id = connection.execute(
                insert(ExtractionBatch).returning(ExtractionBatch.id),
                {
                    "name": spec.name,
                    "owner": spec.owner,
                    "status": spec.status,
                    "strategy": spec.strategy,
                    "prompt": "invoice number, total",
                    "extractor": spec.extractor,
                    "plan": "local",
                    "options": {},
                    "document_count": len(spec.docs),
                    "created_at": created,
                    "updated_at": created + timedelta(hours=1),
                    "completed_at": completed,
                },
            ).scalar_one()
            ids.append(batch_id)
            if not spec.docs:
                continue
            rows = []
            for doc in spec.docs:
                if doc.content is not None:
                    stored = workspace.storage.put(doc.content)
                    digest, key, size = stored.content_hash, stored.key, stored.size
                else:
                    digest = hashlib.sha256(f"{batch_id}/{doc.file_name}".encode()).hexdigest()
                    key, size = key_for_hash(digest), 10
                rows.append(
                    {
                        "batch_id": batch_id,
                        "owner": spec.owner,
                        "file_name": doc.file_name,
                        "content_hash": digest,
                        "storage_key": key,
                        "size_bytes": size,
                        "file_type": "pdf",
                        "mime_type": "application/pdf",
                        "status": doc.status,
                        "error": "DocumentError: broken" if doc.status == "failed" else None,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
            doc_ids = connection.scalars(
                insert(Document).returning(Document.id, sort_by_parameter_order=True), rows
            ).all()
            job_ids = connection.scalars(
                insert(ExtractionJob).returning(ExtractionJob.id, sort_by_parameter_order=True),
                [
                    {
                        "batch_id": batch_id,
                        "document_id": doc_id,
                        "owner": spec.owner,
                        "status": doc.status,
                        "extractor": spec.extractor,
                        "error": row["error"],
                        "created_at": created,
                        "updated_at": created,
                    }
                    for doc_id, doc, row in zip(doc_ids, spec.docs, rows, strict=True)
                ],
            ).all()
            connection.execute(
                insert(QueueItem),
                [
                    {
                        "queue_name": ProcessDocument.queue,
                        "job_type": ProcessDocument.job_type,
                        "payload": ProcessDocument(doc_id, job_id).to_json(),
                        "batch_id": batch_id,
                        "owner": spec.owner,
                        "status": doc.status,
                        "priority": 0,
                        "attempts": 0,
                        "scheduled_at": created,
                        "created_at": created,
                        "updated_at": created,
                    }
                    for doc_id, job_id, doc in zip(doc_ids, job_ids, spec.docs, strict=True)
                ],
            )
            results = [
                {
                    "job_id": job_id,
                    "document_id": doc_id,
                    "batch_id": batch_id,
                    "data": {"total": 1},
                    "evidence": {},
                    "schema": {"fields": [{"name": "total", "type": "number"}]},
                    "created_at": created,
                }
                for doc_id, job_id, doc in zip(doc_ids, job_ids, spec.docs, strict=True)
                if doc.status == "completed"
            ]
            if results:
                connection.execute(insert(ExtractedData), results)
    return ids


SPECS = [
    Spec(
        "Invoices March",
        status="completed",
        day=1,
        completed_day=1.5,
        docs=[Doc("inv-001.pdf"), Doc("inv-002.pdf")],
    ),
    Spec(
        "100% refunds",
        status="completed_with_errors",
        day=2,
        completed_day=9,
        extractor="openai",
        docs=[Doc("refund_a.pdf"), Doc("refund_b.pdf", "failed")],
    ),
    Spec(
        "the_end",
        status="failed",
        day=3,
        completed_day=3.5,
        strategy="auto",
        docs=[Doc("scan[1]?.png", "failed")],
    ),
    Spec(
        "O'Brien quotes",
        status="processing",
        day=4,
        docs=[Doc('quote "1".pdf', "processing"), Doc("o'brien.txt", "pending"), Doc("z.pdf")],
    ),
    Spec(
        "Éclair Café",
        status="pending",
        day=5,
        docs=[Doc("reçu-été.pdf", "pending"), Doc("Été[2]?*.pdf", "pending")],
    ),
    Spec(
        "Bob invoices",
        owner="bob",
        status="completed_with_errors",
        day=6,
        completed_day=6.5,
        docs=[Doc("inv-001.pdf"), Doc("100%_bob.pdf", "failed")],
    ),
    Spec(
        "theXend",
        status="cancelled",
        day=7,
        completed_day=7.2,
        docs=[Doc("back\\slash.txt", "cancelled"), Doc("pct50.txt", "cancelled")],
    ),
    Spec("1000 items", status="completed", day=8, completed_day=8.1, docs=[Doc("100x.pdf")]),
    Spec("invoices march", status="completed", day=8, completed_day=1.5, docs=[]),
]


@pytest.fixture(params=["workspace", "postgres_workspace"])
def ws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """The same tests on the embedded SQLite workspace and on PostgreSQL; alice acts, boss is
    an admin."""
    monkeypatch.setenv("BATCHNB_USER", "alice")
    monkeypatch.setenv("BATCHNB_ADMINS", ADMIN)
    workspace: Workspace = request.getfixturevalue(request.param)
    assert workspace.settings.user == "alice"
    yield workspace


@pytest.fixture
def seeded(ws: Workspace) -> dict[str, int]:
    """Batch name → id of :data:`SPECS`."""
    return dict(zip([s.name for s in SPECS], seed(ws, SPECS), strict=True))


def names(page: BatchPage) -> list[str]:
    return [row.name for row in page.rows]


def test_a_user_sees_only_their_own_batches(ws: Workspace, seeded: dict[str, int]) -> None:
    alice = list_batches(workspace=ws, page_size=100)
    assert alice.total == len(SPECS) - 1
    assert set(names(alice)) == {s.name for s in SPECS if s.owner == "alice"}
    assert names(list_batches(workspace=ws, actor="bob")) == ["Bob invoices"]
    assert list_batches(workspace=ws, actor="carol").total == 0
    assert list_batches(workspace=ws, owner="alice").total == alice.total


def test_an_admin_sees_everyone_and_filters_by_owner(ws: Workspace, seeded: dict[str, int]) -> None:
    assert list_batches(workspace=ws, actor=ADMIN, page_size=100).total == len(SPECS)
    assert names(list_batches(workspace=ws, actor=ADMIN, owner="bob")) == ["Bob invoices"]


def test_listing_someone_elses_batches_is_refused_and_audited(
    ws: Workspace, seeded: dict[str, int]
) -> None:
    with pytest.raises(PermissionDeniedError, match="may not list the batches of 'bob'"):
        list_batches(workspace=ws, owner="bob")
    with ws.db.read() as session:
        refusal = session.execute(select(AuditEvent)).scalar_one()
    assert (refusal.actor, refusal.action, refusal.allowed) == ("alice", "list", False)
    assert (refusal.target_type, refusal.target_id) == ("user", "bob")


def test_counts_per_document_status(ws: Workspace, seeded: dict[str, int]) -> None:
    rows = {row.name: row for row in list_batches(workspace=ws, page_size=100).rows}
    quotes = rows["O'Brien quotes"]
    assert (quotes.pending, quotes.processing, quotes.completed, quotes.failed) == (1, 1, 1, 0)
    assert quotes.document_count == 3 and quotes.owner == "alice"
    refunds = rows["100% refunds"]
    assert (refunds.completed, refunds.failed, refunds.cancelled) == (1, 1, 0)
    assert rows["theXend"].cancelled == 2
    empty = rows["invoices march"]
    assert [getattr(empty, c) for c in COUNT_COLUMNS] == [0] * len(COUNT_COLUMNS)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": "failed"}, {"the_end"}),
        ({"status": ["failed", "pending"]}, {"the_end", "Éclair Café"}),
        ({"has_failures": True}, {"100% refunds", "the_end"}),
        (
            {"has_failures": False},
            {
                "Invoices March",
                "O'Brien quotes",
                "Éclair Café",
                "theXend",
                "1000 items",
                "invoices march",
            },
        ),
        (
            {"created_from": T0 + timedelta(days=3), "created_to": T0 + timedelta(days=5)},
            {"the_end", "O'Brien quotes"},
        ),
        ({"created_from": T0 + timedelta(days=8)}, {"1000 items", "invoices march"}),
        ({"created_to": T0 + timedelta(days=1, seconds=1)}, {"Invoices March"}),
        (
            {"status": "completed", "created_to": T0 + timedelta(days=8), "search": "inv"},
            {"Invoices March"},
        ),
        ({"has_failures": True, "search": "refund", "status": "failed"}, set()),
    ],
)
def test_filters_combine_with_and(
    ws: Workspace, seeded: dict[str, int], filters: dict[str, Any], expected: set[str]
) -> None:
    page = list_batches(workspace=ws, page_size=100, **filters)
    assert set(names(page)) == expected
    assert page.total == len(expected)


SEARCHES: list[tuple[str, set[str]]] = [
    # % and _ match themselves, not any text / any character.
    ("100%", {"100% refunds", "Bob invoices"}),
    ("the_end", {"the_end"}),
    ("_", {"100% refunds", "the_end", "Bob invoices"}),
    ("%", {"100% refunds", "Bob invoices"}),
    # Quotes, the LIKE escape character, GLOB's specials.
    ("o'brien", {"O'Brien quotes"}),
    ('quote "1"', {"O'Brien quotes"}),
    ("k\\s", {"theXend"}),
    ("\\", {"theXend"}),
    ("n[1]?", {"the_end"}),
    ("*", {"Éclair Café"}),
    # Case-insensitive, also outside ASCII; file names count as well as batch names.
    ("ÉCLAIR", {"Éclair Café"}),
    ("café", {"Éclair Café"}),
    ("ÇU-ÉTÉ", {"Éclair Café"}),
    ("e\u0301te\u0301", {"Éclair Café"}),
    # Beyond ASCII SQLite matches with GLOB: its specials must match literally too.
    ("ÉTÉ[2]?*", {"Éclair Café"}),
    ("é*", set()),
    ("é[", {"Éclair Café"}),
    ("é?", set()),
    ("INV-001", {"Invoices March", "Bob invoices"}),
    ("invoices", {"Invoices March", "invoices march", "Bob invoices"}),
    ("  march ", {"Invoices March", "invoices march"}),
    ("no such thing", set()),
]


def test_search_matches_literally_and_ignores_case(ws: Workspace, seeded: dict[str, int]) -> None:
    # One database per backend for every term (creating one per term is what costs).
    for term, expected in SEARCHES:
        page = list_batches(workspace=ws, actor=ADMIN, search=term, page_size=100)
        assert (set(names(page)), page.total) == (expected, len(expected)), term


def _expected_order(sort: str, descending: bool) -> list[str]:
    """The order list_batches promises, computed in Python from SPECS (admin view)."""
    counts = {
        spec.name: {c: sum(d.status == c for d in spec.docs) for c in COUNT_COLUMNS}
        for spec in SPECS
    }
    ids = {spec.name: number for number, spec in enumerate(SPECS)}

    def value(spec: Spec) -> Any:
        created = T0 + timedelta(days=spec.day)
        return {
            "id": ids[spec.name],
            "name": spec.name.lower(),
            "owner": spec.owner,
            "status": spec.status,
            "strategy": spec.strategy,
            "extractor": spec.extractor,
            "created_at": created,
            "updated_at": created + timedelta(hours=1),
            "completed_at": spec.completed_day,
            "document_count": len(spec.docs),
            **counts[spec.name],
        }[sort]

    present = [spec for spec in SPECS if value(spec) is not None]
    ordered = sorted(present, key=lambda s: (value(s), ids[s.name]), reverse=descending)
    # Batches not completed come last in both directions, newest id first when descending.
    missing = sorted(
        (spec for spec in SPECS if value(spec) is None),
        key=lambda s: ids[s.name],
        reverse=descending,
    )
    return [spec.name for spec in ordered + missing]


def test_every_listed_column_sorts_with_id_as_tie_breaker(
    ws: Workspace, seeded: dict[str, int]
) -> None:
    for sort in SORT_COLUMNS:
        for descending in (True, False):
            page = list_batches(
                workspace=ws, actor=ADMIN, sort=sort, descending=descending, page_size=100
            )
            assert names(page) == _expected_order(sort, descending), (sort, descending)


def test_pages_partition_the_result(ws: Workspace, seeded: dict[str, int]) -> None:
    whole = names(list_batches(workspace=ws, actor=ADMIN, sort="status", page_size=100))
    pages = [
        list_batches(workspace=ws, actor=ADMIN, sort="status", page=number, page_size=4)
        for number in (1, 2, 3, 4)
    ]
    assert [p.total for p in pages] == [len(SPECS)] * 4
    assert [len(p.rows) for p in pages] == [4, 4, 1, 0]
    assert [name for p in pages for name in names(p)] == whole
    assert pages[0].pages == 3


def test_page_as_dataframe(ws: Workspace, seeded: dict[str, int]) -> None:
    frame = list_batches(workspace=ws, sort="id", descending=False).to_dataframe()
    assert list(frame.columns) == list(listing.SUMMARY_COLUMNS)
    assert frame["name"].iloc[0] == "Invoices March"
    assert frame["completed"].iloc[0] == 2
    empty = list_batches(workspace=ws, search="nothing at all").to_dataframe()
    assert empty.empty and list(empty.columns) == list(listing.SUMMARY_COLUMNS)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sort": "total"}, "cannot sort batches by 'total'; use one of id, name"),
        ({"page": 0}, "page numbers start at 1"),
        ({"page_size": 0}, "page_size must be within 1..1000"),
        ({"page_size": 1001}, "page_size must be within 1..1000"),
        ({"status": ["done"]}, "unknown batch status 'done'"),
        ({"created_from": datetime(2025, 1, 1)}, "created_from must be timezone-aware"),
    ],
)
def test_meaningless_arguments_are_refused(
    workspace: Workspace, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        list_batches(workspace=workspace, **arguments)


def test_pages_are_cached_until_invalidated(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "LIST_TTL_SECONDS", 3600.0)
    owner = workspace.settings.user
    seed(workspace, [Spec("first", owner=owner)])
    assert names(list_batches(workspace=workspace)) == ["first"]
    seed(workspace, [Spec("second", owner=owner, day=1)])
    assert names(list_batches(workspace=workspace)) == ["first"], "served from the cache"
    workspace.cache.invalidate("batches")
    assert names(list_batches(workspace=workspace)) == ["second", "first"]


def test_common_listing_uses_the_owner_index_on_postgresql(postgres_workspace: Workspace) -> None:
    """The everyday query, a user's newest batches, reads ix_extraction_batches_owner_created_at."""
    workspace = postgres_workspace
    with workspace.db.begin() as connection:
        connection.execute(
            insert(ExtractionBatch),
            [
                {
                    "name": f"batch {n}",
                    "owner": f"user{n % 50}",
                    "status": "completed",
                    "strategy": "global",
                    "extractor": "offline",
                    "plan": "local",
                    "options": {},
                    "document_count": 0,
                    "created_at": T0 + timedelta(minutes=n),
                    "updated_at": T0 + timedelta(minutes=n),
                }
                for n in range(5000)
            ],
        )
        connection.execute(text("ANALYZE extraction_batches"))
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "ORDER BY" in statement:
            statements.append((statement, parameters))

    event.listen(workspace.db.engine, "before_cursor_execute", capture)
    try:
        page = list_batches(workspace=workspace, actor="user7", page_size=20)
    finally:
        event.remove(workspace.db.engine, "before_cursor_execute", capture)
    assert page.total == 100 and len(page.rows) == 20
    assert page.rows[0].created_at > page.rows[-1].created_at
    statement, parameters = statements[0]
    with workspace.db.connect() as connection:
        plan = "\n".join(
            row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        )
    assert "ix_extraction_batches_owner_created_at" in plan, plan
