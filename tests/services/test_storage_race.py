"""A delete never removes a stored file that a concurrent submit is about to use.

The interleavings are played in order, without threads or sleeps: the submit's intake runs,
then (through a hook on ``_create_rows``) a delete of another batch with the same bytes, then
the submit's row transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, text

from batchnb.db.models import AuditEvent, Document, ExtractionBatch
from batchnb.documents.storage import key_for_hash
from batchnb.errors import IntakeError
from batchnb.services import manage, storage_gc
from batchnb.services import submit as submit_module
from batchnb.services.manage import delete_batch
from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace

PROMPT = "invoice number, total"
SHARED = b"Invoice number: R-1\nTotal: 10.00 USD\n"
OTHER = b"Invoice number: R-2\nTotal: 20.00 USD\n"
RACE_ERROR = r"shared\.txt: the stored copy was removed .* by a delete .* submit again"


@pytest.fixture(params=["workspace", "postgres_workspace"])
def ws(request: pytest.FixtureRequest) -> Iterator[Workspace]:
    """SQLite and PostgreSQL."""
    workspace: Workspace = request.getfixturevalue(request.param)
    yield workspace


def _key(data: bytes) -> str:
    return key_for_hash(hashlib.sha256(data).hexdigest())


def _before_rows(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> None:
    """Run ``action`` after the next submit's intake, just before its row transaction."""
    original = submit_module._create_rows

    def racing(*args: Any, **kwargs: Any) -> Any:
        action()
        return original(*args, **kwargs)

    monkeypatch.setattr(submit_module, "_create_rows", racing)


def _count_storage_lookups_in_rows(
    monkeypatch: pytest.MonkeyPatch, workspace: Workspace
) -> list[str]:
    """Keys looked up in storage during submits' row transactions (not during intake)."""
    looked_up: list[str] = []
    inside = [False]
    original_exists = workspace.storage.exists
    original_rows = submit_module._create_rows

    def exists(key: str) -> bool:
        if inside[0]:
            looked_up.append(key)
        return original_exists(key)

    def rows(*args: Any, **kwargs: Any) -> Any:
        inside[0] = True
        try:
            return original_rows(*args, **kwargs)
        finally:
            inside[0] = False

    monkeypatch.setattr(workspace.storage, "exists", exists)
    monkeypatch.setattr(submit_module, "_create_rows", rows)
    return looked_up


def _assert_every_document_has_its_file(workspace: Workspace) -> None:
    with workspace.db.read() as session:
        keys = session.scalars(select(Document.storage_key).distinct()).all()
    assert [key for key in keys if not workspace.storage.exists(key)] == []


def _count(workspace: Workspace, model: Any) -> int:
    with workspace.db.read() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _removal_events(workspace: Workspace) -> list[dict[str, Any]]:
    with workspace.db.read() as session:
        return list(
            session.scalars(
                select(AuditEvent.details)
                .where(AuditEvent.action == storage_gc.REMOVE_FILES_ACTION)
                .order_by(AuditEvent.id)
            )
        )


def test_a_delete_between_intake_and_rows_fails_the_submit_and_creates_nothing(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    doomed = submit([("old.txt", SHARED)], PROMPT, workspace=ws)
    _before_rows(monkeypatch, lambda: delete_batch(doomed.id, workspace=ws))

    with pytest.raises(IntakeError, match=RACE_ERROR):
        submit([("shared.txt", SHARED), ("other.txt", OTHER)], PROMPT, workspace=ws)

    assert (_count(ws, ExtractionBatch), _count(ws, Document)) == (0, 0), "nothing created"
    assert not ws.storage.exists(_key(SHARED)), "the delete did remove it"
    assert [event["keys"] for event in _removal_events(ws)] == [[_key(SHARED)]]
    monkeypatch.undo()
    again = submit([("shared.txt", SHARED)], PROMPT, workspace=ws)
    assert again.info().document_count == 1
    _assert_every_document_has_its_file(ws)


def test_a_removal_after_the_deletes_commit_is_caught_too(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delete's rows commit before the submit starts; its file removal runs mid-submit."""
    doomed = submit([("old.txt", SHARED)], PROMPT, workspace=ws)
    postponed: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def postpone(*args: Any, **kwargs: Any) -> int:
        postponed.append((args, kwargs))
        return 0

    monkeypatch.setattr(manage, "remove_unreferenced", postpone)
    delete_batch(doomed.id, workspace=ws)
    assert ws.storage.exists(_key(SHARED)) and len(postponed) == 1
    (args, kwargs), removed = postponed[0], []
    _before_rows(
        monkeypatch, lambda: removed.append(storage_gc.remove_unreferenced(*args, **kwargs))
    )

    with pytest.raises(IntakeError, match=RACE_ERROR):
        submit([("shared.txt", SHARED)], PROMPT, workspace=ws)

    assert removed == [1]
    assert _count(ws, Document) == 0
    _assert_every_document_has_its_file(ws)


def test_a_removal_after_the_submits_rows_keeps_the_file(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order: the submit commits first, the removal checks again and keeps it."""
    doomed = submit([("old.txt", SHARED), ("own.txt", OTHER)], PROMPT, workspace=ws)
    postponed: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(
        manage, "remove_unreferenced", lambda *a, **k: postponed.append((a, k)) or 0
    )
    delete_batch(doomed.id, workspace=ws)
    kept = submit([("shared.txt", SHARED)], PROMPT, workspace=ws)

    (args, kwargs) = postponed[0]
    assert storage_gc.remove_unreferenced(*args, **kwargs) == 1

    assert ws.storage.exists(_key(SHARED)) and not ws.storage.exists(_key(OTHER))
    assert [event["keys"] for event in _removal_events(ws)] == [[_key(OTHER)]]
    assert kept.info().document_count == 1
    _assert_every_document_has_its_file(ws)


def test_a_file_stored_again_before_the_rows_is_accepted(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A removal names the key, but someone's intake stored the bytes again: no refusal."""
    doomed = submit([("old.txt", SHARED)], PROMPT, workspace=ws)

    def delete_then_store_again() -> None:
        delete_batch(doomed.id, workspace=ws)
        assert not ws.storage.exists(_key(SHARED))
        ws.storage.put(SHARED)

    _before_rows(monkeypatch, delete_then_store_again)
    batch = submit([("shared.txt", SHARED)], PROMPT, workspace=ws)

    assert batch.info().document_count == 1
    _assert_every_document_has_its_file(ws)


def test_a_shared_file_survives_a_racing_delete_and_the_submit_succeeds(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    doomed = submit([("old.txt", SHARED), ("own.txt", OTHER)], PROMPT, workspace=ws)
    keeper = submit([("keeper.txt", SHARED)], PROMPT, workspace=ws)
    deleted: list[Any] = []
    _before_rows(monkeypatch, lambda: deleted.append(delete_batch(doomed.id, workspace=ws)))

    batch = submit([("shared.txt", SHARED)], PROMPT, workspace=ws)

    assert deleted[0].files_removed == 1, "only the unshared file"
    assert ws.storage.exists(_key(SHARED)) and not ws.storage.exists(_key(OTHER))
    assert [event["keys"] for event in _removal_events(ws)] == [[_key(OTHER)]]
    with ws.db.read() as session:
        counts = dict(
            session.execute(
                select(Document.batch_id, func.count()).group_by(Document.batch_id)
            ).all()
        )
    assert counts == {keeper.id: 1, batch.id: 1}
    _assert_every_document_has_its_file(ws)


def test_submits_look_nothing_up_in_storage_unless_a_removal_names_their_files(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The common case costs no storage call in the row transaction, even after deletes."""
    looked_up = _count_storage_lookups_in_rows(monkeypatch, ws)
    first = submit([("shared.txt", SHARED), ("other.txt", OTHER)], PROMPT, workspace=ws)
    assert delete_batch(first.id, workspace=ws).files_removed == 2
    # The removal finished before this submit started: its intake stores the bytes again.
    second = submit([("shared.txt", SHARED)], PROMPT, workspace=ws)
    unrelated = submit([("x.txt", b"Invoice number: X\n")], PROMPT, workspace=ws)

    def remove_other() -> None:
        delete_batch(unrelated.id, workspace=ws)

    _before_rows(monkeypatch, remove_other)
    third = submit([("other.txt", OTHER)], PROMPT, workspace=ws)

    assert looked_up == [], "a removal of other bytes costs no lookup either"
    assert second.info().document_count == third.info().document_count == 1
    _assert_every_document_has_its_file(ws)


def test_removals_exclude_submits_but_submits_do_not_exclude_each_other(
    postgres_workspace: Workspace,
) -> None:
    """On PostgreSQL a submit's row transaction holds the lock shared, a removal exclusively."""
    ws = postgres_workspace
    try_lock = "SELECT pg_try_advisory_xact_lock{}(:key)"
    with ws.db.begin() as submitting:
        storage_gc.lock_for_new_references(submitting)
        with ws.db.begin() as other:
            assert other.scalar(text(try_lock.format("_shared")), {"key": storage_gc.LOCK_KEY})
        with ws.db.begin() as removing:
            assert not removing.scalar(text(try_lock.format("")), {"key": storage_gc.LOCK_KEY})
    with ws.db.begin() as removing:
        assert removing.scalar(text(try_lock.format("")), {"key": storage_gc.LOCK_KEY})
