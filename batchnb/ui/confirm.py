"""What a batch operation will do, said before it runs, and what it did, said after.

The manager's confirmation dialog shows :func:`describe`'s sentence ("Delete 3 batches: 412
documents and their files."), counted fresh from the database when the dialog opens; the
confirm button runs :func:`perform`, which calls the service functions and returns the result
message. Service refusals (not the owner, wrong state) are raised unchanged for the dialog to
show: the services check every batch before changing any, so a refusal changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import batchnb
from batchnb.services.manage import BULK_STATUSES, check_batches
from batchnb.services.workspace import Workspace

ACTIONS = ("retry", "cancel", "delete", "set_status")
"""Operations that go through the confirmation dialog (export has a dialog of its own)."""

_VERBS = {"retry": "retry", "cancel": "cancel", "delete": "delete", "set_status": "update_status"}


def plural(count: int, word: str) -> str:
    """``1 batch``, ``3 batches``, ``0 documents``."""
    if count == 1:
        return f"1 {word}"
    return f"{count} {word}es" if word.endswith(("ch", "s")) else f"{count} {word}s"


@dataclass(frozen=True)
class Facts:
    """What the dialog counts for one batch: its name, owner, status and documents."""

    id: int
    name: str
    owner: str
    status: str
    counts: Mapping[str, int]

    @property
    def documents(self) -> int:
        return sum(self.counts.values())

    @property
    def open(self) -> int:
        return self.counts.get("pending", 0) + self.counts.get("processing", 0)


def read_facts(batch_ids: Sequence[int], workspace: Workspace) -> list[Facts]:
    """The batches' facts, read now (a batch deleted meanwhile is left out)."""
    found = []
    for batch_id in batch_ids:
        try:
            batch = batchnb.get_batch(batch_id, workspace=workspace)
            counts = batch.progress(cached=False).as_dict()
            info = batch.info()
        except batchnb.NotFoundError:
            continue
        found.append(Facts(batch_id, info.name, info.owner, info.status, counts))
    return found


@dataclass(frozen=True)
class Operation:
    """One confirmed operation: what, on which batches, with which choices."""

    action: str
    batch_ids: tuple[int, ...]
    choices: Mapping[str, Any] = field(default_factory=dict)


def describe(operation: Operation, facts: Sequence[Facts]) -> tuple[str, bool]:
    """The sentence saying exactly what ``operation`` will do, and whether there is anything
    to do (the confirm button is offered only then)."""
    batches = plural(len(facts), "batch")
    action = operation.action
    if not facts:
        return "The selected batches no longer exist.", False
    if action == "delete":
        documents = sum(f.documents for f in facts)
        return (
            f"Delete {batches}: {plural(documents, 'document')} and their files. "
            "Results, jobs and queue items go too; files another batch still uses are kept. "
            "This cannot be undone.",
            True,
        )
    if action == "retry":
        failed = sum(f.counts.get("failed", 0) for f in facts)
        if not failed:
            return f"The {batches} have no failed documents: nothing to retry.", False
        with_failures = plural(sum(1 for f in facts if f.counts.get("failed", 0)), "batch")
        return (
            f"Retry {plural(failed, 'failed document')} of {with_failures}: each gets a new "
            "job on the queue; completed and cancelled documents are left alone.",
            True,
        )
    if action == "cancel":
        waiting = sum(f.open for f in facts)
        finished = sum(f.documents - f.open for f in facts)
        if not waiting:
            return (
                f"Cancel {batches}: nothing is waiting or running, so nothing stops "
                "(the batches keep their status).",
                True,
            )
        text = (
            f"Cancel {batches}: {plural(waiting, 'document')} waiting or running will not be "
            "extracted"
        )
        if finished:
            text += f"; {plural(finished, 'finished document')} keep their results"
        return text + ".", True
    if action == "set_status":
        status = str(operation.choices.get("status", ""))
        if status not in BULK_STATUSES:
            return f"Choose a status to set: {', '.join(BULK_STATUSES)}.", False
        if status == "cancelled":
            waiting = sum(f.open for f in facts)
            return (
                f"Mark {batches} cancelled: {plural(waiting, 'document')} waiting or running stop.",
                True,
            )
        return (
            f"Mark {batches} {status} by hand; documents and results stay as they are. "
            "Refused for a batch with documents still waiting or running.",
            True,
        )
    raise ValueError(f"unknown operation {action!r}; use one of {', '.join(ACTIONS)}")


def perform(operation: Operation, workspace: Workspace) -> str:
    """Run ``operation`` through the service functions; the result message.

    Every batch is checked first (:func:`batchnb.services.manage.check_batches`), so a
    refusal raises before any batch changes.

    Raises
    ------
    batchnb.PermissionDeniedError, batchnb.BatchStateError, batchnb.NotFoundError
        The service's refusal, with its reason.
    """
    ids = list(operation.batch_ids)
    action = operation.action
    check_batches(ids, _VERBS[action], workspace=workspace)
    batches = plural(len(ids), "batch")
    if action == "delete":
        documents = files = 0
        for batch_id in ids:
            summary = batchnb.delete_batch(batch_id, workspace=workspace)
            documents += summary.documents
            files += summary.files_removed
        return (
            f"Deleted {batches}: {plural(documents, 'document')}, {plural(files, 'file')} removed."
        )
    if action == "retry":
        extractor = operation.choices.get("extractor") or None
        queued = sum(
            batchnb.retry_failed(batch_id, extractor=extractor, workspace=workspace)
            for batch_id in ids
        )
        how = f" with the {extractor} extractor" if extractor else ""
        return f"Queued {plural(queued, 'failed document')} again{how}."
    if action == "cancel":
        stopped = sum(batchnb.cancel_batch(batch_id, workspace=workspace) for batch_id in ids)
        return f"Cancelled {batches}: {plural(stopped, 'queue item')} stopped."
    if action == "set_status":
        status = str(operation.choices.get("status", ""))
        changed = batchnb.bulk_update_status(ids, status, workspace=workspace)
        return f"Set {plural(changed, 'batch')} to {status} ({len(ids) - changed} already were)."
    raise ValueError(f"unknown operation {action!r}; use one of {', '.join(ACTIONS)}")
