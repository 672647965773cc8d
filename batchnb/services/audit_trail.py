"""Reading the audit trail: who did what to which batch, and who was refused."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import String, cast, or_, select

from batchnb.db.models import AuditEvent, ExtractionBatch
from batchnb.errors import ConfigurationError
from batchnb.services.access import is_admin
from batchnb.services.workspace import Workspace, acting

AUDIT_COLUMNS = (
    "id",
    "created_at",
    "actor",
    "action",
    "target_type",
    "target_id",
    "allowed",
    "details",
)


def list_audit_events(
    *,
    actor_filter: str | None = None,
    action: str | None = None,
    target_id: int | str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    workspace: Workspace | None = None,
    actor: str | None = None,
) -> pd.DataFrame:
    """The newest audit events first, one row each, as a DataFrame (:data:`AUDIT_COLUMNS`).

    An admin sees every event. Anyone else sees the events they caused, the events on
    batches they own, and the events that name them as owner (refusals on their batches, and
    a deletion of one, which outlives the batch's row).

    Parameters
    ----------
    actor_filter:
        Only events caused by this user.
    action:
        Only this action: ``submit``, ``retry``, ``cancel``, ``delete``, ``update_status``,
        ``list`` (refusals only), ...
    target_id:
        Only events on this batch.
    since:
        Only events at or after this (timezone-aware) time.
    limit:
        At most this many rows.
    """
    workspace, actor = acting(workspace, actor)
    if limit < 1:
        raise ConfigurationError(f"limit must be at least 1, got {limit}")
    if since is not None and since.tzinfo is None:
        raise ConfigurationError("since must be timezone-aware, e.g. datetime(..., tzinfo=UTC)")
    query = select(*(getattr(AuditEvent, column) for column in AUDIT_COLUMNS))
    if not is_admin(workspace.settings, actor):
        # Only events since the batch was created: SQLite hands a deleted batch's id out
        # again, and the events of the earlier batch are not the new owner's business.
        on_own_batch = (
            select(ExtractionBatch.id)
            .where(
                ExtractionBatch.owner == actor,
                cast(ExtractionBatch.id, String(64)) == AuditEvent.target_id,
                ExtractionBatch.created_at <= AuditEvent.created_at,
            )
            .exists()
        )
        query = query.where(
            or_(
                AuditEvent.actor == actor,
                (AuditEvent.target_type == "batch") & on_own_batch,
                # Deletions and refusals name the owner: the batch row may be gone.
                AuditEvent.details["owner"].as_string() == actor,
            )
        )
    if actor_filter is not None:
        query = query.where(AuditEvent.actor == actor_filter)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if target_id is not None:
        query = query.where(AuditEvent.target_id == str(target_id))
    if since is not None:
        query = query.where(AuditEvent.created_at >= since)
    query = query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit)
    with workspace.db.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame([tuple(row) for row in rows], columns=list(AUDIT_COLUMNS))
