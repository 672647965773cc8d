"""Exports as the user asks for them: ``batchnb.export(...)``, ``batch.to_dataframe()``.

:func:`export` checks the request (format, mode, array field, ownership), records it as an
``exports`` row and writes the file: inline for small selections, on the ``exports`` queue for
large ones when a worker is running (see ``BATCHNB_EXPORT_BACKGROUND_DOCUMENTS``). Without a path
the file goes to the workspace's ``exports/`` folder under a safe generated name and is removed
by the cleanup task once it expires; a path the user names is theirs and is kept.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import insert, select, update

from batchnb.db.models import Export, utcnow
from batchnb.db.statuses import ExportStatus
from batchnb.errors import ExportError, NotFoundError
from batchnb.formats import FORMATS, Mode, build_layout, writer_for
from batchnb.jobs.export_records import (
    Selection,
    combined_schema,
    count_documents,
    selected_batch_ids,
)
from batchnb.jobs.exports import WriteExport, mark_failed, mark_finished, mark_started, run_export
from batchnb.queue import items
from batchnb.services import display
from batchnb.services.access import authorize, authorize_owner
from batchnb.services.audit import record_event
from batchnb.services.health import live_workers
from batchnb.services.waiting import wait_until
from batchnb.services.workspace import Workspace, acting

SUFFIXES = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".parquet": "parquet",
    ".pq": "parquet",
}
FINAL_STATUSES = (
    ExportStatus.COMPLETED,
    ExportStatus.FAILED,
    ExportStatus.CANCELLED,
    ExportStatus.EXPIRED,
)
_MAX_STEM = 80

SelectionInput = int | Selection | Sequence[int] | Any
"""A batch id, a :class:`Selection`, a list of batch ids, or a ``Batch`` handle."""


@dataclass(repr=False)
class ExportHandle:
    """A handle on one export: its row, progress, waiting. Holds no database session.

    Its repr reads the export's row: ``ExportHandle(id=2, format='csv', mode='normal',
    status='completed', 7/7 documents written, path='out.csv')``; in Jupyter it shows as a card.
    """

    id: int
    workspace: Workspace

    @staticmethod
    def _counted(row: Export) -> tuple[int, int]:
        """(documents written, documents to write) of an export's row."""
        return row.documents_done, max(row.documents_total or 0, row.documents_done)

    @staticmethod
    def _documents_text(row: Export) -> str:
        done, total = ExportHandle._counted(row)
        return f"{done}/{total} documents written"

    def __repr__(self) -> str:
        def build() -> str:
            row = self.info()
            return (
                f"ExportHandle(id={self.id}, format={row.format!r}, mode={row.mode!r}, "
                f"status={row.status!r}, {self._documents_text(row)}, path={row.location!r})"
            )

        return display.describe_or_fallback("ExportHandle", self.id, build)

    def _repr_html_(self) -> str | None:
        def build() -> display.Html:
            row = self.info()
            done, total = self._counted(row)
            counts = {"completed": done, "pending": total - done}
            facts: list[tuple[str, object]] = [
                ("format", f"{row.format}, {row.mode}"),
                ("documents", display.join(display.status_bar(counts), self._documents_text(row))),
                ("path", row.location),
                ("created", row.created_at),
            ]
            if row.expires_at is not None:
                facts.append(("expires", row.expires_at))
            if row.error:
                facts.append(("error", row.error))
            return display.card(f"Export {self.id}", facts, status=row.status)

        return display.html_or_none(build)

    def info(self) -> Export:
        """The export's row (a detached snapshot)."""
        with self.workspace.db.read() as session:
            row = session.get(Export, self.id)
            if row is None:
                raise NotFoundError(f"export {self.id} does not exist")
            return row

    @property
    def status(self) -> str:
        return self.info().status

    @property
    def path(self) -> Path | None:
        """The written file, once the export has completed (and until it expires)."""
        row = self.info()
        if row.status != ExportStatus.COMPLETED or row.location is None:
            return None
        return Path(row.location)

    def wait(
        self,
        timeout: float | None = None,
        poll_seconds: float = 0.25,
        on_progress: Callable[[Export], None] | None = None,
        *,
        progress: bool | None = None,
    ) -> Path:
        """Block until the file is written and return its path.

        ``progress`` shows a bar of the documents written, as in :meth:`Batch.wait`: ``True``
        always, ``False`` never, ``None`` in an interactive session while the export runs and
        no ``on_progress`` is given. A :class:`~batchnb.services.waiting.NoWorkerWarning`
        says so when no worker is alive to write a background export after a few seconds.

        Raises
        ------
        ExportError
            The export failed or was cancelled (the message says why).
        TimeoutError
            Still running after ``timeout`` seconds.
        """
        row = wait_until(
            self.info,
            lambda row: row.status in FINAL_STATUSES,
            timeout=timeout,
            poll_seconds=poll_seconds,
            subject=f"export {self.id}",
            describe=lambda row: f"{row.status}, {self._documents_text(row)}",
            count=self._counted,
            workspace=self.workspace,
            on_progress=on_progress,
            progress=progress,
        )
        if row.status != ExportStatus.COMPLETED or row.location is None:
            raise ExportError(f"export {self.id} {row.status}: {row.error or 'no file'}")
        return Path(row.location)


def to_selection(value: SelectionInput) -> Selection:
    """A :class:`Selection` from a batch id, a list of batch ids, a ``Batch`` or a Selection."""
    if isinstance(value, Selection):
        return value
    if isinstance(value, bool):
        raise ExportError(f"cannot export {value!r}: give a batch id or a Selection")
    if isinstance(value, int):
        return Selection(batch_ids=(value,))
    batch_id = getattr(value, "id", None)
    if isinstance(batch_id, int) and hasattr(value, "workspace"):
        return Selection(batch_ids=(batch_id,))
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        ids = list(value)
        if all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            return Selection(batch_ids=tuple(ids))
    raise ExportError(
        f"cannot export {value!r}: give a batch id, a list of batch ids, a Batch, or "
        "Selection(batch_ids=..., document_ids=...)"
    )


def with_originals(selection: Selection, originals: bool) -> Selection:
    """``selection`` reading the values as extracted when ``originals`` (or it already does)."""
    if originals and not selection.originals:
        return dataclasses.replace(selection, originals=True)
    return selection


def resolve_format(fmt: str | None, path: Path | None) -> str:
    """The format asked for, or the one ``path``'s suffix names; the two must agree."""
    from_suffix = SUFFIXES.get(path.suffix.lower()) if path is not None else None
    if fmt is None:
        if from_suffix is None:
            raise ExportError(
                f"say which format to write (format=, one of {', '.join(FORMATS)}); "
                + (f"{path.name!r} has no known suffix" if path is not None else "no path given")
            )
        return from_suffix
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if path is not None and path.suffix and from_suffix != fmt:
        raise ExportError(f"{path.name!r} does not look like a {fmt} file; name it *.{fmt}")
    return fmt


def safe_file_name(stem: str, export_id: int, fmt: str) -> str:
    """A file name any file system and shell takes: ASCII letters, digits, ``.-_`` only.

    Batch names are free text ("../../etc", "Rechnungen März", "a/b"): they are folded to
    ASCII, every other character becomes ``-``, leading dots go, and the export id keeps
    the name unique.
    """
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_stem)
    clean = re.sub(r"-{2,}", "-", clean).strip(".-_")[:_MAX_STEM].strip(".-_")
    return f"{clean or 'export'}-{export_id}.{fmt}"


def export(
    selection: SelectionInput,
    format: str | None = None,
    mode: Mode = "normal",
    path: str | Path | None = None,
    *,
    array_field: str | None = None,
    include_failed: bool = False,
    include_confidence: bool = False,
    originals: bool = False,
    background: bool | None = None,
    workspace: Workspace | None = None,
    actor: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ExportHandle:
    """Export the results of a selection of documents to a file.

    Parameters
    ----------
    selection:
        A batch id, a list of batch ids, a ``Batch``, or ``Selection(batch_ids, document_ids)``.
        Documents with a result are exported, failed and cancelled ones with
        ``include_failed``; documents still waiting or running are left out.
    format:
        ``json``, ``jsonl``, ``csv``, ``xlsx`` or ``parquet``; by default from ``path``'s suffix.
    mode:
        ``normal`` (one row per document), ``multi-row`` (one row per item of
        ``array_field``) or ``sheets`` (Excel only: a Documents sheet and one sheet per array).
    path:
        Where to write. Without it the file goes to the workspace's ``exports/`` folder under
        a generated name and expires after ``BATCHNB_EXPORT_RETENTION_HOURS``.
    include_confidence:
        Add each document's confidence and the evidence of every value (page, span, text).
    originals:
        Write the values as they were extracted. By default people's corrections (see
        :func:`batchnb.correct_value`) replace the values they corrected.
    background:
        Run on the ``exports`` queue (``True``), here (``False``), or decide by size (``None``:
        in the background above ``BATCHNB_EXPORT_BACKGROUND_DOCUMENTS`` documents when a
        worker is running). Call :meth:`ExportHandle.wait` for the file.
    actor:
        Who exports (default: the workspace user); they must own every batch or be an admin.
    on_progress:
        For inline exports, called with (documents written, documents in total).

    Raises
    ------
    ExportError
        Unknown format or mode, a bad ``array_field``, nothing selected, or (inline) the write
        failed: the ``exports`` row records the error and no partial file is left.
    PermissionDeniedError
        ``actor`` does not own a selected batch.
    """
    workspace, actor = acting(workspace, actor)
    chosen = with_originals(to_selection(selection), originals)
    target = Path(path).expanduser().resolve() if path is not None else None
    fmt = resolve_format(format, target)
    writer_for(fmt, mode)
    with workspace.db.connect() as connection:
        batch_ids = selected_batch_ids(connection, chosen)
    authorize(workspace, actor, "export", batch_ids)
    with workspace.db.connect() as connection:
        schema = combined_schema(connection, chosen)
        total = count_documents(connection, chosen, include_failed)
    build_layout(schema, mode, array_field, include_confidence)  # checks the options
    if background is None:
        background = total > workspace.settings.export_background_documents and bool(
            live_workers(workspace)
        )
    export_id = _create_row(
        workspace,
        actor,
        chosen,
        batch_ids,
        fmt,
        mode,
        target,
        total,
        background,
        {
            "array_field": array_field,
            "include_failed": include_failed,
            "include_confidence": include_confidence,
            "originals": chosen.originals,
        },
    )
    handle = ExportHandle(export_id, workspace)
    if not background:
        _run_inline(workspace, export_id, total, schema, on_progress)
    return handle


def _create_row(
    workspace: Workspace,
    actor: str,
    selection: Selection,
    batch_ids: list[int],
    fmt: str,
    mode: str,
    target: Path | None,
    total: int,
    background: bool,
    options: dict[str, Any],
) -> int:
    """Insert the ``exports`` row (and its queue item when it runs in the background)."""
    now = utcnow()
    with workspace.db.begin() as connection:
        export_id = connection.execute(
            insert(Export).returning(Export.id),
            {
                "owner": actor,
                "batch_id": batch_ids[0] if len(batch_ids) == 1 else None,
                "selection": selection.as_dict(),
                "format": fmt,
                "mode": mode,
                "status": ExportStatus.PENDING,
                "options": options,
                "documents_total": total,
                "documents_done": 0,
                "managed": target is None,
                "created_at": now,
                "updated_at": now,
            },
        ).scalar_one()
        location = target or workspace.settings.exports_dir / safe_file_name(
            _default_stem(batch_ids), export_id, fmt
        )
        connection.execute(
            update(Export).where(Export.id == export_id).values(location=str(location))
        )
        messages = (
            items.enqueue(connection, [WriteExport(export_id)], owner=actor, now=now)
            if background
            else []
        )
        record_event(
            connection,
            actor,
            "export",
            "export",
            export_id,
            {
                **selection.as_dict(),
                "format": fmt,
                "mode": mode,
                "documents": total,
                "background": background,
                **options,
            },
        )
    if messages:
        workspace.runtime.dispatch(messages)
    return int(export_id)


def _default_stem(batch_ids: list[int]) -> str:
    return f"batch-{batch_ids[0]}" if len(batch_ids) == 1 else f"batches-{len(batch_ids)}"


def _run_inline(
    workspace: Workspace,
    export_id: int,
    total: int,
    schema: Mapping[str, Any],
    on_progress: Callable[[int, int], None] | None,
) -> None:
    with workspace.db.begin() as connection:
        mark_started(connection, export_id)

    def report(done: int) -> None:
        if on_progress is not None:
            on_progress(done, total)

    try:
        outcome = run_export(workspace.db, export_id, report, schema)
    except BaseException as exc:
        # Interrupted (Ctrl-C in a notebook) counts too: the row must not stay "processing".
        with workspace.db.begin() as connection:
            mark_failed(connection, export_id, f"{type(exc).__name__}: {exc}")
        raise
    retention = timedelta(hours=workspace.settings.export_retention_hours)
    with workspace.db.begin() as connection:
        mark_finished(connection, export_id, outcome, retention)
    report(outcome.documents)


def cancel_export(
    export_id: int, *, workspace: Workspace | None = None, actor: str | None = None
) -> bool:
    """Stop an export that is waiting or being written; returns whether there was one to stop.

    A waiting export never starts; one being written stops at its next page and leaves no
    file. Only its owner (or an admin) may cancel it.
    """
    workspace, actor = acting(workspace, actor)
    with workspace.db.connect() as connection:
        owner = connection.scalar(select(Export.owner).where(Export.id == export_id))
    if owner is None:
        raise NotFoundError(f"export {export_id} does not exist")
    authorize_owner(workspace, actor, "cancel", "export", export_id, owner)
    now = utcnow()
    with workspace.db.begin() as connection:
        status = connection.scalar(select(Export.status).where(Export.id == export_id))
        if status is None or status in FINAL_STATUSES:
            return False
        item_ids = items.cancel_payload(connection, WriteExport(export_id), now)
        connection.execute(
            update(Export)
            .where(Export.id == export_id)
            .values(status=ExportStatus.CANCELLED, updated_at=now)
        )
        record_event(connection, actor, "cancel", "export", export_id, {"items": item_ids})
    return True


def list_exports(
    *, workspace: Workspace | None = None, actor: str | None = None, limit: int = 50
) -> pd.DataFrame:
    """The newest exports of ``actor`` (default: the workspace user), newest first."""
    workspace, actor = acting(workspace, actor)
    columns = [
        Export.id,
        Export.status,
        Export.format,
        Export.mode,
        Export.documents_done,
        Export.documents_total,
        Export.row_count,
        Export.size_bytes,
        Export.location,
        Export.error,
        Export.created_at,
        Export.expires_at,
    ]
    with workspace.db.connect() as connection:
        rows = connection.execute(
            select(*columns).where(Export.owner == actor).order_by(Export.id.desc()).limit(limit)
        ).all()
    return pd.DataFrame([row._asdict() for row in rows], columns=[c.key for c in columns])
