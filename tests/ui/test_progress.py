"""The live progress panel: real batches, a real worker, the kernel's kind of event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from ipywidgets.embed import dependency_state

from batchnb.extract import FunctionExtractor, register_extractor
from batchnb.queue.worker import Worker
from batchnb.services.batches import Batch, Progress
from batchnb.services.submit import submit
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace, open_workspace
from batchnb.ui import BatchProgress
from batchnb.ui.progress import MIN_INTERVAL, Throughput, format_duration, widget_frontend
from tests.conftest import SAMPLES

PROMPT = "invoice number, date, total"
TEXT_SAMPLES = [
    SAMPLES / "maplewood-print-invoice.txt",
    SAMPLES / "ridgeback-bicycle-invoice.html",
    SAMPLES / "copperleaf-web-invoice.md",
]
CORRUPT = ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without xref")
GATED = "gated-progress-test"

# The Copperleaf invoice waits until a test opens the gate; the other documents finish at
# once. A batch is then partly done, with a worker alive, as long as the test needs.
_gate = threading.Event()


def _gated(document: Any, schema: Any) -> dict[str, Any]:
    if "copperleaf" in document.text.lower():
        _gate.wait(timeout=60)
    return {}


register_extractor(GATED, lambda: FunctionExtractor(_gated, name=GATED), replace=True)


@pytest.fixture
def gate() -> Any:
    _gate.clear()
    yield _gate
    _gate.set()


@pytest.fixture
def immediate(tmp_path: Path) -> Any:
    ws = open_workspace(home=str(tmp_path / "immediate"), queue_url="memory://")
    yield ws
    ws.close()


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine on a fresh asyncio loop, as ipykernel and Voila run cells."""
    return asyncio.run(main())


async def until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def shown(panel: BatchProgress) -> str:
    """Everything a (re)loaded page would receive: the synced state of the panel's widgets."""
    return str(dependency_state(panel))


def test_reaches_100_percent_with_a_real_worker_and_stops(workspace: Workspace) -> None:
    batch = submit(TEXT_SAMPLES, PROMPT, workspace=workspace)

    async def main() -> tuple[BatchProgress, int]:
        panel = batch.progress_widget(interval=MIN_INTERVAL)
        assert panel.updating and not panel.finished and panel.percent == 0
        worker = start_worker(workspace, threads=2)
        try:
            await asyncio.wait_for(panel.wait_finished(), 60)
        finally:
            worker.stop()
        after = panel.refreshes
        await asyncio.sleep(3 * MIN_INTERVAL)  # nothing refreshes once the batch is over
        assert panel.refreshes == after
        return panel, after

    panel, _ = run(main)
    assert panel.finished and not panel.updating
    assert panel.percent == 100.0 and panel.counts["completed"] == 3
    assert panel.status == "completed"
    assert panel.rate is not None and panel.rate > 0 and panel.eta == 0.0
    state = shown(panel)
    assert "3/3 done" in state and "100%" in state and "docs/s" in state and "done" in state
    assert panel._cancel.layout.display == "none"  # nothing left to cancel
    assert repr(panel) == f"BatchProgress(batch={batch.id}, 3/3 done, finished=True)"


class SlowBatch(Batch):
    """The real handle, on a database that takes 0.3 s to count (a busy server, say)."""

    def progress(self, *, cached: bool = True) -> Progress:
        time.sleep(SLOW_QUERY)
        return super().progress(cached=cached)


SLOW_QUERY = 0.3


def test_updates_never_block_the_loop_and_are_throttled(
    workspace: Workspace, worker: Worker, gate: threading.Event
) -> None:
    submitted = submit(TEXT_SAMPLES, PROMPT, extractor=GATED, workspace=workspace)
    batch = SlowBatch(submitted.id, workspace)

    async def main() -> tuple[BatchProgress, float, int, float]:
        panel = BatchProgress(batch, interval=0.01)  # asks for 100/s, gets at most 2/s
        assert panel.interval == MIN_INTERVAL
        gaps: list[float] = []
        last = time.monotonic()
        started = last
        while time.monotonic() - started < 2.5:  # another "cell" running meanwhile
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now
        refreshes = panel.refreshes
        elapsed = time.monotonic() - started
        gate.set()
        await asyncio.wait_for(panel.wait_finished(), 60)
        return panel, max(gaps), refreshes, elapsed

    panel, longest_gap, refreshes, elapsed = run(main)
    # Each slow count ran on a thread: the loop never waited SLOW_QUERY for one.
    assert longest_gap < SLOW_QUERY * 0.8
    # One refresh when made, then at most one per MIN_INTERVAL (plus the query's own time).
    assert 3 <= refreshes <= 1 + elapsed / MIN_INTERVAL
    assert panel.finished and panel.counts["completed"] == 3


def test_rate_and_eta_while_a_batch_runs(
    workspace: Workspace, worker: Worker, gate: threading.Event
) -> None:
    batch = submit(TEXT_SAMPLES, PROMPT, extractor=GATED, workspace=workspace)

    async def main() -> BatchProgress:
        panel = BatchProgress(batch, interval=MIN_INTERVAL)
        await until(lambda: panel.counts.get("completed") == 2)
        return panel

    panel = run(main)
    try:
        assert not panel.finished and round(panel.percent) == 67
        assert panel.rate is not None and panel.rate > 0
        assert panel.eta is not None and panel.eta == pytest.approx(1 / panel.rate)
        assert panel._rate.value.endswith(" docs/s") and panel._eta.value.startswith("ETA ")
        assert panel.status == "processing"
    finally:
        panel.stop()


def test_throughput_over_a_window() -> None:
    throughput = Throughput(window=10)
    assert throughput.rate() is None and throughput.eta(5) is None
    throughput.add(0, 0, age=1.0)  # nothing done yet: no rate
    assert throughput.rate() is None
    throughput.add(2, 4)
    assert throughput.rate() == 2.0 and throughput.eta(6) == 3.0 and throughput.eta(0) == 0.0
    throughput.add(20, 4)
    throughput.add(22, 10)  # (0, 0) left the window; one sample before it stays to span it
    assert throughput.rate() == pytest.approx((10 - 4) / (22 - 2))
    fresh = Throughput()
    fresh.add(5, 6, age=3.0)  # one look at a batch already running: its average so far
    assert fresh.rate() == 2.0
    assert [format_duration(s) for s in (4.4, 65, 7380)] == ["4s", "1m 05s", "2h 03m"]


def test_failed_documents_are_listed_with_their_errors(immediate: Workspace) -> None:
    batch = submit(
        [TEXT_SAMPLES[0], CORRUPT], PROMPT, name="<script>x</script>", workspace=immediate
    )
    panel = batch.progress_widget()  # no loop runs: it shows the state it was made in
    assert "&lt;script&gt;x&lt;/script&gt;" in panel._title.value and "<script" not in shown(panel)
    assert not panel.updating and panel.finished
    assert panel.counts == {**panel.counts, "completed": 1, "failed": 1}
    failures = panel._failures
    assert failures.titles == ("broken.pdf (corrupt)",)
    assert "not a readable PDF" in failures.children[0].value
    assert failures.layout.display != "none" and "1 failed" in panel._failures_note.value
    assert "broken.pdf (corrupt)" in shown(panel)


def test_cancel_asks_first_then_cancels_and_says_so(workspace: Workspace) -> None:
    batch = submit(TEXT_SAMPLES, PROMPT, workspace=workspace)  # no worker: all pending
    panel = BatchProgress(batch, start=False)
    panel._cancel.click()
    assert panel._confirm.layout.display == "" and "Cancel batch" in panel._message.value
    panel._keep.click()
    assert panel._confirm.layout.display == "none" and batch.status != "cancelled"
    panel._cancel.click()
    panel._confirm.click()
    assert batch.status == "cancelled"
    assert f"Batch {batch.id} cancelled: 3 queue items stopped." in panel._message.value
    assert panel.finished and panel.counts["cancelled"] == 3 and panel.status == "cancelled"
    assert panel.start() is False  # nothing more to follow


def test_cancel_refused_by_the_service_is_a_message(tmp_path: Path) -> None:
    owner = open_workspace(home=str(tmp_path / "shared"), user="alice")
    other = open_workspace(home=str(tmp_path / "shared"), user="bob")
    try:
        batch = submit(TEXT_SAMPLES[:1], PROMPT, workspace=owner)
        panel = BatchProgress(Batch(batch.id, other), start=False)
        assert panel.cancel() is None
        assert "Could not cancel" in panel._message.value and not panel.finished
        assert batch.status != "cancelled"
    finally:
        owner.close()
        other.close()


def test_text_bar_where_no_widget_can_show(
    immediate: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = submit(TEXT_SAMPLES, PROMPT, workspace=immediate)
    assert widget_frontend() is False  # pytest: no kernel
    final = BatchProgress.watch(batch)
    assert isinstance(final, Progress) and final.completed == 3
    err = capsys.readouterr().err
    assert f"batch {batch.id}" in err and "3/3" in err and "100%" in err


def test_a_panel_made_without_a_loop_refreshes_when_asked(workspace: Workspace) -> None:
    batch = submit(TEXT_SAMPLES, PROMPT, workspace=workspace)
    panel = batch.progress_widget()
    assert not panel.updating and panel.counts["pending"] == 3 and panel._eta.value == "ETA -"
    worker = start_worker(workspace, threads=2)
    try:
        batch.wait(timeout=60)
    finally:
        worker.stop()
    panel.refresh(cached=False)
    assert panel.finished and panel.percent == 100.0


def test_a_deleted_batch_stops_the_panel_with_a_message(workspace: Workspace) -> None:
    from batchnb.services.manage import delete_batch

    batch = submit(TEXT_SAMPLES, PROMPT, workspace=workspace)

    async def main() -> BatchProgress:
        panel = BatchProgress(batch, interval=MIN_INTERVAL)
        delete_batch(batch.id, workspace=workspace)
        await asyncio.wait_for(panel.wait_finished(), 30)
        return panel

    panel = run(main)
    assert not panel.updating and panel.finished
    assert f"batch {batch.id} does not exist" in panel._message.value
