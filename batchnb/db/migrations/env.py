"""Alembic environment for batchnb.

Two ways in:

* :mod:`batchnb.db.migrate` (what batchnb itself uses) passes a connection that is already inside
  the transaction it owns, in ``config.attributes["connection"]``.
* The ``alembic`` command line (developers: ``alembic -c alembic.ini revision --autogenerate -m
  "..."``) opens the database named by ``BATCHNB_DATABASE_URL`` or the workspace settings, through
  the same :func:`batchnb.db.migrate.migration_connection`.

Models are imported here only as the autogenerate target; revision files never import them, so
an old revision keeps meaning what it meant when it was written.
"""

from __future__ import annotations

from collections.abc import Iterable
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from alembic.operations.ops import MigrationScript
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeDecorator

from batchnb.config import load_settings
from batchnb.db import migrate
from batchnb.db.engine import Database
from batchnb.db.models import Base

config = context.config


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Render our column types (e.g. UTCDateTime) as the plain SQLAlchemy type they store as,
    # so generated revisions do not import batchnb.db.models.
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    # Alembic's own rendering writes JSONB(astext_type=Text()) without importing Text.
    if type_ == "type" and isinstance(obj, postgresql.JSONB):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "postgresql.JSONB()"
    return False


def _number_revision(
    migration_context: MigrationContext,
    revision: str | Iterable[str | None] | Iterable[str],
    directives: list[MigrationScript],
) -> None:
    # Revisions are numbered 0001, 0002, ... instead of Alembic's random ids, so their order is
    # plain from the file names. An autogenerate run that finds nothing writes no file.
    script = directives[0]
    cmd_opts = config.cmd_opts
    if cmd_opts is not None and getattr(cmd_opts, "autogenerate", False):
        upgrade_ops = script.upgrade_ops
        if upgrade_ops is not None and upgrade_ops.is_empty():
            directives.clear()
            return
    head = ScriptDirectory.from_config(config).get_current_head()
    script.rev_id = f"{int(head) + 1:04d}" if head else "0001"


def _run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # Every revision must also run on SQLite, which cannot ALTER most things; batch mode
        # copies the table there and emits plain ALTERs on PostgreSQL.
        render_as_batch=True,
        # True on SQLite as well: the driver's implicit commits are off (engine.py), so DDL
        # there is transactional too, and migrate.migration_connection relies on it.
        transactional_ddl=True,
        render_item=_render_item,
        process_revision_directives=_number_revision,
        **migrate.autogenerate_options(connection.dialect.name),
    )
    # Inside migrate.migration_connection's transaction this is a no-op: that transaction
    # commits or rolls back the whole run.
    with context.begin_transaction():
        context.run_migrations()


def _database_url() -> str:
    # load_settings reads BATCHNB_DATABASE_URL first, then the workspace's config file, then
    # the default SQLite file in the workspace.
    return config.get_main_option("sqlalchemy.url") or load_settings().database_url


def _run_offline() -> None:
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=Base.metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transactional_ddl=True,
        **migrate.autogenerate_options(make_url(url).get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    database = Database(_database_url())
    try:
        with migrate.migration_connection(database) as own_connection:
            _run_with(own_connection)
    finally:
        database.dispose()


# Only the command line has an ini file; batchnb's own runs must not reconfigure app logging.
if config.config_file_name is not None and config.get_section("loggers") is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
