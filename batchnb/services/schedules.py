"""Schedules: a notebook run by papermill on a cron timetable, by whichever worker ticks first.

``batchnb schedule add NOTEBOOK --name NAME --cron "0 * * * *" -p key value`` is
:func:`add_schedule`; the workers' periodic scheduler (``batchnb.queue.scheduler``) runs each due
time exactly once and records every run (status, duration, error, output notebook), which
:func:`schedule_history` reads back. See docs/schedules.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.orm import Session

from batchnb.db.models import Schedule, ScheduleRun, utcnow
from batchnb.errors import NotFoundError, ScheduleError
from batchnb.queue import scheduler
from batchnb.services.access import authorize_owner
from batchnb.services.audit import record_event
from batchnb.services.schedule_info import ScheduleInfo, ScheduleRunInfo
from batchnb.services.workspace import Workspace, acting

__all__ = [
    "ScheduleError",
    "ScheduleInfo",
    "ScheduleRunInfo",
    "add_schedule",
    "list_schedules",
    "parse_parameter",
    "pause_schedule",
    "remove_schedule",
    "resume_schedule",
    "run_schedule",
    "schedule_history",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_INT = re.compile(r"^[-+]?\d+$")


def parse_parameter(value: str) -> Any:
    """A ``-p key value`` string as papermill's ``-p`` reads it: ``True``/``False``/``None``,
    then integers and floats become numbers; anything else stays text."""
    if value in ("True", "False"):
        return value == "True"
    if value == "None":
        return None
    if _INT.match(value):
        return int(value)
    try:
        return float(value)
    except ValueError:
        return value


def add_schedule(
    notebook: str | Path,
    *,
    name: str,
    cron: str,
    parameters: Mapping[str, Any] | None = None,
    working_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
    workspace: Workspace | None = None,
    actor: str | None = None,
) -> ScheduleInfo:
    """Store a schedule that workers run with papermill at every time ``cron`` names (UTC).

    Parameters
    ----------
    notebook:
        The notebook to run, e.g. ``notebooks/scheduled_run.ipynb`` (stored as an absolute path).
    name:
        Unique name: letters, digits, ``.``, ``_`` and ``-`` (it names the output folder).
    cron:
        Five cron fields in UTC, e.g. ``"0 * * * *"`` for every hour.
    parameters:
        Papermill parameters of every run (JSON values).
    working_dir:
        Folder each run starts in, which relative paths in the parameters are relative to
        (default: the current folder).
    output_dir:
        Folder of the output notebooks (default: ``<BATCHNB_HOME>/schedules/<name>``).
    """
    workspace, actor = acting(workspace, actor)
    expression = scheduler.check_cron(cron)
    if not _NAME.match(name):
        raise ScheduleError(
            f"{name!r} cannot name a schedule: use letters, digits, '.', '_' and '-' "
            "(it names the folder of the outputs)"
        )
    path = Path(notebook).expanduser().resolve()
    if path.suffix != ".ipynb" or not path.is_file():
        raise ScheduleError(f"{notebook}: no such notebook (give the path of an .ipynb file)")
    folder = Path(working_dir or Path.cwd()).expanduser().resolve()
    outputs = Path(output_dir).resolve() if output_dir else workspace.settings.home / "schedules"
    now = utcnow()
    row = Schedule(
        name=name,
        notebook=str(path),
        cron=expression,
        parameters=dict(parameters or {}),
        owner=actor,
        paused=False,
        output_dir=str(outputs if output_dir else outputs / name),
        working_dir=str(folder),
        created_at=now,
        updated_at=now,
        next_due_at=scheduler.next_due(expression, now),
    )
    with workspace.db.write() as session:
        if session.scalar(select(Schedule.id).where(Schedule.name == name)) is not None:
            raise ScheduleError(
                f"a schedule named {name!r} exists: choose another name=, or remove it first "
                f"(batchnb schedule remove {name})"
            )
        session.add(row)
        session.flush()
        _audit(session, actor, "schedule_add", name, {"cron": expression, "notebook": str(path)})
    return ScheduleInfo.of(row)


def list_schedules(*, workspace: Workspace | None = None) -> list[ScheduleInfo]:
    """Every schedule of the workspace by name, each with its last run."""
    workspace, _ = acting(workspace, None)
    with workspace.db.read() as session:
        schedules = session.scalars(select(Schedule).order_by(Schedule.name)).all()
        last = _last_runs(session)
        return [ScheduleInfo.of(s, last.get(s.id)) for s in schedules]


def _last_runs(session: Session) -> dict[int, ScheduleRun]:
    newest = (
        select(ScheduleRun.schedule_id, func.max(ScheduleRun.id).label("id"))
        .group_by(ScheduleRun.schedule_id)
        .subquery()
    )
    runs = session.scalars(select(ScheduleRun).join(newest, ScheduleRun.id == newest.c.id))
    return {run.schedule_id: run for run in runs}


def _get(session: Session, name: str) -> Schedule:
    row = session.scalar(select(Schedule).where(Schedule.name == name))
    if row is None:
        known = ", ".join(session.scalars(select(Schedule.name).order_by(Schedule.name)))
        raise NotFoundError(
            f"no schedule named {name!r}"
            + (f"; schedules: {known}" if known else "; add one with batchnb schedule add")
        )
    return row


def run_schedule(
    name: str, *, workspace: Workspace | None = None, actor: str | None = None
) -> ScheduleRunInfo:
    """Run the schedule's notebook now, here, and wait for it; recorded as a run like any other.

    The timetable is left as it is. A failing notebook is returned as a ``failed`` run (its
    error says which cell raised what), not raised.
    """
    workspace, actor = acting(workspace, actor)
    with workspace.db.read() as session:
        row = _get(session, name)
    authorize_owner(workspace, actor, "schedule_run", "schedule", row.id, row.owner)
    claimed = scheduler.claim(workspace.db, row, utcnow(), scheduler.local_runner_id(), manual=True)
    if claimed is None:  # the same microsecond as another run of this schedule
        raise ScheduleError(f"schedule {name!r} is being started by someone else: try again")
    run = scheduler.execute(workspace.db, claimed)
    return ScheduleRunInfo.of(run, name)


def pause_schedule(
    name: str, *, workspace: Workspace | None = None, actor: str | None = None
) -> ScheduleInfo:
    """Stop running the schedule at its times until :func:`resume_schedule`."""
    return _set_paused(name, True, workspace, actor)


def resume_schedule(
    name: str, *, workspace: Workspace | None = None, actor: str | None = None
) -> ScheduleInfo:
    """Run the schedule again from its next time on (times missed while paused are skipped)."""
    return _set_paused(name, False, workspace, actor)


def _set_paused(
    name: str, paused: bool, workspace: Workspace | None, actor: str | None
) -> ScheduleInfo:
    workspace, actor = acting(workspace, actor)
    action = "schedule_pause" if paused else "schedule_resume"
    with workspace.db.read() as session:
        found = _get(session, name)
    authorize_owner(workspace, actor, action, "schedule", found.id, found.owner)
    with workspace.db.write() as session:
        row = _get(session, name)
        now = utcnow()
        if row.paused and not paused:
            row.next_due_at = scheduler.next_due(row.cron, now)
        row.paused = paused
        row.updated_at = now
        _audit(session, actor, action, name, {})
    return _info(workspace, name)


def remove_schedule(
    name: str, *, workspace: Workspace | None = None, actor: str | None = None
) -> None:
    """Delete the schedule and its run history (output notebooks stay on disk)."""
    workspace, actor = acting(workspace, actor)
    with workspace.db.read() as session:
        found = _get(session, name)
    authorize_owner(workspace, actor, "schedule_remove", "schedule", found.id, found.owner)
    with workspace.db.write() as session:
        # Runs go by the foreign key's cascade on PostgreSQL; deleted here for SQLite too.
        session.execute(delete(ScheduleRun).where(ScheduleRun.schedule_id == found.id))
        session.execute(delete(Schedule).where(Schedule.id == found.id))
        _audit(session, actor, "schedule_remove", name, {"output_dir": found.output_dir})


def schedule_history(
    name: str, *, limit: int = 20, workspace: Workspace | None = None
) -> list[ScheduleRunInfo]:
    """The schedule's newest ``limit`` runs, newest first."""
    workspace, _ = acting(workspace, None)
    with workspace.db.read() as session:
        row = _get(session, name)
        runs = session.scalars(
            select(ScheduleRun)
            .where(ScheduleRun.schedule_id == row.id)
            .order_by(ScheduleRun.id.desc())
            .limit(limit)
        ).all()
        return [ScheduleRunInfo.of(run, name) for run in runs]


def failing_schedules(workspace: Workspace) -> list[ScheduleRunInfo]:
    """The last run of each schedule whose last run failed (what ``batchnb health`` reports)."""
    with workspace.db.read() as session:
        names = {row[0]: row[1] for row in session.execute(select(Schedule.id, Schedule.name))}
        last = _last_runs(session)
    return [
        ScheduleRunInfo.of(run, names[schedule_id])
        for schedule_id, run in sorted(last.items())
        if run.status == "failed"
    ]


def _info(workspace: Workspace, name: str) -> ScheduleInfo:
    with workspace.db.read() as session:
        row = _get(session, name)
        return ScheduleInfo.of(row, _last_runs(session).get(row.id))


def _audit(session: Session, actor: str, action: str, name: str, details: dict[str, Any]) -> None:
    connection: Connection = session.connection()
    record_event(connection, actor, action, "schedule", name, details)
