"""The worker's scheduler: claim each due time of each schedule once, run its notebook.

Every minute each consumer with periodic tasks on calls :func:`run_due_schedules` (the
``batchnb.run_due_schedules`` Huey task, see ``tasks.py``). It lives beside the reaper in the
queue layer because it is worker housekeeping that the periodic task calls directly; the notebook
itself runs in a papermill subprocess, so nothing here imports the layers above.

Exactly once: a due time is claimed by inserting its ``schedule_runs`` row, in the transaction
that moves the schedule's ``next_due_at`` on. The unique constraint on ``(schedule_id,
due_at)`` makes a second worker's insert fail, and that worker skips the schedule. Due times
missed while no worker ran are not replayed: only the latest one runs.

Why a thread running a subprocess: the Huey task must return at once, or a long notebook would
hold a consumer thread for its whole run (and a scheduled run that submits documents would wait
for the very threads it holds). papermill runs in a child process of its own, so a notebook that
crashes or leaks cannot take the worker down, and its kernel is the notebook's, as with
``papermill`` on the command line.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from croniter import croniter  # type: ignore[import-untyped]
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from batchnb.db.engine import Database
from batchnb.db.models import Schedule, ScheduleRun, utcnow
from batchnb.db.models import Worker as WorkerRow
from batchnb.errors import ScheduleError

log = logging.getLogger(__name__)

# The papermill children and threads of this process, so a stopping worker can wait for its own
# runs and end what is still running (see stop_runs).
_lock = threading.Lock()
_children: dict[int, tuple[str, subprocess.Popen[str]]] = {}
_threads: dict[str, list[threading.Thread]] = {}
_stopped: set[int] = set()

ERROR_MARK = "batchnb-schedule-error: "
"""Prefix of the one line the papermill child prints when the notebook fails."""
LOST_AFTER = timedelta(minutes=15)
"""A run whose worker stopped, or has been silent this long, is recorded as failed."""
MAX_ERROR = 4000
STOP_WAIT_SECONDS = 10.0
"""How long a stopping worker waits for its running notebooks before it ends them."""
STOPPED_ERROR = (
    "the worker stopped while the notebook ran, so the run was ended; the schedule runs again "
    "at its next due time (or now: batchnb schedule run NAME)"
)

# The child: papermill's own entry function, with its execution error turned into one line that
# the parent records: the failing cell (as the output notebook numbers it), the exception's name
# and its message.
_PAPERMILL = f"""
import json, sys
import papermill
from papermill.exceptions import PapermillExecutionError
notebook, output, parameters, cwd = sys.argv[1:5]
try:
    papermill.execute_notebook(
        notebook, output, parameters=json.loads(parameters), cwd=cwd, progress_bar=False
    )
except PapermillExecutionError as exc:
    print("\\n{ERROR_MARK}In [" + str(exc.exec_count) + "]: " + exc.ename + ": " + exc.evalue,
          file=sys.stderr)
    sys.exit(1)
except Exception as exc:
    print("\\n{ERROR_MARK}" + type(exc).__name__ + ": " + str(exc), file=sys.stderr)
    sys.exit(1)
"""


def check_cron(expression: str) -> str:
    """``expression`` stripped, or :class:`ScheduleError` saying what a cron expression is."""
    cleaned = " ".join(expression.split())
    if not cleaned or len(cleaned.split()) != 5 or not croniter.is_valid(cleaned):
        raise ScheduleError(
            f"{expression!r} is not a cron expression: give five fields, minute hour "
            "day-of-month month day-of-week (UTC), e.g. '0 * * * *' for every hour or "
            "'30 6 * * 1-5' for 06:30 on weekdays"
        )
    return cleaned


def next_due(expression: str, after: datetime) -> datetime:
    """The first time ``expression`` names strictly after ``after`` (UTC)."""
    value: datetime = croniter(expression, after).get_next(datetime)
    return value


def latest_due(expression: str, now: datetime) -> datetime:
    """The last time ``expression`` names at or before ``now`` (UTC)."""
    value: datetime = croniter(expression, now + timedelta(seconds=1)).get_prev(datetime)
    return value


@dataclass(frozen=True)
class Claim:
    """A due time this process claimed: the run row it inserted and what to run."""

    run_id: int
    schedule_id: int
    name: str
    notebook: str
    parameters: Mapping[str, Any]
    working_dir: str
    output_path: str
    due_at: datetime
    worker_id: str


def output_file(output_dir: str, due_at: datetime) -> str:
    """Where a run's output notebook goes: ``<output_dir>/<due time, UTC>.ipynb``."""
    return str(Path(output_dir) / f"{due_at:%Y-%m-%dT%H-%M-%SZ}.ipynb")


def claim(
    db: Database,
    schedule: Schedule,
    due_at: datetime,
    worker_id: str,
    *,
    manual: bool = False,
) -> Claim | None:
    """Insert the run row of ``schedule`` at ``due_at``; None when another worker has it.

    A scheduled claim also moves ``next_due_at`` past ``due_at`` in the same transaction.
    """
    output_path = output_file(schedule.output_dir, due_at)
    try:
        with db.begin() as connection:
            run_id = connection.execute(
                insert(ScheduleRun)
                .values(
                    schedule_id=schedule.id,
                    due_at=due_at,
                    started_at=utcnow(),
                    status="running",
                    output_path=output_path,
                    worker_id=worker_id,
                    manual=manual,
                )
                .returning(ScheduleRun.id)
            ).scalar_one()
            if not manual:
                connection.execute(
                    update(Schedule)
                    .where(Schedule.id == schedule.id, Schedule.next_due_at <= due_at)
                    .values(next_due_at=next_due(schedule.cron, due_at))
                )
    except IntegrityError:
        log.debug("schedule %s at %s is another worker's", schedule.name, due_at)
        return None
    return Claim(
        run_id=run_id,
        schedule_id=schedule.id,
        name=schedule.name,
        notebook=schedule.notebook,
        parameters=dict(schedule.parameters or {}),
        working_dir=schedule.working_dir,
        output_path=output_path,
        due_at=due_at,
        worker_id=worker_id,
    )


def claim_due(db: Database, worker_id: str, now: datetime | None = None) -> list[Claim]:
    """Claim the latest due time of every active schedule that is due at ``now``."""
    now = now or utcnow()
    with db.read() as session:
        due = session.scalars(
            select(Schedule)
            .where(Schedule.paused.is_(False), Schedule.next_due_at <= now)
            .order_by(Schedule.next_due_at, Schedule.id)
        ).all()
    claims = []
    for schedule in due:
        claimed = claim(db, schedule, latest_due(schedule.cron, now), worker_id)
        if claimed is not None:
            claims.append(claimed)
    return claims


def execute(db: Database, claimed: Claim) -> ScheduleRun:
    """Run the claimed notebook through papermill in a child process; record how it ended."""
    started = time.monotonic()
    log.info("schedule %s: running %s (due %s)", claimed.name, claimed.notebook, claimed.due_at)
    error: str | None = None
    if not Path(claimed.working_dir).is_dir():
        error = (
            f"the folder this schedule runs in, {claimed.working_dir}, does not exist: "
            f"create it, or remove the schedule and add it again with working_dir="
        )
        return finish(db, claimed.run_id, error, time.monotonic() - started)
    try:
        Path(claimed.output_path).parent.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _PAPERMILL,
                claimed.notebook,
                claimed.output_path,
                json.dumps(dict(claimed.parameters)),
                claimed.working_dir,
            ],
            cwd=claimed.working_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
    except OSError as exc:
        return finish(db, claimed.run_id, f"could not start papermill: {exc}", 0.0)
    with _lock:
        _children[claimed.run_id] = (claimed.worker_id, process)
    try:
        _out, stderr = process.communicate()
    finally:
        with _lock:
            _children.pop(claimed.run_id, None)
            stopped = claimed.run_id in _stopped
            _stopped.discard(claimed.run_id)
    if stopped:
        error = STOPPED_ERROR
    elif process.returncode != 0:
        error = _error_of(stderr, process.returncode)
    return finish(db, claimed.run_id, error, time.monotonic() - started)


def _error_of(stderr: str, returncode: int) -> str:
    marked = [line for line in stderr.splitlines() if line.startswith(ERROR_MARK)]
    if marked:
        return marked[-1].removeprefix(ERROR_MARK)[:MAX_ERROR]
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return f"the notebook's process was ended by {name} (was the worker or machine stopping?)"
    tail = stderr.strip()[-MAX_ERROR:]
    return tail or f"papermill exited with status {returncode}"


def finish(db: Database, run_id: int, error: str | None, duration_s: float) -> ScheduleRun:
    """Record the end of a run: succeeded when ``error`` is None, else failed with it."""
    with db.write() as session:
        run = session.get_one(ScheduleRun, run_id)
        run.status = "succeeded" if error is None else "failed"
        run.error = error
        run.finished_at = utcnow()
        run.duration_s = round(duration_s, 3)
    if error is None:
        log.info("schedule run %s succeeded in %.1fs", run_id, duration_s)
    else:
        log.warning("schedule run %s failed: %s", run_id, error)
    return run


def fail_lost_runs(db: Database, now: datetime | None = None) -> int:
    """Mark failed the runs left ``running`` by a worker that stopped or went silent."""
    now = now or utcnow()
    gone = select(WorkerRow.id).where(
        or_(WorkerRow.stopped_at.is_not(None), WorkerRow.last_seen < now - LOST_AFTER)
    )
    with db.begin() as connection:
        result = connection.execute(
            update(ScheduleRun)
            .where(and_(ScheduleRun.status == "running", ScheduleRun.worker_id.in_(gone)))
            .values(
                status="failed",
                finished_at=now,
                error="the worker running it stopped before the notebook finished",
            )
        )
    return int(result.rowcount or 0)


def run_due_schedules(
    db: Database, worker_id: str, now: datetime | None = None, *, wait: bool = False
) -> list[Claim]:
    """The periodic task's body: claim what is due and run each in a thread of its own.

    ``wait=True`` runs the claimed notebooks here, one after the other, and returns when they
    are done (tests, and a one-shot ``cron`` line calling this).
    """
    fail_lost_runs(db, now)
    claims = claim_due(db, worker_id, now)
    for claimed in claims:
        if wait:
            execute(db, claimed)
            continue
        thread = threading.Thread(
            target=_execute_logged,
            args=(db, claimed),
            name=f"batchnb-schedule-{claimed.name}",
            daemon=True,
        )
        with _lock:
            running = [t for t in _threads.get(worker_id, []) if t.is_alive()]
            _threads[worker_id] = [*running, thread]
        thread.start()
    return claims


def stop_runs(worker_id: str, timeout: float = STOP_WAIT_SECONDS) -> int:
    """Wait up to ``timeout`` for the runs ``worker_id`` started here, then end the rest.

    Called when the worker stops, so no papermill child outlives it unrecorded: an ended run is
    recorded ``failed`` with :data:`STOPPED_ERROR`. Returns how many runs were ended.
    """
    with _lock:
        threads = _threads.pop(worker_id, [])
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with _lock:
        ended = [
            (run_id, process)
            for run_id, (owner, process) in _children.items()
            if owner == worker_id and process.poll() is None
        ]
        _stopped.update(run_id for run_id, _ in ended)
    for run_id, process in ended:
        log.warning("ending scheduled run %s: the worker is stopping", run_id)
        process.terminate()
    for thread in threads:
        thread.join(15.0)  # the thread records the run once its child has gone
    return len(ended)


def _execute_logged(db: Database, claimed: Claim) -> None:
    try:
        execute(db, claimed)
    except Exception:
        # The run row stays "running"; fail_lost_runs settles it once this worker is gone.
        log.exception("schedule %s: recording the run failed", claimed.name)


def local_runner_id() -> str:
    """The ``worker_id`` of a run started by hand (``batchnb schedule run``)."""
    return f"manual:{socket.gethostname()}:{os.getpid()}"
