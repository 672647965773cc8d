"""The document job on a real worker: extractors come from the workspace, are built once per
worker and closed when it stops, and a set-up error fails a document at once, with its kind and
where it happened."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import select

from batchnb.db.models import Document, ExtractionJob, QueueItem
from batchnb.services.submit import submit
from batchnb.services.workers import make_worker, start_worker
from batchnb.services.workspace import Workspace, open_workspace
from tests.conftest import SAMPLES
from tests.extract.llm.chat_server import KEY, MODEL, serving

PROMPT = "invoice number, date, total"
PLUGIN = '''
import threading
from batchnb.extract import OfflineExtractor

BUILT = []
CLOSED = []
_lock = threading.Lock()


class CountingExtractor(OfflineExtractor):
    """The offline extractor, counting how often it is built and closed."""

    name = "counting"

    def __init__(self, settings):
        super().__init__()
        with _lock:
            BUILT.append(settings.options_for("counting").get("tag"))

    def close(self):
        CLOSED.append(True)


def register(register_extractor):
    register_extractor("counting", CountingExtractor)
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """A plugin module of the user's, importable, named only in the settings that use it."""
    name = f"batchnb_counting_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(name)
    yield module
    sys.modules.pop(name, None)


def _open(tmp_path: Path, **settings: object) -> Workspace:
    settings.setdefault("heartbeat_seconds", 0.5)
    return open_workspace(home=str(tmp_path / "home"), **settings)


def test_the_workspace_chooses_the_server_not_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process environment points at a server that is not there; the workspace at a real one.
    monkeypatch.setenv("BATCHNB_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("BATCHNB_OPENAI_API_KEY", KEY)
    with serving() as chat:
        workspace = _open(tmp_path, openai_base_url=chat.url, openai_model=MODEL)
        worker = start_worker(workspace)
        try:
            batch = submit(
                [SAMPLES / "maplewood-print-invoice.txt"],
                PROMPT,
                extractor="openai",
                workspace=workspace,
            )
            progress = batch.wait(timeout=60)
        finally:
            worker.stop()
            workspace.close()
    assert (progress.completed, progress.failed) == (1, 0)
    assert len(chat.requests) == 1
    assert chat.requests[0]["body"]["model"] == MODEL
    assert batch.results().loc[0, "invoice_number"] == "INV-0042"  # the local server's answer


def test_a_worker_builds_each_extractor_once_and_closes_it_when_it_stops(
    tmp_path: Path, plugin: ModuleType
) -> None:
    workspace = _open(
        tmp_path,
        plugins=[plugin.__name__],
        extractor_options={"counting": {"tag": "from the workspace"}},
    )
    try:
        batch = submit([SAMPLES], PROMPT, extractor="counting", workspace=workspace)
        assert plugin.BUILT == []  # submitting checks the name without building it
        worker = start_worker(workspace, threads=2)
        progress = batch.wait(timeout=60)
        assert progress.completed == 7
        assert plugin.BUILT == ["from the workspace"]  # once, with the workspace's options
        assert plugin.CLOSED == []
        worker.stop()
        assert plugin.CLOSED == [True]
    finally:
        workspace.close()


def test_an_unknown_extractor_fails_at_once_with_its_kind_and_traceback(
    tmp_path: Path, plugin: ModuleType
) -> None:
    # Submitted where the plugin is configured; processed by a worker whose settings lack it.
    submitter = _open(tmp_path, plugins=[plugin.__name__])
    batch = submit(
        [SAMPLES / "maplewood-print-invoice.txt"], PROMPT, extractor="counting", workspace=submitter
    )
    submitter.close()
    workspace = _open(tmp_path)
    worker = start_worker(workspace)
    try:
        progress = batch.wait(timeout=30)
    finally:
        worker.stop()
    try:
        assert (progress.completed, progress.failed) == (0, 1)
        with workspace.db.read() as session:
            document = session.scalars(select(Document)).one()
            job = session.scalars(select(ExtractionJob)).one()
            item = session.scalars(select(QueueItem)).one()
        assert item.attempts == 1, "a set-up error is not retried"
        assert document.error_kind == job.error_kind == "unknown_extractor"
        assert document.error is not None and "unknown extractor 'counting'" in document.error
        assert "offline" in document.error  # the message lists what is known
        assert job.error_traceback is not None
        assert "UnknownExtractorError" in job.error_traceback
        failures = batch.failures()
        assert failures.loc[0, "error_kind"] == "unknown_extractor"
        assert "UnknownExtractorError" in failures.loc[0, "traceback"]
    finally:
        workspace.close()


def test_the_worker_logs_one_line_per_document(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    workspace = _open(tmp_path)
    caplog.set_level(logging.INFO, logger="batchnb.jobs")
    worker = start_worker(workspace)
    try:
        batch = submit(
            [SAMPLES / "maplewood-print-invoice.txt", ("broken.pdf", b"%PDF-1.7 nothing more")],
            PROMPT,
            workspace=workspace,
        )
        batch.wait(timeout=60)
    finally:
        worker.stop()
        workspace.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "batchnb.jobs.documents"]
    assert len(lines) == 2, lines
    done = next(line for line in lines if "maplewood" in line)
    assert done.startswith(f"batch {batch.id}: maplewood-print-invoice.txt completed in ")
    failed = next(line for line in lines if "broken.pdf" in line)
    assert failed.startswith(f"batch {batch.id}: broken.pdf failed (corrupt): not a readable PDF")


def test_hueys_own_lines_show_only_at_debug_verbosity() -> None:
    from click.testing import CliRunner

    from batchnb.cli import main

    CliRunner().invoke(main, ["-v", "extractors"])
    assert logging.getLogger("huey").level == logging.WARNING
    CliRunner().invoke(main, ["-vv", "extractors"])
    assert logging.getLogger("huey").level == logging.DEBUG


def test_a_busy_worker_logs_a_periodic_summary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    workspace = _open(tmp_path, heartbeat_seconds=0.1)
    caplog.set_level(logging.INFO, logger="batchnb.queue.worker")
    worker = make_worker(workspace, in_process=True)
    worker.summary_seconds = 0.3
    worker.start()
    try:
        batch = submit(
            [SAMPLES / "maplewood-print-invoice.txt", ("broken.pdf", b"%PDF-1.7 nothing more")],
            PROMPT,
            workspace=workspace,
        )
        batch.wait(timeout=60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _summaries(caplog):
            time.sleep(0.1)
        time.sleep(1)  # more summary periods pass: idle with nothing waiting, it stays quiet
    finally:
        worker.stop()
        workspace.close()
    summaries = _summaries(caplog)
    assert len(summaries) == 1, summaries
    assert summaries[0].startswith(f"worker {worker.id}, last ")
    assert summaries[0].endswith(
        "s: 1 completed, 1 failed, 0 cancelled, 0 retried, 0 released; queue: 0 waiting, 0 running"
    )


def _summaries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if ", last " in r.getMessage()]
