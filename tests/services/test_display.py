"""The Python API in a notebook: plain and HTML reprs, the wait bar, the no-worker hint."""

from __future__ import annotations

import re
import shutil
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchnb.documents.intake import Refusal
from batchnb.extract import FunctionExtractor, register_extractor
from batchnb.queue.worker import Worker
from batchnb.services import waiting
from batchnb.services.analytics import AnalyticsSummary, analytics_summary
from batchnb.services.batches import Batch, Progress
from batchnb.services.display import mask_url
from batchnb.services.exports import ExportHandle, export
from batchnb.services.health import HealthReport, check_health
from batchnb.services.listing import BatchPage, BatchSummary, list_batches
from batchnb.services.manage import DeleteSummary, delete_batch
from batchnb.services.preview import Preview
from batchnb.services.review import Correction, ReviewStatus, correct_value, mark_reviewed
from batchnb.services.review_ground_truth import GroundTruthSummary, export_ground_truth
from batchnb.services.schedule_info import ScheduleInfo, ScheduleRunInfo
from batchnb.services.schedules import add_schedule, run_schedule
from batchnb.services.submit import submit
from batchnb.services.waiting import NoWorkerWarning, wait_until
from batchnb.services.workers import make_worker, start_worker
from batchnb.services.workspace import Workspace, open_workspace

from ..queue.schedule_notebooks import write_notebook
from .conftest import SAMPLES

PROMPT = "invoice number, date, total"
TEXT_SAMPLES = [
    SAMPLES / "maplewood-print-invoice.txt",
    SAMPLES / "ridgeback-bicycle-invoice.html",
    SAMPLES / "copperleaf-web-invoice.md",
]
HOSTILE = "<script>alert('x')</script> & co"
ADDRESS = re.compile(r"object at 0x|0x[0-9a-f]{6,}")
SECONDS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")
GATED = "gated-display-test"

RESULT_CLASSES: dict[str, type] = {
    "AnalyticsSummary": AnalyticsSummary,
    "Batch": Batch,
    "BatchPage": BatchPage,
    "BatchSummary": BatchSummary,
    "DeleteSummary": DeleteSummary,
    "ExportHandle": ExportHandle,
    "HealthReport": HealthReport,
    "Preview": Preview,
    "Progress": Progress,
    "Correction": Correction,
    "GroundTruthSummary": GroundTruthSummary,
    "ReviewStatus": ReviewStatus,
    "ScheduleInfo": ScheduleInfo,
    "ScheduleRunInfo": ScheduleRunInfo,
    "Worker": Worker,  # what start_worker() gives back
    "Workspace": Workspace,
}

# Documents of GATED wait until a test opens the gate: a batch then stays unfinished, with a
# worker alive, for exactly as long as the test needs (no sleeps, no timing guesses).
_gate = threading.Event()


def _gated(document: Any, schema: Any) -> dict[str, Any]:
    _gate.wait(timeout=60)
    return {}


register_extractor(GATED, lambda: FunctionExtractor(_gated, name=GATED), replace=True)


@pytest.fixture
def immediate(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace whose queue runs each task inside the call that queues it (no worker)."""
    ws = open_workspace(home=str(tmp_path / "immediate"), queue_url="memory://")
    yield ws
    ws.close()


@pytest.fixture
def finished(immediate: Workspace) -> Batch:
    """A batch of three documents, all completed, with a hostile name and one refusal."""
    return submit(
        [*TEXT_SAMPLES, SAMPLES / "missing.pdf"], PROMPT, name=HOSTILE, workspace=immediate
    )


@pytest.fixture
def quick_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting, "NO_WORKER_WARNING_SECONDS", 0.2)


def _plain(value: object) -> str:
    text = repr(value)
    assert not ADDRESS.search(text), text
    return text


def _html(value: Any) -> str:
    markup = value._repr_html_()
    assert isinstance(markup, str)
    assert "<script" not in markup and "http" not in markup  # escaped, nothing fetched
    assert "color:#" not in markup and "color: #" not in markup  # text keeps the theme's
    return markup


def test_batch_repr_says_what_it_is_in_one_line(finished: Batch) -> None:
    text = _plain(finished)
    assert text.startswith(f"Batch(id={finished.id}, ")
    assert "status='completed'" in text and "3/3 done" in text and "1 refused" in text
    assert "Workspace" not in text


def test_batch_card_shows_counts_bar_name_time_and_refusals_escaped(finished: Batch) -> None:
    markup = _html(finished)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in markup
    assert "role='progressbar'" in markup and "aria-valuenow='3'" in markup
    assert "3 completed" in markup and "3/3 done" in markup
    assert SECONDS.search(markup) and not re.search(r":\d\d\.\d+", markup)
    assert "missing.pdf" in markup and "refused at intake" in markup


def test_refused_file_names_are_escaped(immediate: Workspace) -> None:
    batch = Batch(1, immediate, [Refusal("<img src=x onerror=alert(1)>.pdf", "x", "bad <b>")])
    submit(TEXT_SAMPLES[:1], PROMPT, workspace=immediate)
    markup = _html(batch)
    assert "<img" not in markup and "&lt;img src=x onerror=alert(1)&gt;.pdf" in markup
    assert "bad &lt;b&gt;" in markup


def test_batch_repr_never_raises_when_the_workspace_is_gone(
    finished: Batch, immediate: Workspace
) -> None:
    assert _plain(Batch(999, immediate)) == "Batch(id=999, not found)"
    assert Batch(999, immediate)._repr_html_() is None
    immediate.close()
    shutil.rmtree(immediate.settings.home)
    assert _plain(finished) == f"Batch(id={finished.id}, unavailable: OperationalError)"
    assert finished._repr_html_() is None  # Jupyter then shows the plain repr


def test_progress_shows_a_bar() -> None:
    progress = Progress(pending=2, processing=1, completed=3, failed=1)
    assert _plain(progress) == (
        "Progress(pending=2, processing=1, completed=3, failed=1, cancelled=0)"
    )
    markup = _html(progress)
    assert "aria-valuemax='7'" in markup and "aria-valuenow='4'" in markup
    assert "4/7 done, 1 failed" in markup and "2 pending" in markup


def test_export_handle_shows_format_mode_status_documents_and_path(
    finished: Batch, immediate: Workspace, tmp_path: Path
) -> None:
    handle = export(finished, "csv", path=tmp_path / "out.csv", workspace=immediate)
    text = _plain(handle)
    assert text == (
        f"ExportHandle(id={handle.id}, format='csv', mode='normal', status='completed', "
        f"3/3 documents written, path={str(tmp_path / 'out.csv')!r})"
    )
    markup = _html(handle)
    assert "csv, normal" in markup and "completed" in markup and "out.csv" in markup
    assert "3/3 documents written" in markup and SECONDS.search(markup)
    assert _plain(ExportHandle(999, immediate)) == "ExportHandle(id=999, not found)"


def test_worker_repr(workspace: Workspace) -> None:
    worker = start_worker(workspace, threads=1)
    try:
        text = _plain(worker)
        assert text == f"Worker(id={worker.id!r}, threads=1, running=True, in_process=True)"
        markup = _html(worker)
        assert worker.id in markup and "running" in markup
    finally:
        worker.stop()
    assert "running=False" in _plain(worker)


def test_listing_and_analytics_reprs_are_short_tables(
    finished: Batch, immediate: Workspace
) -> None:
    page = list_batches(workspace=immediate)
    assert _plain(page) == f"BatchPage(page 1 of 1, 1 of 1 batches; ids [{finished.id}])"
    assert "&lt;script&gt;" in _html(page) and "page 1 of 1" in _html(page)
    summary = page.rows[0]
    text = _plain(summary)
    assert "status='completed'" in text and "3/3 done" in text and SECONDS.search(text)
    assert "&lt;script&gt;" in _html(summary)
    analytics = analytics_summary(workspace=immediate)
    text = _plain(analytics)
    assert "documents=3" in text and "success_rate=100.0%" in text
    assert "\n" not in text and "DataFrame" not in text
    markup = _html(analytics)
    assert "<details" in markup and "timing" in markup and "3 completed" in markup


def test_wait_draws_a_bar_when_asked(
    finished: Batch, immediate: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finished.wait(progress=True)
    err = capsys.readouterr().err
    assert f"batch {finished.id}" in err and "3/3" in err and "100%" in err
    handle = export(finished, "csv", path=tmp_path / "a.csv", workspace=immediate)
    handle.wait(progress=True)
    assert f"export {handle.id}" in capsys.readouterr().err


def test_wait_draws_no_bar_by_default_outside_an_interactive_session(
    finished: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    finished.wait()
    assert capsys.readouterr().err == ""


def test_wait_draws_a_bar_by_default_in_an_interactive_session_while_unfinished(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(waiting, "interactive_session", lambda: True)
    batch = submit(TEXT_SAMPLES, PROMPT, workspace=workspace)
    with pytest.raises(TimeoutError, match="3 pending"):
        batch.wait(timeout=0.3, poll_seconds=0.05)
    err = capsys.readouterr().err
    assert f"batch {batch.id}" in err and "0/3" in err
    # A caller with its own callback draws its own bar (the CLI does).
    seen: list[Progress] = []
    with pytest.raises(TimeoutError):
        batch.wait(timeout=0.1, poll_seconds=0.05, on_progress=seen.append)
    assert seen and capsys.readouterr().err == ""


def test_the_bar_ends_at_the_final_count(
    workspace: Workspace, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    bars: list[Any] = []
    original = waiting._open_bar

    def keep(subject: str, total: int) -> Any:
        bars.append(original(subject, total))
        return bars[-1]

    monkeypatch.setattr(waiting, "_open_bar", keep)
    batch = submit(TEXT_SAMPLES, PROMPT, workspace=workspace)
    progress = batch.wait(timeout=60, progress=True)
    assert progress.completed == 3
    assert [(bar.total, bar.n) for bar in bars] == [(3, 3)]


def test_wait_warns_once_when_no_worker_runs(workspace: Workspace, quick_warning: None) -> None:
    batch = submit(TEXT_SAMPLES, PROMPT, workspace=workspace)
    with (
        pytest.warns(NoWorkerWarning, match=r"batchnb\.start_worker\(\) or `batchnb worker`") as w,
        pytest.raises(TimeoutError),
    ):
        batch.wait(timeout=1, poll_seconds=0.05, progress=False)
    assert len([x for x in w if issubclass(x.category, NoWorkerWarning)]) == 1
    assert f"batch {batch.id}" in str(w[0].message)
    assert w[0].filename == __file__  # points at the caller's line, not at batchnb


def test_export_wait_warns_when_no_worker_writes_it(
    finished: Batch, workspace: Workspace, quick_warning: None, tmp_path: Path
) -> None:
    batch = submit(TEXT_SAMPLES, PROMPT, workspace=workspace)
    handle = export(batch, "csv", path=tmp_path / "b.csv", background=True, workspace=workspace)
    with pytest.warns(NoWorkerWarning, match=f"export {handle.id}"), pytest.raises(TimeoutError):
        handle.wait(timeout=1, poll_seconds=0.05)


def test_wait_does_not_warn_while_a_worker_runs(
    workspace: Workspace, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Checked at the first unfinished poll; the gate opens only after that check.
    monkeypatch.setattr(waiting, "NO_WORKER_WARNING_SECONDS", 0.0)
    _gate.clear()
    batch = submit(TEXT_SAMPLES, PROMPT, extractor=GATED, workspace=workspace)
    seen: list[Progress] = []

    def watch(progress: Progress) -> None:
        seen.append(progress)
        if len(seen) == 2:
            _gate.set()

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            progress = batch.wait(timeout=60, poll_seconds=0.05, on_progress=watch)
    finally:
        _gate.set()
    assert not seen[0].finished and progress.completed == 3
    assert not [w for w in caught if issubclass(w.category, NoWorkerWarning)]


def test_immediate_mode_never_warns(immediate: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting, "NO_WORKER_WARNING_SECONDS", 0.0)
    states = iter([0, 1, 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        last = wait_until(
            lambda: next(states),
            lambda state: state == 2,
            timeout=10,
            poll_seconds=0,
            subject="test",
            describe=str,
            count=lambda state: (state, 2),
            workspace=immediate,
            progress=False,
        )
    assert last == 2 and not caught


# Public classes that are what a call gives back, and how a test makes one holding user text.
# A public class that is neither here nor in INPUTS fails test_every_public_class_is_audited.
INPUTS = {
    "Selection": "an argument of export(), built by the caller",
    "Settings": "configuration read by load_settings(); `batchnb config` shows it",
}


def test_every_public_class_is_audited() -> None:
    import batchnb

    classes = {
        name
        for name in batchnb.__all__
        if isinstance(getattr(batchnb, name), type)
        and not issubclass(getattr(batchnb, name), BaseException | Warning)
    }
    assert classes - set(INPUTS) - set(RESULT_CLASSES) == set(), "add it to RESULT_CLASSES"
    for name in sorted(RESULT_CLASSES):
        cls = RESULT_CLASSES[name]
        assert cls.__repr__ is not object.__repr__, f"{name} has no plain repr"
        assert hasattr(cls, "_repr_html_") or hasattr(cls, "_repr_mimebundle_"), name


def test_every_result_shows_as_escaped_html_and_a_short_repr(
    finished: Batch, immediate: Workspace, tmp_path: Path
) -> None:
    page = list_batches(workspace=immediate)
    hostile_home = open_workspace(home=str(tmp_path / "hostile"), user=HOSTILE)
    made = {
        "AnalyticsSummary": analytics_summary(workspace=immediate),
        "Batch": finished,
        "BatchPage": page,
        "BatchSummary": page.rows[0],
        "ExportHandle": export(finished, "csv", path=tmp_path / "x.csv", workspace=immediate),
        "HealthReport": check_health(immediate),
        "Progress": finished.progress(),
        "Worker": make_worker(immediate, threads=1),
        "Workspace": hostile_home,
    }
    deleted = submit(TEXT_SAMPLES[:1], PROMPT, workspace=immediate)
    made["DeleteSummary"] = delete_batch(deleted.id, workspace=immediate)
    first = int(finished.results().document_id[0])
    made["Correction"] = correct_value(first, "invoice_number", "<b>X-1</b>", workspace=immediate)
    mark_reviewed(first, workspace=immediate)
    made["ReviewStatus"] = finished.review_status()
    made["GroundTruthSummary"] = export_ground_truth(finished, tmp_path / "gt", workspace=immediate)
    notebook = write_notebook(tmp_path / "tiny.ipynb")
    made["ScheduleInfo"] = add_schedule(
        notebook, name="shown", cron="0 * * * *", working_dir=tmp_path, workspace=immediate
    )
    made["ScheduleRunInfo"] = run_schedule("shown", workspace=immediate)
    try:
        assert set(made) >= set(RESULT_CLASSES) - {"Preview"}
        for name, value in made.items():
            assert isinstance(value, RESULT_CLASSES[name])
            text = _plain(value)
            assert text.startswith(name) and "\n" not in text and len(text) < 300, text
            markup = _html(value)
            if name in ("Batch", "BatchPage", "BatchSummary", "Workspace"):
                assert "&lt;script&gt;" in markup, name
    finally:
        hostile_home.close()


def test_health_report_and_workspace_reprs(immediate: Workspace, tmp_path: Path) -> None:
    report = check_health(immediate)
    assert _plain(report) == (
        "HealthReport(healthy, consumers=0, waiting=0, processing=0, failure_rate=-)"
    )
    assert "Health: ok" in _html(report) and "consumers (0)" in _html(report)
    secret = open_workspace(
        home=str(tmp_path / "secret"), database_url=f"sqlite:///{tmp_path / 's.db'}"
    )
    try:
        assert _plain(secret).startswith(f"Workspace(home={str(tmp_path / 'secret')!r}, ")
    finally:
        secret.close()
    assert mask_url("postgresql://me:pw@db:5432/x") == "postgresql://me:***@db:5432/x"
    assert mask_url("redis://:pw@cache:6379/0") == "redis://:***@cache:6379/0"
