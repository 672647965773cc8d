"""Alembic migrations: they build the models' schema on SQLite and PostgreSQL, and agree with it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, event, inspect, select, text

from batchnb.config import Settings
from batchnb.db import migrate
from batchnb.db.engine import Database
from batchnb.db.models import DEFAULT_QUEUES, Base, ProcessingQueue
from batchnb.errors import ConfigurationError

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_TABLES = set(Base.metadata.tables)
TABLES_AFTER_0001 = {"corrections", "schedules", "schedule_runs", "maintenance_locks"}
"""Tables a later revision added."""
PG_ONLY_INDEXES = {"ix_documents_file_name_trgm", "ix_extracted_data_data_gin"}
PARTIAL_INDEXES = {
    "ix_documents_failed",
    "ix_queue_items_ready",
    "ix_queue_items_active",
    "ix_queue_items_failed",
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Database]:
    """An empty database in the test's workspace (SQLite) or a fresh PostgreSQL database."""
    url = (
        settings.database_url
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    db = Database(url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    yield db
    db.dispose()


@pytest.fixture
def sqlite_database(settings: Settings) -> Iterator[Database]:
    """An empty SQLite database in the test's workspace."""
    db = Database(settings.database_url)
    yield db
    db.dispose()


def _tables(db: Database) -> set[str]:
    with db.engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def _differences(connection: Connection, metadata: sa.MetaData, **opts: Any) -> list[Any]:
    options = {**migrate.autogenerate_options(connection.dialect.name), **opts}
    return compare_metadata(MigrationContext.configure(connection, opts=options), metadata)


def _index_sql(db: Database) -> dict[str, str]:
    """Index name -> the SQL the database holds for it."""
    if db.is_sqlite:
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    else:
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
    with db.engine.connect() as connection:
        return {name: sql for name, sql in connection.execute(text(query))}


def test_upgrade_creates_every_table_and_the_default_queues(database: Database) -> None:
    assert migrate.current_revision(database) is None

    migrate.upgrade(database)

    assert migrate.current_revision(database) == migrate.head_revision()
    assert _tables(database) == MODEL_TABLES | {"alembic_version"}
    with database.read() as session:
        queues = [
            {**{key: getattr(queue, key) for key in DEFAULT_QUEUES[0]}, "active": queue.active}
            for queue in session.scalars(select(ProcessingQueue).order_by(ProcessingQueue.id))
        ]
        created = session.scalars(select(ProcessingQueue.created_at)).all()
    assert queues == [{**queue, "active": True} for queue in DEFAULT_QUEUES]
    assert all(value.utcoffset() is not None for value in created)


def test_downgrade_to_base_removes_every_table_and_upgrade_works_again(
    database: Database,
) -> None:
    migrate.upgrade(database)

    migrate.downgrade(database, "base")

    assert _tables(database) == {"alembic_version"}
    assert migrate.current_revision(database) is None

    migrate.upgrade(database, "0001")

    assert _tables(database) == MODEL_TABLES - TABLES_AFTER_0001 | {"alembic_version"}
    assert migrate.current_revision(database) == "0001"


def test_models_and_migrations_agree(database: Database) -> None:
    migrate.upgrade(database)

    with database.engine.connect() as connection:
        assert _differences(connection, Base.metadata) == []


def test_the_agreement_check_sees_drift(database: Database) -> None:
    """The comparison above can fail: an extra column and a changed type are both reported."""
    migrate.upgrade(database)
    drifted = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    workers = Base.metadata.tables["workers"].to_metadata(drifted)
    workers.append_column(sa.Column("note", sa.Text(), nullable=True))
    workers.c.hostname.type = sa.String(300)

    def only_workers(name: str | None, type_: str, parent_names: Any) -> bool:
        return type_ != "table" or name == "workers"

    with database.engine.connect() as connection:
        differences = _differences(connection, drifted, include_name=only_workers)

    flat = [
        change for diff in differences for change in (diff if isinstance(diff, list) else [diff])
    ]
    assert {(change[0], change[2], _column_name(change)) for change in flat} == {
        ("add_column", "workers", "note"),
        ("modify_type", "workers", "hostname"),
    }


def _column_name(change: tuple[Any, ...]) -> str:
    return change[3].name if change[0] == "add_column" else change[3]


def test_indexes_match_the_models_details(database: Database) -> None:
    """What autogenerate does not compare: partial-index conditions, GIN and operator classes."""
    migrate.upgrade(database)
    include = migrate.include_object_for(database.dialect_name)
    with database.engine.connect() as connection:
        inspector = inspect(connection)
        for table in Base.metadata.sorted_tables:
            reflected = {ix["name"]: ix for ix in inspector.get_indexes(table.name)}
            for index in table.indexes:
                if index.name in migrate.SQLITE_EXPRESSION_INDEXES:
                    # Columns and expressions mixed: checked by the lease-plan test below and
                    # compared by autogenerate on PostgreSQL.
                    continue
                if not include(index, index.name, "index", False, None):
                    assert index.name not in reflected
                    continue
                found = reflected[index.name]
                assert found["column_names"] == [column.name for column in index.columns]
                options = found.get("dialect_options", {})
                where_key = f"{database.dialect_name}_where"
                assert (where_key in options) == (
                    index.dialect_options[database.dialect_name]["where"] is not None
                ), index.name
                if database.dialect_name == "postgresql":
                    declared = index.dialect_options["postgresql"]
                    assert options.get("postgresql_using") == (declared["using"] or None), (
                        index.name
                    )
                    assert options.get("postgresql_ops", {}) == (declared["ops"] or {}), index.name


def test_postgresql_only_and_partial_indexes(database: Database) -> None:
    migrate.upgrade(database)

    indexes = _index_sql(database)

    for name in PARTIAL_INDEXES:
        assert "WHERE" in indexes[name], name
    if database.is_sqlite:
        assert not PG_ONLY_INDEXES & set(indexes)
        return
    assert "USING gin (file_name gin_trgm_ops)" in indexes["ix_documents_file_name_trgm"]
    assert "USING gin (data)" in indexes["ix_extracted_data_data_gin"]
    with database.engine.connect() as connection:
        extensions = connection.scalars(text("SELECT extname FROM pg_extension")).all()
    assert "pg_trgm" in extensions


def test_ensure_current_upgrades_once(database: Database, tmp_path: Path) -> None:
    lock_path = tmp_path / "migrate.lock"

    assert migrate.ensure_current(database, lock_path) is True
    assert migrate.ensure_current(database, lock_path) is False
    assert migrate.ensure_current(database) is False
    assert migrate.current_revision(database) == migrate.head_revision()


def test_the_script_file_names_tell_the_head_without_alembic() -> None:
    """ensure_current's quick check reads the head from file names; Alembic must agree."""
    scripts = list(migrate._script_directory().walk_revisions())
    assert scripts
    for script in scripts:
        assert script.path is not None
        assert Path(script.path).name.startswith(f"{script.revision}_"), script.path
    assert migrate.newest_script_revision() == migrate.head_revision()


def test_ensure_current_costs_one_query_when_current(database: Database) -> None:
    migrate.upgrade(database)
    statements: list[str] = []

    def record(*args: Any) -> None:
        statement = args[2]
        if not statement.startswith("BEGIN"):
            statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        assert migrate.ensure_current(database) is False
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    assert statements == ["SELECT version_num FROM alembic_version"]


_CHILD = """
import pathlib, sys, time
from batchnb.db import migrate
from batchnb.db.engine import Database

url, lock, go = sys.argv[1:4]
while not pathlib.Path(go).exists():
    time.sleep(0.005)
database = Database(url)
print(migrate.ensure_current(database, pathlib.Path(lock) if lock else None))
database.dispose()
"""


@pytest.mark.parametrize("with_lock_file", [True, False], ids=["flock", "database-lock-only"])
def test_ensure_current_from_two_processes_at_once(
    database: Database, tmp_path: Path, with_lock_file: bool
) -> None:
    """Both processes succeed and exactly one migrates, with or without the lock file."""
    go = tmp_path / "go"
    lock = str(tmp_path / "migrate.lock") if with_lock_file else ""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, database.url, lock, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(0.5)  # let both import batchnb, so they reach ensure_current together
    go.touch()
    results = [child.communicate(timeout=120) for child in children]

    for child, (_out, err) in zip(children, results, strict=True):
        assert child.returncode == 0, err
    assert sorted(out.strip() for out, _err in results) == ["False", "True"]
    assert _tables(database) == MODEL_TABLES | {"alembic_version"}


def test_a_failed_upgrade_changes_nothing(database: Database) -> None:
    """The whole upgrade is one transaction, on SQLite too (where Alembic would commit per step)."""
    with database.engine.begin() as connection:
        # The last table the migration creates: everything before it must be rolled back.
        connection.execute(text("CREATE TABLE audit_events (id INTEGER PRIMARY KEY)"))

    with pytest.raises(sa.exc.DBAPIError):
        migrate.upgrade(database)

    assert _tables(database) == {"audit_events"}
    assert migrate.current_revision(database) is None


def test_ensure_current_refuses_a_newer_database(database: Database) -> None:
    migrate.upgrade(database)
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))

    with pytest.raises(ConfigurationError, match="pip install -U batchnb"):
        migrate.ensure_current(database)


def test_sqlite_migrations_run_in_one_begin_immediate(sqlite_database: Database) -> None:
    """Alembic runs inside batchnb's own BEGIN IMMEDIATE, and foreign keys are on again after."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(sqlite_database.engine, "before_cursor_execute", record)
    try:
        migrate.upgrade(sqlite_database)
    finally:
        event.remove(sqlite_database.engine, "before_cursor_execute", record)

    assert statements[0] == "BEGIN IMMEDIATE"
    assert [s for s in statements if s.startswith(("BEGIN", "COMMIT"))] == ["BEGIN IMMEDIATE"]
    with sqlite_database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def _insert_batch_and_document(connection: Connection) -> None:
    now = "2024-01-01 00:00:00"
    connection.execute(
        text(
            "INSERT INTO extraction_batches (id, name, owner, status, strategy, extractor, plan,"
            " options, document_count, created_at, updated_at) VALUES (1, 'b', 'o', 'pending',"
            " 'global', 'offline', 'local', '{}', 1, :now, :now)"
        ),
        {"now": now},
    )
    connection.execute(
        text(
            "INSERT INTO documents (batch_id, owner, file_name, content_hash, storage_key,"
            " size_bytes, file_type, mime_type, status, created_at, updated_at) VALUES (1, 'o',"
            " 'a.pdf', 'h', 'k', 1, 'pdf', 'application/pdf', 'pending', :now, :now)"
        ),
        {"now": now},
    )


def test_sqlite_batch_table_copy_keeps_child_rows(sqlite_database: Database) -> None:
    """Alembic's batch mode copies and drops a table; with foreign keys on, that drop would
    cascade-delete every document of every batch. Migrations run with them off."""
    migrate.upgrade(sqlite_database)
    with sqlite_database.engine.begin() as connection:
        _insert_batch_and_document(connection)

    with migrate.migration_connection(sqlite_database) as connection:
        operations = Operations(MigrationContext.configure(connection))
        with operations.batch_alter_table("extraction_batches", recreate="always") as batch:
            batch.add_column(sa.Column("label", sa.String(20), nullable=True))

    with sqlite_database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM documents")).scalar() == 1


def test_sqlite_migration_with_broken_foreign_keys_is_not_committed(
    sqlite_database: Database,
) -> None:
    migrate.upgrade(sqlite_database)

    with (
        pytest.raises(ConfigurationError, match="breaking foreign keys"),
        migrate.migration_connection(sqlite_database) as connection,
    ):
        connection.execute(
            text(
                "INSERT INTO queue_items (queue_name, job_type, payload, owner, status, priority,"
                " attempts, scheduled_at, created_at, updated_at) VALUES ('gone', 't', '{}', 'o',"
                " 'pending', 0, 0, '2024-01-01', '2024-01-01', '2024-01-01')"
            )
        )

    with sqlite_database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM queue_items")).scalar() == 0


def test_alembic_command_line_for_developers(database: Database) -> None:
    """``alembic -c alembic.ini`` finds the database through BATCHNB_DATABASE_URL, and writes
    SQL scripts offline (where ``op.get_bind()`` is None, hence the migration's dialect guard
    reads ``op.get_context().dialect``)."""
    env = {**os.environ, "BATCHNB_DATABASE_URL": database.url}

    def alembic(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(REPO_ROOT / "alembic.ini"), *args],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    script = alembic("upgrade", "head", "--sql")
    assert script.returncode == 0, script.stderr
    assert ("CREATE EXTENSION IF NOT EXISTS pg_trgm" in script.stdout) == (
        database.dialect_name == "postgresql"
    )
    assert migrate.current_revision(database) is None

    upgraded = alembic("upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    checked = alembic("check")
    assert checked.returncode == 0, checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr
    assert migrate.current_revision(database) == migrate.head_revision()


def test_ready_index_serves_the_lease_query_on_sqlite(tmp_path: Path) -> None:
    """The lease reads the best ready item off ix_queue_items_ready, without a sort."""
    sql = text
    database = Database(f"sqlite:///{tmp_path / 'plan.db'}")
    migrate.upgrade(database)
    with database.engine.connect() as connection:
        definition = connection.execute(
            sql("SELECT sql FROM sqlite_master WHERE name = 'ix_queue_items_ready'")
        ).scalar_one()
        plan = connection.execute(
            sql(
                "EXPLAIN QUERY PLAN SELECT id FROM queue_items WHERE queue_name = 'x' "
                "AND queue_items.status IN ('pending', 'retrying') AND scheduled_at <= '2030' "
                "ORDER BY priority DESC, scheduled_at, id LIMIT 1"
            )
        ).all()
    database.dispose()
    assert "priority DESC" in definition and "WHERE status IN ('pending', 'retrying')" in definition
    details = " ".join(str(row[-1]) for row in plan)
    assert "ix_queue_items_ready" in details
    assert "TEMP B-TREE" not in details


def test_sqlite_never_reuses_a_deleted_batch_id(sqlite_database: Database) -> None:
    """Audit events and exports name batches by id: a deleted id must not come back."""
    migrate.upgrade(sqlite_database)
    insert_batch = text(
        "INSERT INTO extraction_batches (name, owner, status, strategy, extractor, plan,"
        " options, document_count, created_at, updated_at) VALUES ('b', 'o', 'pending',"
        " 'global', 'offline', 'local', '{}', 0, '2024-01-01', '2024-01-01') RETURNING id"
    )
    with sqlite_database.engine.begin() as connection:
        first = connection.execute(insert_batch).scalar_one()
        connection.execute(text("DELETE FROM extraction_batches"))
        second = connection.execute(insert_batch).scalar_one()
    assert second == first + 1


def test_0005_fills_the_document_type_of_completed_jobs(database: Database) -> None:
    """The type an "auto" run classified (in its result's evidence), else the file type."""
    migrate.upgrade(database, "0004")
    now = "2024-01-01 00:00:00"
    documents = {1: "pdf", 2: "docx"}
    # job id -> document, status, evidence of its result (None: no result row)
    jobs: dict[int, tuple[int, str, str | None]] = {
        1: (1, "completed", '{"total": {"page": 1}, "_document": {"type": "invoice"}}'),
        2: (2, "completed", '{"total": {"page": 1}}'),
        3: (1, "completed", None),
        4: (2, "completed", '{"_document": {"confidence": 0.2}}'),
        5: (2, "failed", None),
        6: (1, "pending", None),
    }
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO extraction_batches (id, name, owner, status, strategy, extractor,"
                " plan, options, document_count, created_at, updated_at) VALUES (1, 'b', 'o',"
                " 'completed', 'auto', 'offline', 'local', '{}', 2, :now, :now)"
            ),
            {"now": now},
        )
        for document_id, file_type in documents.items():
            connection.execute(
                text(
                    "INSERT INTO documents (id, batch_id, owner, file_name, content_hash,"
                    " storage_key, size_bytes, file_type, mime_type, status, created_at,"
                    " updated_at) VALUES (:id, 1, 'o', :name, 'h', 'k', 1, :type, 'x/y',"
                    " 'completed', :now, :now)"
                ),
                {
                    "id": document_id,
                    "name": f"{document_id}.{file_type}",
                    "type": file_type,
                    "now": now,
                },
            )
        for job_id, (document_id, status, evidence) in jobs.items():
            connection.execute(
                text(
                    "INSERT INTO extraction_jobs (id, batch_id, document_id, owner, status,"
                    " extractor, created_at, updated_at) VALUES (:id, 1, :document, 'o',"
                    " :status, 'offline', :now, :now)"
                ),
                {"id": job_id, "document": document_id, "status": status, "now": now},
            )
            if evidence is not None:
                connection.execute(
                    text(
                        "INSERT INTO extracted_data (id, job_id, document_id, batch_id, data,"
                        " evidence, schema, created_at) VALUES (:id, :id, :document, 1, '{}',"
                        " :evidence, '{}', :now)"
                    ),
                    {"id": job_id, "document": document_id, "evidence": evidence, "now": now},
                )

    migrate.upgrade(database)

    with database.engine.connect() as connection:
        stored = dict(
            connection.execute(text("SELECT id, document_type FROM extraction_jobs")).all()
        )
    assert stored == {1: "invoice", 2: "docx", 3: "pdf", 4: "docx", 5: None, 6: None}


# Messages as failures were stored before revision 0006, and the kind the analytics read off
# each one then; the backfill must give each failed row that same kind.
KINDS_BEFORE_0006 = [
    ("TimeoutError: read timed out", "TimeoutError"),
    ("ExtractorError: the server said 500 (after 3 attempts)", "ExtractorError"),
    ("httpx.ConnectTimeout: boom", "ConnectTimeout"),
    ("KeyError", "KeyError"),
    ("the PDF is encrypted/password-protected: save an unprotected copy", "encrypted"),
    ("the Word document is encrypted/password-protected (or an old binary...)", "encrypted"),
    ("not a readable PDF: Failed to load document (PDFium: Data format error).", "corrupt"),
    ("not a readable Word document: the file is corrupt or truncated (x)", "corrupt"),
    ("not a readable PDF: it has no pages", "empty"),
    ("the Excel workbook is empty (no text in any sheet)", "empty"),
    ("the HTML page has no visible text", "empty"),
    ("OCR found no text in the PNG image", "empty"),
    ("no parser for 'exe' documents; parsable kinds: pdf", "unsupported"),
    ("too many pages: 5,000 (the limit is 2,000); split the PDF", "too_large"),
    ("the DOCX looks like a ZIP bomb: its part 'x' unpacks to ...", "too_large"),
    ("OCR failed: tesseract crashed", "ocr"),
    ("the worker processing this item stopped responding on every one of 3", "worker_lost"),
    ("something else went wrong", "other"),
    ("", "(unknown)"),
    (None, "(unknown)"),
]


def test_0006_records_the_kind_old_failures_were_counted_under(database: Database) -> None:
    migrate.upgrade(database, "0005")
    now = "2024-03-04 09:00:00"
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO extraction_batches (id, name, owner, status, strategy, extractor, "
                "plan, options, document_count, created_at, updated_at) VALUES (1, 'b', 'u', "
                "'failed', 'global', 'offline', 'local', '{}', 0, :now, :now)"
            ),
            {"now": now},
        )
        for number, (error, _) in enumerate(KINDS_BEFORE_0006, start=1):
            connection.execute(
                text(
                    "INSERT INTO documents (id, batch_id, owner, file_name, content_hash, "
                    "storage_key, size_bytes, file_type, mime_type, status, error, created_at, "
                    "updated_at) VALUES (:id, 1, 'u', :name, 'h', 'k', 1, 'pdf', 'x', 'failed', "
                    ":error, :now, :now)"
                ),
                {"id": number, "name": f"f{number}.pdf", "error": error, "now": now},
            )
    migrate.upgrade(database)
    with database.engine.connect() as connection:
        found = dict(connection.execute(text("SELECT id, error_kind FROM documents")).all())
    expected = {
        number: None if kind == "(unknown)" else kind
        for number, (_, kind) in enumerate(KINDS_BEFORE_0006, start=1)
    }
    assert found == expected


def _sqlite_autoincrement_tables(db: Database) -> set[str]:
    with db.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL")
        ).all()
    return {name for name, sql in rows if "AUTOINCREMENT" in sql.upper()}


def test_0007_adds_corrections_and_review_and_takes_them_away_again(database: Database) -> None:
    """Documents of 0006 keep their rows both ways; corrections go with their document."""
    migrate.upgrade(database, "0006")
    now = "2024-03-04 09:00:00"
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO extraction_batches (id, name, owner, status, strategy, extractor, "
                "plan, options, document_count, created_at, updated_at) VALUES (1, 'b', 'u', "
                "'completed', 'global', 'offline', 'local', '{}', 2, :now, :now)"
            ),
            {"now": now},
        )
        for number in (1, 2):
            connection.execute(
                text(
                    "INSERT INTO documents (id, batch_id, owner, file_name, content_hash, "
                    "storage_key, size_bytes, file_type, mime_type, status, created_at, "
                    "updated_at) VALUES (:id, 1, 'u', :name, 'h', 'k', 1, 'pdf', 'x', "
                    "'completed', :now, :now)"
                ),
                {"id": number, "name": f"f{number}.pdf", "now": now},
            )

    migrate.upgrade(database)

    with database.engine.begin() as connection:
        connection.execute(
            text("UPDATE documents SET reviewed_at = :now, reviewed_by = 'u' WHERE id = 1"),
            {"now": now},
        )
        for document_id in (1, 2):
            connection.execute(
                text(
                    "INSERT INTO corrections (batch_id, document_id, field, old_value, "
                    "new_value, corrected_by, corrected_at) VALUES (1, :document, 'total', "
                    "'1.0', '2.0', 'u', :now)"
                ),
                {"document": document_id, "now": now},
            )
        connection.execute(text("DELETE FROM documents WHERE id = 2"))
        remaining = connection.execute(
            text("SELECT document_id, field, new_value FROM corrections")
        ).all()
        reviewed = connection.execute(
            text("SELECT id, reviewed_by FROM documents ORDER BY id")
        ).all()
    assert [(row[0], row[1]) for row in remaining] == [(1, "total")]
    assert remaining[0][2] in (2.0, "2.0")  # JSON read back (SQLite: as text)
    assert [tuple(row) for row in reviewed] == [(1, "u")]
    if database.is_sqlite:
        assert {"corrections", "documents"} <= _sqlite_autoincrement_tables(database)

    migrate.downgrade(database, "0006")

    assert "corrections" not in _tables(database)
    with database.engine.connect() as connection:
        columns = {column["name"] for column in inspect(connection).get_columns("documents")}
        kept = connection.execute(text("SELECT id FROM documents")).scalars().all()
    assert {"reviewed_at", "reviewed_by"}.isdisjoint(columns)
    assert kept == [1]
    if database.is_sqlite:
        assert "documents" in _sqlite_autoincrement_tables(database)


def test_0008_adds_schedules_whose_runs_are_unique_per_due_time(database: Database) -> None:
    """A second run row for the same due time is refused (the exactly-once claim); runs go
    with their schedule; downgrading removes both tables and leaves 0007's intact."""
    migrate.upgrade(database, "0007")
    migrate.upgrade(database)
    now = "2024-03-04 09:00:00"
    insert_run = text(
        "INSERT INTO schedule_runs (schedule_id, due_at, started_at, status, manual) "
        "VALUES (1, :due, :now, 'running', false)"
    )
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO schedules (id, name, notebook, cron, parameters, owner, paused, "
                "output_dir, working_dir, created_at, updated_at, next_due_at) VALUES (1, 'h', "
                "'n.ipynb', '0 * * * *', '{}', 'u', false, 'o', 'w', :now, :now, :now)"
            ),
            {"now": now},
        )
        connection.execute(insert_run, {"due": "2024-03-04 09:00:00", "now": now})
        connection.execute(insert_run, {"due": "2024-03-04 10:00:00", "now": now})
    with pytest.raises(sa.exc.IntegrityError), database.engine.begin() as connection:
        connection.execute(insert_run, {"due": "2024-03-04 09:00:00", "now": now})
    with database.engine.begin() as connection:
        connection.execute(text("DELETE FROM schedules WHERE id = 1"))
        left = connection.execute(text("SELECT count(*) FROM schedule_runs")).scalar_one()
    assert left == 0
    if database.is_sqlite:
        assert {"schedules", "schedule_runs"} <= _sqlite_autoincrement_tables(database)

    migrate.downgrade(database, "0007")

    assert {"schedules", "schedule_runs"}.isdisjoint(_tables(database))
    assert "corrections" in _tables(database)
    migrate.upgrade(database)
    assert {"schedules", "schedule_runs"} <= _tables(database)
