"""One scheduled run over a folder: submit what is new, wait, export, summarise, and fail loudly
when too many documents failed.

``notebooks/scheduled_run.ipynb`` is this function with papermill parameters; ``batchnb
schedule`` runs that notebook on a timetable. Files already processed (the same bytes, by the
same owner, in any batch) are left out, so an hourly run over a growing inbox does each file
once.
"""

from __future__ import annotations

import html
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO, cast, get_args

from batchnb.db.models import utcnow
from batchnb.errors import BatchnbError, ConfigurationError, NothingNewError
from batchnb.extract.schema_input import SchemaInput
from batchnb.formats import FORMATS, Mode
from batchnb.services import display
from batchnb.services.batches import Batch, Progress
from batchnb.services.exports import export
from batchnb.services.health import live_workers
from batchnb.services.submit import submit
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace, acting

SUMMARY_JSON = "summary.json"
SUMMARY_HTML = "summary.html"
PROGRESS_SECONDS = 5.0
"""At most one progress line per this many seconds (papermill keeps every line)."""


class FailureRateError(BatchnbError):
    """A scheduled run's batch failed more documents than its threshold allows."""

    kind = "failure_rate"


@dataclass
class RunSummary:
    """What one scheduled run did; written as ``summary.json`` and ``summary.html``."""

    name: str
    inputs: list[str]
    output: str
    started_at: str
    finished_at: str = ""
    batch_id: int | None = None
    submitted: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    """Files left out: processed before, or refused at intake, each with its reason."""
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    failure_rate: float = 0.0
    max_failure_rate: float = 0.1
    exports: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether the failure rate is within the threshold."""
        return self.failure_rate <= self.max_failure_rate

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def to_html(self) -> str:
        """A standalone HTML page of the summary."""
        return (
            "<!doctype html><meta charset='utf-8'>"
            f"<title>{html.escape(self.name)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;"
            "text-align:left}</style>"
            f"{self._repr_html_()}"
        )

    def _repr_html_(self) -> str:
        facts = [
            ("batch", "-" if self.batch_id is None else self.batch_id),
            ("submitted", self.submitted),
            ("left out", len(self.skipped)),
            ("completed", self.completed),
            (
                "failed",
                f"{self.failed} ({self.failure_rate:.0%}, allowed {self.max_failure_rate:.0%})",
            ),
            ("exports", ", ".join(Path(path).name for path in self.exports) or "-"),
            ("started", self.started_at),
            ("finished", self.finished_at),
        ]
        verdict = "passed" if self.passed else "FAILED: too many documents failed"
        card = display.card(f"Scheduled run {self.name}: {verdict}", facts)
        rows = "".join(
            f"<tr><td>{html.escape(f['file_name'])}</td><td>{html.escape(f['error'])}</td></tr>"
            for f in self.failures
        )
        table = f"<h4>Failed documents</h4><table>{rows}</table>" if rows else ""
        return card + table


def run_scheduled(
    inputs: str | Sequence[str],
    output: str | Path,
    *,
    prompt: str | None = None,
    schema: SchemaInput | str | Path | None = None,
    strategy: str = "global",
    extractor: str = "offline",
    formats: Sequence[str] = ("csv",),
    modes: Sequence[str] = ("normal",),
    max_failure_rate: float = 0.1,
    name: str | None = None,
    timeout: float | None = None,
    workspace: Workspace | None = None,
    actor: str | None = None,
    stream: TextIO | None = None,
) -> RunSummary:
    """Submit the files of ``inputs`` not processed before, wait, export, write a summary.

    Parameters
    ----------
    inputs:
        Paths, folders or glob patterns (``"inbox/**/*.pdf"``).
    output:
        Folder for the exports (``<name>-<mode>.<format>``) and ``summary.json`` / ``.html``.
    schema:
        A schema (dict, :class:`~batchnb.extract.Schema`) or the path of a JSON schema file.
    formats, modes:
        Every format (``json``, ``jsonl``, ``csv``, ``xlsx``, ``parquet``) in every mode
        (``normal``, ``multi-row``; ``sheets`` for ``xlsx``) is written.
    max_failure_rate:
        Above this share of failed documents (0..1) the run raises :class:`FailureRateError`
        after writing its exports and summary, so papermill and cron see it fail.
    stream:
        Where progress lines go (default: standard output, which papermill keeps).

    Returns
    -------
    RunSummary
        Also when nothing was new: then ``batch_id`` is None and nothing is exported.
    """
    if not 0.0 <= max_failure_rate <= 1.0:
        raise ConfigurationError(f"max_failure_rate must be within 0..1, got {max_failure_rate}")
    for fmt in formats:
        if fmt not in FORMATS:
            raise ConfigurationError(
                f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}"
            )
    for mode in modes:
        if mode not in get_args(Mode):
            known = ", ".join(get_args(Mode))
            raise ConfigurationError(f"unknown export mode {mode!r}; use one of {known}")
    workspace, actor = acting(workspace, actor)
    stream = stream or sys.stdout
    sources = [inputs] if isinstance(inputs, str) else list(inputs)
    folder = Path(output).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    run_name = name or f"scheduled {datetime.now().strftime('%Y-%m-%d %H:%M')}"
    summary = RunSummary(
        name=run_name,
        inputs=sources,
        output=str(folder),
        started_at=utcnow().isoformat(timespec="seconds"),
        max_failure_rate=max_failure_rate,
    )
    try:
        batch = submit(
            sources,
            prompt,
            name=run_name,
            extractor=extractor,
            strategy=strategy,
            schema=_read_schema(schema),
            workspace=workspace,
            owner=actor,
            skip_processed=True,
        )
    except NothingNewError as nothing:
        print(f"{run_name}: {nothing}", file=stream)
        return _finish(summary, folder)
    summary.batch_id = batch.id
    summary.submitted = _document_count(batch)
    summary.skipped = [{"file_name": r.file_name, "reason": r.reason} for r in batch.refused]
    print(f"{run_name}: batch {batch.id}, {summary.submitted} documents", file=stream)
    # No worker alive (e.g. a run from cron): one in this process for this batch only, without
    # the periodic tasks (which would start other schedules' runs here).
    worker = None if live_workers(workspace) else start_worker(workspace, periodic=False)
    try:
        counts = batch.wait(timeout=timeout, on_progress=_progress_printer(batch, stream))
    finally:
        if worker is not None:
            worker.stop()
    _count(summary, counts, batch)
    for fmt in formats:
        for mode in modes:
            path = folder / f"{_slug(run_name)}-{mode}.{fmt}"
            handle = export(
                batch,
                fmt,
                cast(Mode, mode),
                path,
                background=False,
                workspace=workspace,
                actor=actor,
            )
            summary.exports.append(str(handle.path or path))
    _finish(summary, folder)
    print(f"{run_name}: {counts.completed} completed, {counts.failed} failed", file=stream)
    if not summary.passed:
        raise FailureRateError(
            f"batch {batch.id}: {counts.failed} of {counts.completed + counts.failed} documents "
            f"failed ({summary.failure_rate:.0%}), over the allowed {max_failure_rate:.0%}; "
            f"see {folder / SUMMARY_HTML}"
        )
    return summary


def _read_schema(schema: SchemaInput | str | Path | None) -> SchemaInput | None:
    if isinstance(schema, str | Path):
        path = Path(schema).expanduser()
        try:
            return cast(SchemaInput, json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"schema file {path}: not readable JSON ({exc})") from None
    return schema


def _document_count(batch: Batch) -> int:
    return batch.progress(cached=False).total


def _progress_printer(batch: Batch, stream: TextIO) -> Any:
    """A wait callback printing a text progress line every few seconds and at the end."""
    last = 0.0

    def show(counts: Progress) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_SECONDS and not counts.finished:
            return
        last = now
        share = counts.done / counts.total if counts.total else 1.0
        filled = int(share * 30)
        bar = "#" * filled + "-" * (30 - filled)
        print(
            f"batch {batch.id} [{bar}] {counts.done}/{counts.total} ({share:.0%}) "
            f"{display.breakdown_text(counts.as_dict())}",
            file=stream,
            flush=True,
        )

    return show


def _count(summary: RunSummary, counts: Progress, batch: Batch) -> None:
    summary.completed, summary.failed = counts.completed, counts.failed
    summary.cancelled = counts.cancelled
    ended = counts.completed + counts.failed
    summary.failure_rate = counts.failed / ended if ended else 0.0
    failures = batch.failures()
    summary.failures = [
        {"file_name": str(row.file_name), "error": str(row.error)} for row in failures.itertuples()
    ]


def _finish(summary: RunSummary, folder: Path) -> RunSummary:
    summary.finished_at = utcnow().isoformat(timespec="seconds")
    (folder / SUMMARY_JSON).write_text(
        json.dumps(summary.as_dict(), indent=2, default=str) + "\n", encoding="utf-8"
    )
    (folder / SUMMARY_HTML).write_text(summary.to_html(), encoding="utf-8")
    return summary


def _slug(name: str) -> str:
    kept = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.strip())
    return "-".join(part for part in kept.split("-") if part) or "run"
