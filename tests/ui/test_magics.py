"""``%load_ext batchnb``, ``%batchnb`` and ``%%extract`` in a real IPython shell, on a real
workspace whose queue runs tasks as they are queued."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import batchnb
from batchnb.services.batches import Batch
from batchnb.services.health import HealthReport
from batchnb.services.listing import BatchPage
from batchnb.services.workspace import Workspace, open_workspace
from batchnb.ui import HelpPanel
from batchnb.ui.magics import TEXT_NAME, BatchnbMagics
from tests.conftest import SAMPLES

PROMPT = "invoice number, total"


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    return InteractiveShell.instance()


@pytest.fixture
def immediate(tmp_path: Path) -> Iterator[Workspace]:
    workspace = open_workspace(home=str(tmp_path / "home"), queue_url="memory://")
    yield workspace
    workspace.close()


@pytest.fixture
def magics(shell: InteractiveShell, immediate: Workspace) -> Iterator[BatchnbMagics]:
    """The magics on the test's workspace, registered as ``%load_ext batchnb`` does."""
    registered = BatchnbMagics(shell, workspace=immediate)
    shell.register_magics(registered)
    yield registered
    registered.stop_worker()
    shell.magics_manager.magics["line"].pop("batchnb", None)
    shell.magics_manager.magics["cell"].pop("extract", None)


def line(shell: InteractiveShell, text: str) -> Any:
    return shell.run_line_magic("batchnb", text)


def test_load_ext_registers_and_unload_ext_removes(shell: InteractiveShell) -> None:
    shell.run_line_magic("load_ext", "batchnb")
    try:
        assert "batchnb" in shell.magics_manager.magics["line"]
        assert "extract" in shell.magics_manager.magics["cell"]
        panel = line(shell, "help")
        assert isinstance(panel, HelpPanel) and panel.topic == "magics"
    finally:
        shell.run_line_magic("unload_ext", "batchnb")
    assert "batchnb" not in shell.magics_manager.magics["line"]
    assert "extract" not in shell.magics_manager.magics["cell"]
    assert callable(batchnb.load_ipython_extension)


def test_status_shows_the_newest_or_a_numbered_batch(
    shell: InteractiveShell, magics: BatchnbMagics, immediate: Workspace
) -> None:
    with pytest.raises(UsageError, match="there are no batches yet"):
        line(shell, "status")
    first = batchnb.submit([SAMPLES / "maplewood-print-invoice.txt"], PROMPT, workspace=immediate)
    second = batchnb.submit([SAMPLES / "copperleaf-web-invoice.md"], PROMPT, workspace=immediate)
    shown = line(shell, "")
    assert isinstance(shown, Batch) and shown.id == second.id
    assert line(shell, f"status {first.id}").id == first.id
    assert "completed" in (line(shell, f"status {first.id}")._repr_html_() or "")
    with pytest.raises(UsageError, match="batch 999 does not exist"):
        line(shell, "status 999")
    with pytest.raises(UsageError, match="one batch number at most"):
        line(shell, "status one")


def test_list_filters_like_list_batches(
    shell: InteractiveShell, magics: BatchnbMagics, immediate: Workspace
) -> None:
    batchnb.submit([SAMPLES / "maplewood-print-invoice.txt"], PROMPT, workspace=immediate)
    batchnb.submit(
        [SAMPLES / "copperleaf-web-invoice.md", ("broken.pdf", b"%PDF-1.7 garbage")],
        PROMPT,
        workspace=immediate,
    )
    page = line(shell, "list")
    assert isinstance(page, BatchPage) and page.total == 2
    assert [row.id for row in line(shell, "list --search copperleaf").rows] == [2]
    assert line(shell, "list --limit 1").page_size == 1
    assert "<table" in line(shell, "list")._repr_html_()
    with pytest.raises(UsageError, match="unrecognized arguments: --bogus"):
        line(shell, "list --bogus")
    with pytest.raises(UsageError, match="--limit is a number of batches"):
        line(shell, "list --limit 0")


def test_worker_start_and_stop_in_the_kernel(
    shell: InteractiveShell, magics: BatchnbMagics, tmp_path: Path
) -> None:
    # A worker on a real (SQLite) queue: submitted documents wait until it runs.
    workspace = open_workspace(home=str(tmp_path / "queued"), heartbeat_seconds=0.5)
    queued = BatchnbMagics(shell, workspace=workspace)
    shell.register_magics(queued)
    try:
        batch = batchnb.submit(
            [SAMPLES / "maplewood-print-invoice.txt"], PROMPT, workspace=workspace
        )
        assert line(shell, "worker stop").startswith("no worker runs in this kernel")
        worker = line(shell, "worker start --threads 1")
        assert worker.running and worker.threads == 1
        assert line(shell, "worker start") is worker  # one per workspace
        batch.wait(timeout=60)
        assert batch.progress().completed == 1
        health = line(shell, "health")
        assert isinstance(health, HealthReport) and len(health.consumers) == 1
        assert line(shell, "worker stop") == f"worker {worker.id} stopped"
        assert not worker.running
        with pytest.raises(UsageError, match="takes start or stop"):
            line(shell, "worker restart")
    finally:
        queued.stop_worker()
        workspace.close()


def test_health_and_unknown_subcommands(shell: InteractiveShell, magics: BatchnbMagics) -> None:
    report = line(shell, "health")
    assert isinstance(report, HealthReport) and report.healthy
    with pytest.raises(UsageError, match="takes no arguments"):
        line(shell, "health now")
    with pytest.raises(UsageError, match="unknown subcommand 'stats'"):
        line(shell, "stats")


def test_extract_text_in_the_cell(shell: InteractiveShell, magics: BatchnbMagics) -> None:
    frame = shell.run_cell_magic(
        "extract",
        "invoice number, date, total",
        "Invoice number: INV-77\nDate: 2024-03-01\nTotal: 12.50 EUR\n",
    )
    assert list(frame.columns) == ["file_name", "invoice_number", "date", "total", "total_currency"]
    row = frame.iloc[0]
    assert (row.file_name, row.invoice_number, row.total, row.total_currency) == (
        TEXT_NAME,
        "INV-77",
        12.5,
        "EUR",
    )
    assert str(row.date) == "2024-03-01"


def test_extract_files_and_globs(
    shell: InteractiveShell, magics: BatchnbMagics, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.7 garbage")
    monkeypatch.chdir(tmp_path)
    cell = f"{SAMPLES}/*.txt\n\n{SAMPLES / 'copperleaf-web-invoice.md'}\nbad.pdf\n"
    frame = shell.run_cell_magic("extract", "--extractor offline invoice number, total", cell)
    assert list(frame.file_name) == [
        "maplewood-print-invoice.txt",
        "copperleaf-web-invoice.md",
        "bad.pdf",
    ]
    assert list(frame.columns) == [
        "file_name",
        "invoice_number",
        "total",
        "total_currency",
        "error",
    ]
    assert frame.invoice_number[0] == "TXT-0042" and frame.total[0] == 845.0
    assert frame.error.isna().tolist() == [True, True, False]
    assert "bad.pdf" in frame.error[2]


def test_extract_refusals_are_usage_errors(shell: InteractiveShell, magics: BatchnbMagics) -> None:
    with pytest.raises(UsageError, match="needs a prompt"):
        shell.run_cell_magic("extract", "", "some text")
    with pytest.raises(UsageError, match="file paths"):
        shell.run_cell_magic("extract", PROMPT, "\n  \n")
    with pytest.raises(UsageError, match=r"unknown extractor 'nowhere'"):
        shell.run_cell_magic("extract", "--extractor nowhere invoice number", "text")
