"""Slow-query log and PostgreSQL pool settings, on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError

from batchnb.db.engine import Database
from batchnb.db.monitoring import (
    MAX_STATEMENT_CHARS,
    SLOW_QUERY_LOGGER,
    describe_parameters,
    shorten_statement,
)
from batchnb.services.workspace import open_workspace

SECRET = "ACME invoice 4711 for Jane Roe"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitoring.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def databases() -> Iterator[list[Database]]:
    opened: list[Database] = []
    yield opened
    for database in opened:
        database.dispose()


def _open(databases: list[Database], url: str, **options: object) -> Database:
    database = Database(url, **options)  # type: ignore[arg-type]
    databases.append(database)
    return database


def _slow_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == SLOW_QUERY_LOGGER]


def test_a_slow_query_is_logged_without_its_parameter_values(
    url: str, databases: list[Database], caplog: pytest.LogCaptureFixture
) -> None:
    database = _open(databases, url, slow_query_ms=0.0001)
    with (
        caplog.at_level(logging.WARNING, logger=SLOW_QUERY_LOGGER),
        database.connect() as connection,
    ):
        row = connection.execute(
            text("SELECT :name AS name,\n       :number AS number"),
            {"name": SECRET, "number": 4711},
        ).one()
    assert row.name == SECRET
    records = [r for r in _slow_records(caplog) if "AS name" in r.getMessage()]
    assert len(records) == 1
    record = records[0]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("slow query: ")
    assert " ms, 2 parameters: SELECT " in message
    assert "AS name, " in message  # whitespace collapsed onto one line
    assert record.__dict__["duration_ms"] > 0
    for record in _slow_records(caplog):
        assert SECRET not in record.getMessage()
        assert "4711" not in record.getMessage()
        assert SECRET not in repr(record.__dict__)


def test_nothing_is_logged_when_the_log_is_off(
    url: str, databases: list[Database], caplog: pytest.LogCaptureFixture
) -> None:
    database = _open(databases, url, slow_query_ms=0)
    with (
        caplog.at_level(logging.DEBUG, logger=SLOW_QUERY_LOGGER),
        database.connect() as connection,
    ):
        connection.execute(text("SELECT 1")).scalar()
    assert _slow_records(caplog) == []


def test_only_statements_over_the_threshold_are_logged(
    postgres_url: str, databases: list[Database], caplog: pytest.LogCaptureFixture
) -> None:
    database = _open(databases, postgres_url, slow_query_ms=100)
    with (
        caplog.at_level(logging.WARNING, logger=SLOW_QUERY_LOGGER),
        database.connect() as connection,
    ):
        connection.execute(text("SELECT 1 AS fast")).scalar()
        connection.execute(text("SELECT pg_sleep(0.15) AS slow")).scalar()
    messages = [record.getMessage() for record in _slow_records(caplog)]
    assert len(messages) == 1
    assert "pg_sleep" in messages[0]
    duration = float(messages[0].split("slow query: ")[1].split(" ms")[0])
    assert duration >= 150


def test_a_failed_statement_does_not_disturb_the_next_timing(
    url: str, databases: list[Database], caplog: pytest.LogCaptureFixture
) -> None:
    database = _open(databases, url, slow_query_ms=0.0001)
    with caplog.at_level(logging.WARNING, logger=SLOW_QUERY_LOGGER):
        with database.connect() as connection, pytest.raises((OperationalError, ProgrammingError)):
            connection.execute(text("SELECT * FROM no_such_table"))
        with database.connect() as connection:
            connection.execute(text("SELECT 2 AS after_failure")).scalar()
    messages = [record.getMessage() for record in _slow_records(caplog)]
    assert not any("no_such_table" in message for message in messages)
    assert sum("after_failure" in message for message in messages) == 1


def test_workspace_turns_the_log_on_from_settings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    off = open_workspace(home=str(tmp_path / "off"), slow_query_ms=0)
    on = open_workspace(home=str(tmp_path / "on"), slow_query_ms=0.0001)
    try:
        with caplog.at_level(logging.WARNING, logger=SLOW_QUERY_LOGGER):
            with off.db.connect() as connection:
                connection.execute(text("SELECT 'off' AS workspace_off")).scalar()
            with on.db.connect() as connection:
                connection.execute(text("SELECT 'on' AS workspace_on")).scalar()
    finally:
        off.close()
        on.close()
    messages = " ".join(record.getMessage() for record in _slow_records(caplog))
    assert "workspace_on" in messages and "workspace_off" not in messages


def test_long_statements_are_shortened() -> None:
    statement = "INSERT INTO t (a) VALUES " + ", ".join(["(?)"] * 1000)
    short = shorten_statement(statement)
    assert len(short) == MAX_STATEMENT_CHARS and short.endswith("…")
    assert shorten_statement("SELECT\n   1\n\tFROM t") == "SELECT 1 FROM t"


def test_parameters_are_counted_not_shown() -> None:
    assert describe_parameters({"a": SECRET, "b": 2}, executemany=False) == "2 parameters"
    assert describe_parameters((SECRET,), executemany=False) == "1 parameter"
    assert describe_parameters(None, executemany=False) == "0 parameters"
    rows = [(SECRET, 1, 2)] * 500
    assert describe_parameters(rows, executemany=True) == "500 x 3 parameters"


def test_pool_settings_reach_the_postgresql_engine(
    postgres_url: str, databases: list[Database]
) -> None:
    database = _open(
        databases,
        postgres_url,
        pool_size=3,
        max_overflow=2,
        pool_timeout=7.5,
        pool_recycle=120,
        pre_ping=False,
    )
    pool = database.engine.pool
    assert pool.size() == 3  # type: ignore[attr-defined]
    assert pool._max_overflow == 2  # type: ignore[attr-defined]
    assert pool.timeout() == 7.5  # type: ignore[attr-defined]
    assert pool._recycle == 120
    assert pool._pre_ping is False
    with database.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1


def test_pool_options_still_win_over_the_pool_arguments(
    postgres_url: str, databases: list[Database]
) -> None:
    database = _open(databases, postgres_url, pool_size=3, pool_options={"pool_size": 4})
    assert database.engine.pool.size() == 4  # type: ignore[attr-defined]


def test_workspace_passes_the_pool_settings(tmp_path: Path, postgres_url: str) -> None:
    ws = open_workspace(
        home=str(tmp_path / "pool"),
        database_url=postgres_url,
        db_pool_size=2,
        db_max_overflow=1,
        db_pool_timeout_seconds=4,
        db_pool_recycle_seconds=90,
    )
    try:
        pool = ws.db.engine.pool
        assert pool.size() == 2  # type: ignore[attr-defined]
        assert pool._max_overflow == 1  # type: ignore[attr-defined]
        assert pool.timeout() == 4  # type: ignore[attr-defined]
        assert pool._recycle == 90
        assert pool._pre_ping is True
    finally:
        ws.close()


def test_sqlite_keeps_its_own_pool(tmp_path: Path, databases: list[Database]) -> None:
    url = f"sqlite:///{tmp_path / 'pool.db'}"
    plain = _open(databases, url)
    tuned = _open(databases, url, pool_size=1, pool_recycle=5, pre_ping=False)
    assert type(tuned.engine.pool) is type(plain.engine.pool)
    assert tuned.engine.pool._recycle == plain.engine.pool._recycle
    assert tuned.engine.pool.size() == plain.engine.pool.size()  # type: ignore[attr-defined]
