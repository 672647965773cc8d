"""Audit trail: one ``audit_events`` row per operation on a batch (and per refusal)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert

from batchnb.db.models import AuditEvent, utcnow


def record_event(
    connection: Connection,
    actor: str,
    action: str,
    target_type: str,
    target_id: int | str | None,
    details: dict[str, Any] | None = None,
    *,
    allowed: bool = True,
) -> None:
    """Add an audit event to the caller's transaction."""
    connection.execute(
        insert(AuditEvent),
        {
            "actor": actor,
            "action": action,
            "target_type": target_type,
            "target_id": None if target_id is None else str(target_id),
            "allowed": allowed,
            "details": details or {},
            "created_at": utcnow(),
        },
    )
