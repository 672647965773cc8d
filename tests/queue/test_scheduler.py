"""The workers' scheduler: each due time of a schedule runs once, whoever ticks, on SQLite and
PostgreSQL; missed times run once; failures are recorded with the notebook's message."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from batchnb.db.models import Schedule, ScheduleRun, Worker, utcnow
from batchnb.queue import scheduler
from batchnb.queue.scheduler import ScheduleError
from batchnb.services.schedules import add_schedule, pause_schedule
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace, open_workspace

from .schedule_notebooks import write_notebook


@pytest.fixture(params=["sqlite", "postgres_workspace"])
def any_workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    """A workspace on SQLite, then on PostgreSQL."""
    if request.param == "sqlite":
        ws = open_workspace(home=str(tmp_path / "home"))
        yield ws
        ws.close()
    else:
        yield request.getfixturevalue("postgres_workspace")


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    return write_notebook(tmp_path / "tiny.ipynb")


def _runs(ws: Workspace) -> list[ScheduleRun]:
    with ws.db.read() as session:
        return list(session.scalars(select(ScheduleRun).order_by(ScheduleRun.id)))


def _schedule(ws: Workspace, name: str) -> Schedule:
    with ws.db.read() as session:
        return session.scalars(select(Schedule).where(Schedule.name == name)).one()


def test_cron_expressions_are_checked_and_read_in_utc() -> None:
    assert scheduler.check_cron("  0  *  * * * ") == "0 * * * *"
    advice = r"is not a cron expression.*'0 \* \* \* \*' for every hour"
    for bad in ("", "61 * * * *", "every hour", "* * * *", "0 * * * * *"):
        with pytest.raises(ScheduleError, match=advice):
            scheduler.check_cron(bad)
    at = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert scheduler.next_due("0 * * * *", at) == at + timedelta(hours=1)
    assert scheduler.latest_due("0 * * * *", at) == at
    assert scheduler.latest_due("0 * * * *", at + timedelta(minutes=59)) == at


def test_two_threads_racing_for_a_due_time_claim_it_once(
    any_workspace: Workspace, notebook: Path, tmp_path: Path
) -> None:
    added = add_schedule(
        notebook, name="hourly", cron="0 * * * *", working_dir=tmp_path, workspace=any_workspace
    )
    now = added.next_due_at + timedelta(seconds=20)
    start = threading.Barrier(4)
    claims: list[list[scheduler.Claim]] = []

    def tick(number: int) -> None:
        start.wait()
        claims.append(scheduler.claim_due(any_workspace.db, f"worker-{number}", now))

    threads = [threading.Thread(target=tick, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    won = [claim for found in claims for claim in found]
    assert len(claims) == 4 and len(won) == 1
    assert won[0].due_at == added.next_due_at
    runs = _runs(any_workspace)
    assert [(run.status, run.due_at) for run in runs] == [("running", added.next_due_at)]
    assert _schedule(any_workspace, "hourly").next_due_at == added.next_due_at + timedelta(hours=1)
    # A later tick in the same hour finds nothing due.
    assert scheduler.claim_due(any_workspace.db, "late", now + timedelta(minutes=30)) == []


_TICK = """
import pathlib, sys, time
from datetime import datetime
from batchnb.db.engine import Database
from batchnb.queue.scheduler import run_due_schedules

url, worker, now, go = sys.argv[1:5]
while not pathlib.Path(go).exists():
    time.sleep(0.005)
database = Database(url)
claims = run_due_schedules(database, worker, datetime.fromisoformat(now), wait=True)
print(len(claims))
database.dispose()
"""


def test_two_worker_processes_ticking_at_once_run_a_due_time_once(
    any_workspace: Workspace, notebook: Path, tmp_path: Path
) -> None:
    """Each process claims and runs what it claimed: one run row, one output, one line."""
    marker = tmp_path / "ran.txt"
    added = add_schedule(
        notebook,
        name="race",
        cron="*/5 * * * *",
        parameters={"marker": str(marker), "text": "once"},
        working_dir=tmp_path,
        workspace=any_workspace,
    )
    now = (added.next_due_at + timedelta(minutes=1)).isoformat()
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _TICK, any_workspace.db.url, f"w{n}", now, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    time.sleep(0.5)  # both import batchnb first, so they tick together
    go.touch()
    results = [child.communicate(timeout=300) for child in children]

    for child, (_out, err) in zip(children, results, strict=True):
        assert child.returncode == 0, err
    assert sorted(out.strip() for out, _err in results) == ["0", "1"]
    runs = _runs(any_workspace)
    assert len(runs) == 1
    run = runs[0]
    assert (run.status, run.error, run.manual) == ("succeeded", None, False)
    assert run.duration_s is not None and run.duration_s > 0
    assert marker.read_text() == "once\n"
    outputs = list(Path(added.output_dir).glob("*.ipynb"))
    assert [str(path) for path in outputs] == [run.output_path]
    assert Path(run.output_path).name == f"{added.next_due_at:%Y-%m-%dT%H-%M-%SZ}.ipynb"


def test_due_times_missed_while_no_worker_ran_run_once_the_latest(
    workspace: Workspace, notebook: Path, tmp_path: Path
) -> None:
    added = add_schedule(
        notebook,
        name="missed",
        cron="*/10 * * * *",
        parameters={"marker": str(tmp_path / "ran.txt")},
        working_dir=tmp_path,
        workspace=workspace,
    )
    # Nobody ran for five hours: thirty due times passed.
    now = added.next_due_at + timedelta(hours=5, minutes=3)

    claims = scheduler.run_due_schedules(workspace.db, "w", now, wait=True)

    assert [claim.due_at for claim in claims] == [added.next_due_at + timedelta(hours=5)]
    assert (tmp_path / "ran.txt").read_text() == "ran\n"
    assert _schedule(workspace, "missed").next_due_at == claims[0].due_at + timedelta(minutes=10)
    assert scheduler.run_due_schedules(workspace.db, "w", now, wait=True) == []


def test_a_failing_notebook_is_a_failed_run_with_papermills_message(
    workspace: Workspace, notebook: Path, tmp_path: Path
) -> None:
    added = add_schedule(
        notebook,
        name="failing",
        cron="0 * * * *",
        parameters={"marker": str(tmp_path / "ran.txt"), "fail": True},
        working_dir=tmp_path,
        workspace=workspace,
    )

    scheduler.run_due_schedules(workspace.db, "w", added.next_due_at, wait=True)

    [run] = _runs(workspace)
    assert run.status == "failed" and run.finished_at is not None
    assert run.error == (
        "In [4]: TooManyFailures: 3 of 4 documents failed (75%), over the allowed 10%"
    )
    # papermill keeps the output notebook of a failed run too, with the error in it.
    assert "TooManyFailures" in Path(run.output_path or "").read_text()


def test_paused_schedules_do_not_run_and_a_missing_folder_fails_clearly(
    workspace: Workspace, notebook: Path, tmp_path: Path
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    paused = add_schedule(notebook, name="paused", cron="0 * * * *", workspace=workspace)
    add_schedule(notebook, name="lost", cron="0 * * * *", working_dir=gone, workspace=workspace)
    pause_schedule("paused", workspace=workspace)
    gone.rmdir()

    claims = scheduler.run_due_schedules(workspace.db, "w", paused.next_due_at, wait=True)

    assert [claim.name for claim in claims] == ["lost"]
    [run] = _runs(workspace)
    assert run.status == "failed"
    assert run.error == (
        f"the folder this schedule runs in, {gone}, does not exist: create it, or remove the "
        "schedule and add it again with working_dir="
    )


def test_runs_of_a_worker_that_stopped_are_failed_by_the_next_tick(
    workspace: Workspace, notebook: Path
) -> None:
    added = add_schedule(notebook, name="orphan", cron="0 * * * *", workspace=workspace)
    [claim] = scheduler.claim_due(workspace.db, "gone-worker", added.next_due_at)
    with workspace.db.write() as session:
        session.add(Worker(id="gone-worker", hostname="h", pid=1, threads=1))
    assert scheduler.fail_lost_runs(workspace.db) == 0  # alive: its run stays running
    with workspace.db.write() as session:
        session.execute(
            update(Worker).where(Worker.id == "gone-worker").values(stopped_at=utcnow())
        )

    assert scheduler.fail_lost_runs(workspace.db) == 1

    [run] = _runs(workspace)
    assert run.id == claim.run_id and run.status == "failed"
    assert run.error == "the worker running it stopped before the notebook finished"


def test_a_stopping_worker_ends_the_notebook_it_runs_and_records_why(
    workspace: Workspace, notebook: Path, tmp_path: Path
) -> None:
    """The periodic task of a real (in-process) consumer starts the run; stopping the worker
    ends the papermill child after a short wait and records the run as failed."""
    marker = tmp_path / "ran.txt"
    add_schedule(
        notebook,
        name="slow",
        cron="0 0 1 1 *",
        parameters={"marker": str(marker), "wait_seconds": 120},
        working_dir=tmp_path,
        workspace=workspace,
    )
    with workspace.db.write() as session:
        session.execute(update(Schedule).values(next_due_at=utcnow() - timedelta(days=400)))
    worker = start_worker(workspace, threads=1)  # its consumer ticks the periodic tasks at once
    try:
        deadline = time.monotonic() + 60
        while not _runs(workspace) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_runs(workspace)) == 1
    finally:
        stopping = time.monotonic()
        worker.stop()
    assert time.monotonic() - stopping < scheduler.STOP_WAIT_SECONDS + 20

    [run] = _runs(workspace)
    assert (run.status, run.error) == ("failed", scheduler.STOPPED_ERROR)
    assert run.worker_id == worker.id
    assert not marker.exists()
