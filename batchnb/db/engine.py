"""Engine and sessions for SQLite and PostgreSQL.

SQLite is opened in WAL mode with a busy timeout and foreign keys on. pysqlite's own transaction
handling is switched off so that batchnb emits ``BEGIN`` itself: write transactions use
``BEGIN IMMEDIATE``, which takes the write lock up front and waits on the busy timeout instead of
failing with "database is locked" when two writers meet.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from batchnb.db.monitoring import attach_slow_query_log
from batchnb.errors import ConfigurationError, MissingDependencyError

_WRITE_OPTION = "batchnb_write"

KEEPALIVE_IDLE_SECONDS = 10
KEEPALIVE_INTERVAL_SECONDS = 5
KEEPALIVE_COUNT = 3
"""TCP keepalives on both ends of a PostgreSQL connection: a peer that vanished (a host off
the network) is noticed after about 10 + 5 x 3 = 25 s instead of the kernel's 2 hours, and
the server ends its session, releasing its locks."""

# SQLSTATEs after which trying the same step again is right: lock timeout, serialization
# failure, deadlock, statement cancelled, idle-in-transaction timeout, server shutting
# down, connection failures.
_TRANSIENT_SQLSTATES = frozenset(
    {"55P03", "40001", "40P01", "57014", "25P03", "57P01", "57P02", "57P03"}
)


def is_transient_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the database was busy or briefly unreachable, not that the
    statement was wrong: SQLite's "database is locked" after the busy timeout, a PostgreSQL
    lock timeout, deadlock or dropped connection, or no free pooled connection."""
    if isinstance(exc, PoolTimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    original = exc.orig
    if isinstance(original, sqlite3.OperationalError):
        text = str(original).lower()
        return "locked" in text or "busy" in text
    sqlstate = getattr(original, "sqlstate", None) or ""
    return sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith("08")


def _postgres_connect_args(
    lock_timeout: float, idle_in_transaction_timeout: float
) -> dict[str, Any]:
    """libpq keepalives for our end, and per-session settings for the server's end."""
    options = {
        "lock_timeout": f"{int(lock_timeout * 1000)}",
        "idle_in_transaction_session_timeout": f"{int(idle_in_transaction_timeout * 1000)}",
        "tcp_keepalives_idle": str(KEEPALIVE_IDLE_SECONDS),
        "tcp_keepalives_interval": str(KEEPALIVE_INTERVAL_SECONDS),
        "tcp_keepalives_count": str(KEEPALIVE_COUNT),
    }
    return {
        "keepalives": 1,
        "keepalives_idle": KEEPALIVE_IDLE_SECONDS,
        "keepalives_interval": KEEPALIVE_INTERVAL_SECONDS,
        "keepalives_count": KEEPALIVE_COUNT,
        "options": " ".join(f"-c {name}={value}" for name, value in options.items()),
    }


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        _enable_wal(cursor, busy_timeout_ms)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _enable_wal(cursor: Any, busy_timeout_ms: int) -> None:
    # Two processes opening a new database at the same moment both try to switch it to WAL;
    # SQLite sees a deadlock and answers "database is locked" at once, without waiting on the
    # busy timeout. The second one to try finds it switched, so try again until the timeout.
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class Database:
    """One database: an engine, a write-intent engine view, and session helpers.

    Parameters
    ----------
    url:
        SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://...``).
    sqlite_busy_timeout_ms:
        How long SQLite waits for the write lock.
    slow_query_ms:
        Statements taking this long or longer are logged on ``batchnb.db.slow``
        (see :mod:`batchnb.db.monitoring`); 0 turns the log off.
    pool_size, max_overflow, pool_timeout, pool_recycle, pre_ping:
        PostgreSQL connection pool: connections kept open, extra connections allowed under
        load, seconds to wait for a free one, seconds after which a connection is replaced
        (-1 never), and whether to test a connection before handing it out. SQLite ignores
        them (its file connections are cheap and its locking, not a pool, limits writers).
    lock_timeout, idle_in_transaction_timeout:
        PostgreSQL: seconds a statement waits for a lock before failing, and seconds a session
        may sit idle inside a transaction before the server ends it (0: no limit). With TCP
        keepalives on both ends, a frozen or vanished worker's locks go within seconds.
    pool_options:
        Extra ``create_engine`` keyword arguments for server databases; they win over the
        pool arguments above.
    """

    def __init__(
        self,
        url: str,
        *,
        sqlite_busy_timeout_ms: int = 30000,
        slow_query_ms: float = 0.0,
        pool_size: int = 5,
        max_overflow: int = 10,
        pool_timeout: float = 30.0,
        pool_recycle: float = -1,
        pre_ping: bool = True,
        lock_timeout: float = 10.0,
        idle_in_transaction_timeout: float = 30.0,
        pool_options: dict[str, Any] | None = None,
    ) -> None:
        parsed = make_url(url)
        self.url = url
        self.dialect_name = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.dialect_name == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False}
        elif self.dialect_name == "postgresql":
            kwargs.update(
                {
                    "pool_pre_ping": pre_ping,
                    "pool_size": pool_size,
                    "max_overflow": max_overflow,
                    "pool_timeout": pool_timeout,
                    "pool_recycle": pool_recycle,
                    "connect_args": _postgres_connect_args(
                        lock_timeout, idle_in_transaction_timeout
                    ),
                }
            )
            kwargs.update(pool_options or {})
        try:
            self.engine = create_engine(url, **kwargs)
        except ModuleNotFoundError as exc:
            raise MissingDependencyError(
                exc.name or "driver", "postgres", f"database URL {parsed.drivername}://"
            ) from None
        except Exception as exc:
            raise ConfigurationError(f"cannot open database {parsed!r}: {exc}") from None
        if self.dialect_name == "sqlite":
            _configure_sqlite(self.engine, sqlite_busy_timeout_ms)
        attach_slow_query_log(self.engine, slow_query_ms)
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(self._write_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect_name == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads. Closing it ends the transaction; loaded objects stay readable."""
        with self._sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in one write transaction, committed on success, rolled back on error."""
        with self._write_sessions() as session, session.begin():
            yield session

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A Core connection in one write transaction (the queue's hot path: no ORM session)."""
        with self._write_engine.begin() as connection:
            yield connection

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A Core connection for reads; its transaction ends with the block."""
        with self.engine.connect() as connection:
            yield connection

    def dispose(self) -> None:
        """Close every pooled connection (call before forking or at the end of a test)."""
        self.engine.dispose()
