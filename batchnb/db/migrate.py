"""Schema migrations: run the Alembic scripts in ``batchnb/db/migrations`` against a Database.

The Alembic configuration is built in code, so an installed batchnb needs no ``alembic.ini``; the
repository's ``alembic.ini`` is only for developers writing new revisions. Every run goes through
:func:`migration_connection`, which gives Alembic one connection inside one transaction that we
own: Alembic sees an external transaction and neither begins nor commits on its own. That matters
on SQLite, where batchnb's engine emits ``BEGIN`` itself (see ``engine.py``) and Alembic would
otherwise treat DDL as non-transactional and commit per revision.

Alembic (with Mako) takes longer to import than a short command takes to run, so it is
imported only where a migration runs or the scripts are read:
opening a workspace whose database is already at the newest revision costs one query and no
Alembic (:func:`newest_script_revision` reads the newest revision from the scripts' file names).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from batchnb.db.engine import _WRITE_OPTION, Database
from batchnb.errors import ConfigurationError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
"""Folder holding ``env.py`` and ``versions/``; shipped inside the wheel."""

# Key of the PostgreSQL advisory lock that serialises migrations: "batchnb" in ASCII, so it is
# recognisable in pg_locks and does not collide with small integers other tools tend to use.
_PG_LOCK_KEY = 0x62_61_74_63_68_6E_62

#: Indexes with expressions, which Alembic can only compare on PostgreSQL.
SQLITE_EXPRESSION_INDEXES = frozenset({"ix_queue_items_ready"})

IncludeObject = Callable[[Any, str | None, str, bool, Any], bool]


@functools.cache
def _script_directory() -> ScriptDirectory:
    # Parsing every revision file is the expensive part of a status check; the scripts cannot
    # change while the process runs, so read them once.
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


@functools.cache
def _known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _script_directory().walk_revisions())


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        # env.py uses this connection (and its transaction) instead of opening its own.
        config.attributes["connection"] = connection
    return config


@functools.cache
def newest_script_revision() -> str | None:
    """The newest revision as the scripts' file names tell it, without Alembic.

    ``env.py`` numbers revisions 0001, 0002, ... and ``alembic.ini`` names each file
    ``<revision>_<slug>.py``, so the greatest prefix is the head; a test holds this equal to
    :func:`head_revision`, which parses the scripts.
    """
    scripts = (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py")
    return max((path.name.split("_", 1)[0] for path in scripts), default=None)


def head_revision() -> str:
    """The newest revision shipped with this batchnb (e.g. ``"0001"``)."""
    head = _script_directory().get_current_head()
    if head is None:
        raise ConfigurationError(f"no migrations found in {MIGRATIONS_DIR}; reinstall batchnb")
    return head


def current_revision(database: Database) -> str | None:
    """The revision the database is at, or None when it has never been migrated."""
    from alembic.migration import MigrationContext

    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def include_object_for(dialect_name: str) -> IncludeObject:
    """An Alembic ``include_object`` hook that honours ``ddl_if(dialect=...)`` on the models.

    Alembic's autogenerate ignores ``ddl_if``, so on SQLite it would report the
    PostgreSQL-only GIN and trigram indexes as missing. The hook leaves such model objects out
    of the comparison on every other dialect; reflected objects are always compared.

    Alembic cannot reflect expression indexes on SQLite (``priority DESC``), so those are left
    out of the comparison there; PostgreSQL compares them, and a test checks their SQLite
    definition directly.
    """

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ == "index" and dialect_name == "sqlite" and name in SQLITE_EXPRESSION_INDEXES:
            return False
        rule = getattr(obj, "_ddl_if", None)
        if reflected or rule is None or rule.dialect is None:
            return True
        dialects = (rule.dialect,) if isinstance(rule.dialect, str) else tuple(rule.dialect)
        return dialect_name in dialects

    return include_object


def autogenerate_options(dialect_name: str) -> dict[str, Any]:
    """Options for comparing models with a database, shared by ``env.py`` and the tests.

    Types and server defaults are compared too, so a changed column length or default shows up
    as a difference rather than passing silently.
    """
    return {
        "include_object": include_object_for(dialect_name),
        "compare_type": True,
        "compare_server_default": True,
    }


@contextmanager
def migration_connection(database: Database) -> Iterator[Connection]:
    """A connection in one write transaction, fit for running migrations.

    Commits when the block succeeds and rolls back on error, so a failed upgrade leaves the
    schema as it was on both SQLite and PostgreSQL. On PostgreSQL the transaction holds an
    advisory lock, so concurrent migrators run one after the other. On SQLite ``BEGIN
    IMMEDIATE`` takes the write lock up front (waiting on the busy timeout), and foreign keys
    are switched off for the duration: SQLite cannot alter a table in place, so Alembic's batch
    mode copies it and drops the old one, and with foreign keys on that drop would cascade
    deletes into child tables. ``PRAGMA foreign_key_check`` runs before the commit instead, as
    SQLite's documentation prescribes for schema changes.
    """
    with database.engine.connect() as connection:
        if database.is_sqlite:
            _set_sqlite_foreign_keys(connection, enabled=False)
        try:
            connection.execution_options(**{_WRITE_OPTION: True})
            with connection.begin():
                if database.dialect_name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY}
                    )
                yield connection
                if database.is_sqlite:
                    _check_sqlite_foreign_keys(connection)
        finally:
            if database.is_sqlite:
                _set_sqlite_foreign_keys(connection, enabled=True)


def _set_sqlite_foreign_keys(connection: Connection, *, enabled: bool) -> None:
    # The pragma is a no-op inside a transaction, and any statement through SQLAlchemy would
    # open one (the engine emits BEGIN on autobegin), so it goes straight to the driver, which
    # is in autocommit mode on batchnb's SQLite engine.
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys = {'ON' if enabled else 'OFF'}")
    finally:
        cursor.close()


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if violations:
        raise ConfigurationError(
            f"migration left {len(violations)} rows breaking foreign keys "
            f"(first: {tuple(violations[0])}); nothing was committed"
        )


def _run(database: Database, action: Callable[[Config], None]) -> None:
    with migration_connection(database) as connection:
        action(_config(connection))


def upgrade(database: Database, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (the newest by default) in one transaction."""
    from alembic import command

    _run(database, lambda config: command.upgrade(config, revision))


def downgrade(database: Database, revision: str) -> None:
    """Downgrade the schema to ``revision``; ``"base"`` drops every batchnb table."""
    from alembic import command

    _run(database, lambda config: command.downgrade(config, revision))


def _quick_revision(database: Database) -> str | None:
    # One query for the common case (already current). A missing version table raises; the
    # caller then takes the locked path, which checks properly and reports real errors.
    with database.engine.connect() as connection:
        try:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        except DBAPIError:
            return None
    return rows[0][0] if len(rows) == 1 else None


@contextmanager
def _file_lock(lock_path: Path | None) -> Iterator[None]:
    if lock_path is None:
        yield
        return
    from filelock import FileLock

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    # filelock takes an OS lock on Linux, macOS and Windows alike (fcntl is POSIX only).
    with FileLock(lock_path):
        yield


def ensure_current(database: Database, lock_path: Path | None = None) -> bool:
    """Upgrade the database to the newest revision if it is behind.

    Safe when several processes open the same workspace at once: the check and the upgrade
    run under an exclusive file lock on ``lock_path`` (when given) and inside
    :func:`migration_connection` (PostgreSQL advisory lock, SQLite write lock), and the
    revision is read again once the locks are held. Costs one query when already current.

    Parameters
    ----------
    database:
        The database to migrate.
    lock_path:
        A file to lock around the check and upgrade, e.g. ``<workspace>/migrate.lock``.

    Returns
    -------
    bool
        True if this call upgraded the database, False if it was already current.
    """
    quick = _quick_revision(database)
    if quick is not None and quick == newest_script_revision():
        return False
    from alembic import command
    from alembic.migration import MigrationContext

    head = head_revision()
    with _file_lock(lock_path), migration_connection(database) as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        if current == head:
            return False
        if current is not None and current not in _known_revisions():
            raise ConfigurationError(
                f"the database is at schema revision {current!r}, which this batchnb does not "
                f"know (newest here: {head!r}); it was migrated by a newer batchnb, so upgrade "
                "this one: pip install -U batchnb"
            )
        command.upgrade(_config(connection), "head")
        return True
