"""IPython magics: ``%load_ext batchnb``, then ``%batchnb ...`` and ``%%extract PROMPT``.

``%batchnb`` answers with the same objects as the Python API (a :class:`~batchnb.Batch`, a
:class:`~batchnb.BatchPage`, a :class:`~batchnb.HealthReport`, a worker), so a notebook shows
their HTML cards and a terminal their text. ``%%extract`` is a quick one-off extraction in the
kernel, through :func:`batchnb.preview_extraction`: nothing is queued or stored.

Subcommands of ``%batchnb``::

    %batchnb status [BATCH]        a batch (default: the newest) with its counts
    %batchnb list [--status S] [--search TEXT] [--limit N]
    %batchnb worker start [--threads N]     a worker inside this kernel
    %batchnb worker stop
    %batchnb health                consumers, queue depth, failure rate
    %batchnb help                  the how-to panel of the magics
"""

from __future__ import annotations

import argparse
import glob
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from batchnb.errors import BatchnbError, DocumentError
from batchnb.formats.rows import field_columns, flattener
from batchnb.services.batches import Batch, get_batch, latest_batch
from batchnb.services.health import HealthReport, check_health
from batchnb.services.listing import BatchPage, list_batches
from batchnb.services.preview import preview_extraction
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace, default_workspace
from batchnb.ui.help import HelpPanel

if TYPE_CHECKING:
    from batchnb.queue.worker import Worker

__all__ = ["BatchnbMagics", "extract_frame", "load_ipython_extension", "unload_ipython_extension"]

USAGE = (
    "usage: %batchnb status [BATCH] | list [--status S] [--search TEXT] [--limit N] | "
    "worker start [--threads N] | worker stop | health | help"
)
TEXT_NAME = "cell.txt"
"""The file name text written in an ``%%extract`` cell is extracted under."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises a :class:`UsageError` instead of exiting the kernel."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{message}\n{USAGE}")


def _list_parser() -> _Parser:
    parser = _Parser(prog="%batchnb list", add_help=False)
    parser.add_argument("--status", action="append")
    parser.add_argument("--search")
    parser.add_argument("--limit", type=int, default=20)
    return parser


def _files_of(lines: list[str], folder: Path) -> list[Path] | None:
    """The files the lines name (paths or globs under ``folder``), or ``None`` when a line
    names no file: the cell is then text to extract."""
    found: list[Path] = []
    for line in lines:
        pattern = str(Path(line).expanduser())
        if not Path(pattern).is_absolute():
            pattern = str(folder / pattern)
        matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        if not matches:
            return None
        found.extend(match for match in matches if match not in found)
    return found


def extract_frame(
    prompt: str,
    cell: str,
    *,
    extractor: str = "offline",
    workspace: Workspace | None = None,
    folder: Path | None = None,
) -> pd.DataFrame:
    """What ``%%extract`` returns: one row per file (or one for the cell's text).

    The cell holds file paths or globs, one per line (relative to ``folder``, default the
    working folder); when a line names no file, the whole cell is extracted as a text
    document. Columns: ``file_name``, then the prompt's fields as ``batch.results()`` has
    them (money as an amount and a ``_currency`` column, dates as dates, arrays as lists),
    and ``error`` when a file could not be read (the other files still are).
    """
    if not prompt.strip():
        raise UsageError("%%extract needs a prompt: %%extract invoice number, date, total")
    lines = [line.strip() for line in cell.splitlines() if line.strip()]
    if not lines:
        raise UsageError("%%extract needs file paths (one per line) or text in the cell")
    files = _files_of(lines, folder or Path.cwd())
    sources: list[Any] = files if files is not None else [(TEXT_NAME, cell.encode("utf-8"))]
    rows: list[dict[str, Any]] = []
    names: list[str] = []
    for source in sources:
        file_name = source.name if isinstance(source, Path) else TEXT_NAME
        try:
            preview = preview_extraction(
                source, prompt=prompt, extractor=extractor, workspace=workspace
            )
        except DocumentError as error:
            rows.append({"file_name": file_name, "error": str(error)})
            continue
        specs = [field.to_dict() for field in preview.schema.fields]
        names = names or [column.name for spec in specs for column in field_columns(spec)]
        row: dict[str, Any] = {"file_name": preview.file_name}
        for spec in specs:
            flattener(spec)(preview.values, row)
        rows.append(row)
    columns = ["file_name", *names] + (["error"] if any("error" in row for row in rows) else [])
    return pd.DataFrame(rows, columns=columns)


@magics_class
class BatchnbMagics(Magics):
    """``%batchnb`` and ``%%extract``; ``workspace`` default: :func:`batchnb.default_workspace`."""

    def __init__(self, shell: Any = None, workspace: Workspace | None = None) -> None:
        super().__init__(shell)
        self._workspace = workspace
        self._worker: Worker | None = None

    @property
    def workspace(self) -> Workspace:
        """The workspace the magics act on."""
        return self._workspace or default_workspace()

    @line_magic
    def batchnb(self, line: str) -> Any:
        """Status, list, worker start/stop, health: ``%batchnb help`` for the how-to."""
        words = shlex.split(line)
        command, rest = (words[0], words[1:]) if words else ("status", [])
        try:
            if command == "status":
                return self._status(rest)
            if command == "list":
                return self._list(rest)
            if command == "worker":
                return self._worker_command(rest)
            if command == "health":
                return self._health(rest)
            if command == "help":
                return HelpPanel("magics", expanded=True)
        except BatchnbError as error:
            raise UsageError(str(error)) from error
        raise UsageError(f"unknown subcommand {command!r}\n{USAGE}")

    @cell_magic
    def extract(self, line: str, cell: str) -> pd.DataFrame:
        """``%%extract [--extractor NAME] PROMPT``: extract the files (or text) in the cell."""
        words = shlex.split(line)
        extractor = "offline"
        if words[:1] == ["--extractor"]:
            if len(words) < 2:
                raise UsageError("--extractor needs a name: %%extract --extractor offline PROMPT")
            extractor, words = words[1], words[2:]
        try:
            return extract_frame(
                " ".join(words), cell, extractor=extractor, workspace=self.workspace
            )
        except BatchnbError as error:
            raise UsageError(str(error)) from error

    # -- subcommands --------------------------------------------------------------------------

    def _status(self, rest: list[str]) -> Batch:
        if len(rest) > 1 or (rest and not rest[0].isdigit()):
            raise UsageError(f"%batchnb status takes one batch number at most\n{USAGE}")
        if rest:
            return get_batch(int(rest[0]), self.workspace)
        batch = latest_batch(self.workspace)
        if batch is None:
            raise UsageError("there are no batches yet: submit one with batchnb.submit(...)")
        return batch

    def _list(self, rest: list[str]) -> BatchPage:
        options = _list_parser().parse_args(rest)
        if not 1 <= options.limit <= 1000:
            raise UsageError("--limit is a number of batches from 1 to 1000")
        return list_batches(
            workspace=self.workspace,
            status=options.status,
            search=options.search,
            page_size=options.limit,
        )

    def _worker_command(self, rest: list[str]) -> Worker | str:
        action = rest[0] if rest else ""
        if action == "start":
            parser = _Parser(prog="%batchnb worker start", add_help=False)
            parser.add_argument("--threads", type=int)
            options = parser.parse_args(rest[1:])
            self._worker = start_worker(self.workspace, threads=options.threads)
            return self._worker
        if action == "stop" and len(rest) == 1:
            if self._worker is None or not self._worker.running:
                return "no worker runs in this kernel (%batchnb worker start starts one)"
            worker, self._worker = self._worker, None
            worker.stop()
            return f"worker {worker.id} stopped"
        raise UsageError(f"%batchnb worker takes start or stop\n{USAGE}")

    def _health(self, rest: list[str]) -> HealthReport:
        if rest:
            raise UsageError(f"%batchnb health takes no arguments\n{USAGE}")
        return check_health(self.workspace)

    def stop_worker(self) -> None:
        """Stop the worker ``%batchnb worker start`` started, if it runs."""
        if self._worker is not None and self._worker.running:
            self._worker.stop()
        self._worker = None


_registered: dict[int, BatchnbMagics] = {}


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics in ``ipython`` (what ``%load_ext batchnb`` calls)."""
    magics = BatchnbMagics(ipython)
    ipython.register_magics(magics)
    _registered[id(ipython)] = magics


def unload_ipython_extension(ipython: Any) -> None:
    """Stop a worker the magics started and remove them (``%unload_ext batchnb``)."""
    magics = _registered.pop(id(ipython), None)
    if magics is None:
        return
    magics.stop_worker()
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("batchnb" if kind == "line" else "extract", None)
