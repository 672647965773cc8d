"""Who may act: the owner of a batch or export, or a user with the admin role.

Every service function that changes or reads something on someone's behalf calls one of the
checks below first. A refusal always takes the same path, :func:`refuse`: it is written to
``audit_events`` in its own transaction (so it is kept although the operation stops) and
raised as :class:`PermissionDeniedError`; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from sqlalchemy import select

from batchnb.config import Settings
from batchnb.db.models import ExtractionBatch
from batchnb.errors import NotFoundError, PermissionDeniedError
from batchnb.services.audit import record_event
from batchnb.services.workspace import Workspace

_ONLY_OWNER = "only the owner or an admin (BATCHNB_ADMINS) may"


def is_admin(settings: Settings, actor: str) -> bool:
    """Whether ``actor`` has the admin role (named in the ``admins`` setting)."""
    return actor in settings.admins


def refuse(
    workspace: Workspace,
    actor: str,
    action: str,
    targets: Mapping[tuple[str, int | str], Mapping[str, Any]],
    message: str,
) -> NoReturn:
    """Audit a refusal of ``action`` on each target, then raise :class:`PermissionDeniedError`.

    ``targets`` maps (target type, target id) to the details recorded with that refusal.
    """
    with workspace.db.begin() as connection:
        for (target_type, target_id), details in targets.items():
            record_event(
                connection, actor, action, target_type, target_id, dict(details), allowed=False
            )
    raise PermissionDeniedError(message)


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
        ``actor`` does not own one of them and is not an admin (one audited refusal per
        batch they do not own).
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
    if refused:
        names = ", ".join(f"{batch_id} (owned by {owner})" for batch_id, owner in refused.items())
        refuse(
            workspace,
            actor,
            action,
            {
                ("batch", batch_id): {**(details or {}), "owner": owner, "reason": "not the owner"}
                for batch_id, owner in refused.items()
            },
            f"user {actor!r} may not {action} batch {names}: {_ONLY_OWNER}",
        )


def authorize_owner(
    workspace: Workspace, actor: str, action: str, target_type: str, target_id: int, owner: str
) -> None:
    """Check that ``actor`` owns the ``target_type`` ``target_id`` (owned by ``owner``) or is an
    admin; a refusal is audited and raised."""
    if actor == owner or is_admin(workspace.settings, actor):
        return
    refuse(
        workspace,
        actor,
        action,
        {(target_type, target_id): {"owner": owner, "reason": "not the owner"}},
        f"user {actor!r} may not {action} {target_type} {target_id} (owned by {owner}): "
        f"{_ONLY_OWNER}",
    )


def authorize_user(
    workspace: Workspace, actor: str, action: str, user: str, *, what: str, hint: str
) -> None:
    """Check that ``actor`` may see ``user``'s data: themselves, or anyone for an admin.

    A refusal says the actor may not ``what`` (e.g. "list the batches of 'bob'") and ends
    with ``hint``, what to do instead.
    """
    if user == actor or is_admin(workspace.settings, actor):
        return
    refuse(
        workspace,
        actor,
        action,
        {("user", user): {"owner": user, "reason": "not an admin"}},
        f"user {actor!r} may not {what}: only an admin (BATCHNB_ADMINS) may; {hint}",
    )
