"""Who may act on a batch: its owner, or a user with the admin role.

Every service function that changes or reads a batch on someone's behalf calls
:func:`authorize` first. A refusal is written to ``audit_events`` in its own transaction (so it
is kept although the operation stops) and raised as :class:`PermissionDeniedError`; nothing
else changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from batchnb.config import Settings
from batchnb.db.models import ExtractionBatch
from batchnb.errors import NotFoundError, PermissionDeniedError
from batchnb.services.audit import record_event
from batchnb.services.workspace import Workspace


def is_admin(settings: Settings, actor: str) -> bool:
    """Whether ``actor`` has the admin role (named in the ``admins`` setting)."""
    return actor in settings.admins


def authorize(
    workspace: Workspace,
    actor: str,
    action: str,
    batch_ids: Iterable[int],
    details: Mapping[str, Any] | None = None,
) -> None:
    """Check that ``actor`` may do ``action`` to every batch in ``batch_ids``.

    Raises
    ------
    NotFoundError
        A batch does not exist.
    PermissionDeniedError
        ``actor`` does not own one of them and is not an admin. The refusal is
        audited (one event per refused batch) before this is raised.
    """
    wanted = sorted(set(batch_ids))
    if not wanted:
        return
    with workspace.db.read() as session:
        rows = session.execute(
            select(ExtractionBatch.id, ExtractionBatch.owner).where(ExtractionBatch.id.in_(wanted))
        ).all()
    owners = {batch_id: owner for batch_id, owner in rows}
    missing = [batch_id for batch_id in wanted if batch_id not in owners]
    if missing:
        raise NotFoundError(f"batch {', '.join(map(str, missing))} does not exist")
    if is_admin(workspace.settings, actor):
        return
    refused = {batch_id: owner for batch_id, owner in owners.items() if owner != actor}
    if not refused:
        return
    with workspace.db.begin() as connection:
        for batch_id, owner in refused.items():
            record_event(
                connection,
                actor,
                action,
                "batch",
                batch_id,
                {**(details or {}), "owner": owner, "reason": "not the owner"},
                allowed=False,
            )
    names = ", ".join(f"{batch_id} (owned by {owner})" for batch_id, owner in refused.items())
    raise PermissionDeniedError(
        f"user {actor!r} may not {action} batch {names}: only the owner or an admin "
        "(BATCHNB_ADMINS) may"
    )
