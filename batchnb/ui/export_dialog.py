"""The manager's export dialog: choose format and mode, follow the export, download the file.

An export goes through :func:`batchnb.export`: on the ``exports`` queue when a worker is
alive (the dialog then follows the export's row until it is final), otherwise written in the
kernel off its event loop (the dialog follows the writer's progress). The finished file is
offered for download and sent over the widget's comm (:mod:`batchnb.ui.download`), which
works in Voila too. The dialog's state is the table's ``dialog`` traitlet, ``kind="export"``:

``stage``: ``ask`` (choose), ``running``, ``ready`` (the file can be downloaded) or ``failed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import batchnb
from batchnb.formats import FORMATS, MODES
from batchnb.services.exports import ExportHandle
from batchnb.services.health import live_workers
from batchnb.services.workspace import Workspace
from batchnb.ui.background import in_background
from batchnb.ui.batch_table import BatchTable
from batchnb.ui.confirm import plural, read_facts
from batchnb.ui.download import send_file

log = logging.getLogger(__name__)

FORMAT_LABELS = {
    "csv": "CSV",
    "json": "JSON",
    "jsonl": "JSON Lines",
    "xlsx": "Excel (.xlsx)",
    "parquet": "Parquet",
}
MODE_LABELS = {
    "normal": "Normal: one row per document",
    "multi-row": "Multi-row: one row per line item",
    "sheets": "Sheets: one sheet per table (Excel)",
}
POLL_SECONDS = 0.4
"""How often a running export's row is read while the dialog follows it."""

FINAL = ("completed", "failed", "cancelled", "expired")


def _size_text(size: int) -> str:
    for unit, scale in (("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


class ExportDialog:
    """Drives the ``export`` dialog of one :class:`BatchTable`; holds no database session."""

    def __init__(self, table: BatchTable, workspace: Workspace) -> None:
        self.table = table
        self.workspace = workspace
        self.handle: ExportHandle | None = None
        self.batch_ids: tuple[int, ...] = ()
        self._progress: tuple[int, int] = (0, 0)
        self._task: asyncio.Task[None] | None = None

    # -- the dialog's state -----------------------------------------------------------------

    def _update(self, **changes: Any) -> None:
        if self.table.dialog.get("kind") == "export":
            self.table.dialog = {**self.table.dialog, **changes}

    def open(self, batch_ids: Sequence[int]) -> None:
        """Open the dialog for ``batch_ids``: what would be exported, and the choices."""
        self.close()
        self.batch_ids = tuple(batch_ids)
        facts = read_facts(self.batch_ids, self.workspace)
        with_results = sum(f.counts.get("completed", 0) for f in facts)
        left_out = sum(f.documents for f in facts) - with_results
        text = f"Export {plural(with_results, 'document')} with results from " + plural(
            len(facts), "batch"
        )
        if left_out:
            text += f" ({plural(left_out, 'document')} failed, cancelled or waiting left out)"
        text += "."
        self.table.dialog = {
            "kind": "export",
            "stage": "ask",
            "title": f"Export {plural(len(facts), 'batch')}",
            "text": text,
            "can_confirm": with_results > 0,
            "choices": {
                "format": [[f, FORMAT_LABELS.get(f, f)] for f in FORMATS],
                "mode": [[m, MODE_LABELS.get(m, m)] for m in MODES],
            },
            "values": {"format": "csv", "mode": "normal"},
            "progress": {"done": 0, "total": with_results},
        }

    def close(self) -> None:
        """Stop following an export (it goes on without the dialog) and close the dialog."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.table.dialog.get("kind") == "export":
            self.table.dialog = {}

    # -- running ----------------------------------------------------------------------------

    def start(self, choices: Mapping[str, Any]) -> None:
        """Start the export with the chosen ``format`` and ``mode``."""
        fmt = str(choices.get("format") or "csv")
        mode = str(choices.get("mode") or "normal")
        background = bool(live_workers(self.workspace))
        where = "on the exports queue" if background else "in this kernel"
        self._progress = (0, int(self.table.dialog.get("progress", {}).get("total", 0)))
        self._update(
            stage="running",
            values={"format": fmt, "mode": mode},
            status=f"Writing {FORMAT_LABELS.get(fmt, fmt)} {where}…",
            error="",
        )

        def work() -> ExportHandle:
            return batchnb.export(
                list(self.batch_ids),
                format=fmt,
                mode=mode,  # type: ignore[arg-type]  # checked by export()
                background=background,
                workspace=self.workspace,
                on_progress=self._record,
            )

        in_background(work, self._started, self._failed)

    def _record(self, done: int, total: int) -> None:
        # Called on the writer's thread: only remembered here, shown by the poll on the loop.
        self._progress = (done, total)

    def _started(self, handle: ExportHandle) -> None:
        self.handle = handle
        self.refresh()
        if self.table.dialog.get("stage") == "running":
            self._follow()

    def _failed(self, error: Exception) -> None:
        self._update(stage="failed", error=str(error), status="")

    def _follow(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a script, a test): refresh() shows the state when called
        self._task = loop.create_task(self._poll())

    async def _poll(self) -> None:
        while self.table.dialog.get("stage") == "running" and self.handle is not None:
            await asyncio.sleep(POLL_SECONDS)
            handle = self.handle
            try:
                row = await asyncio.to_thread(handle.info)
            except Exception as exc:  # the database is away: say so, keep following
                self._update(status=f"progress unavailable: {exc}")
                continue
            self._apply(row)

    def refresh(self) -> None:
        """Read the export's row now and show its progress (or its file, once written)."""
        if self.handle is not None:
            self._apply(self.handle.info())

    def _apply(self, row: Any) -> None:
        done = max(row.documents_done or 0, self._progress[0])
        total = max(row.documents_total or 0, done)
        self._update(progress={"done": done, "total": total}, export_id=row.id)
        if row.status == "completed" and row.location:
            path = Path(row.location)
            size = row.size_bytes or (path.stat().st_size if path.exists() else 0)
            self._update(
                stage="ready",
                status=f"{path.name} is ready: {plural(row.row_count or 0, 'row')}, "
                f"{_size_text(size)}.",
                file={"name": path.name, "size": size},
            )
        elif row.status in FINAL:
            self._update(stage="failed", error=f"export {row.id} {row.status}: {row.error}")
        else:
            self._update(status=f"Writing… {done} of {total} documents ({row.status}).")

    # -- the file ---------------------------------------------------------------------------

    def download(self) -> int:
        """Send the finished file to the browser; returns the bytes sent (0: nothing ready)."""
        path = self.handle.path if self.handle is not None else None
        if path is None or not path.is_file():
            self._update(error="the file is not there (expired or removed); export again")
            return 0
        sent = send_file(self.table, path)
        self._update(status=f"Sent {path.name} ({_size_text(sent)}) to the browser.")
        return sent
