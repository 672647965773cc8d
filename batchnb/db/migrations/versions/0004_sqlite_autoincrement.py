"""SQLite: never reuse the id of a deleted batch, document or export.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

Without AUTOINCREMENT, SQLite gives a new row the highest id plus one, so deleting the newest
batch hands its id to the next one, and audit events, cached summaries and export records of
the deleted batch would seem to describe the new one. PostgreSQL sequences never go back;
nothing changes there. Offline (``--sql``) scripts skip this step.

Written out literally: this revision does not import batchnb.db.models.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("extraction_batches", "documents", "exports")


def _recreate(autoincrement: bool) -> None:
    context = op.get_context()
    if context.dialect.name != "sqlite":
        return
    if context.as_sql:
        # Rebuilding a SQLite table needs its reflected definition, which an offline SQL
        # script has no database to read: such scripts keep SQLite's default ids.
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
