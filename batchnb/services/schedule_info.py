"""What the schedule services hand back: a schedule and one of its runs, with their displays."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from batchnb.db.models import Schedule, ScheduleRun
from batchnb.services import display


@dataclass(frozen=True)
class ScheduleRunInfo:
    """One run of a schedule: its due time, how it ended and where its output notebook is."""

    schedule: str
    due_at: datetime
    started_at: datetime
    finished_at: datetime | None
    status: str
    duration_s: float | None
    output_path: str | None
    error: str | None
    worker_id: str | None
    manual: bool

    @classmethod
    def of(cls, run: ScheduleRun, schedule: str) -> ScheduleRunInfo:
        return cls(
            schedule=schedule,
            due_at=run.due_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            status=run.status,
            duration_s=run.duration_s,
            output_path=run.output_path,
            error=run.error,
            worker_id=run.worker_id,
            manual=run.manual,
        )

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        for key in ("due_at", "started_at", "finished_at"):
            values[key] = None if values[key] is None else values[key].isoformat()
        return values

    def __repr__(self) -> str:
        took = "" if self.duration_s is None else f", {self.duration_s:.1f}s"
        return (
            f"ScheduleRunInfo({self.schedule!r}, due {display.format_time(self.due_at)}, "
            f"{self.status}{took})"
        )

    def _repr_html_(self) -> str:
        facts = [
            ("due", self.due_at),
            ("started", self.started_at),
            ("finished", self.finished_at or "-"),
            ("duration", "-" if self.duration_s is None else f"{self.duration_s:.1f}s"),
            ("output", self.output_path or "-"),
            ("started by", "hand (schedule run)" if self.manual else self.worker_id or "-"),
        ]
        after = display.note(self.error) if self.error else ""
        return display.card(f"Run of {self.schedule}", facts, status=self.status, after=after)


@dataclass(frozen=True)
class ScheduleInfo:
    """A schedule: which notebook, with which parameters, when, and how its last run went."""

    name: str
    notebook: str
    cron: str
    parameters: dict[str, Any]
    owner: str
    paused: bool
    next_due_at: datetime
    output_dir: str
    working_dir: str
    created_at: datetime
    last_run: ScheduleRunInfo | None = field(default=None, compare=False)

    @classmethod
    def of(cls, schedule: Schedule, last_run: ScheduleRun | None = None) -> ScheduleInfo:
        return cls(
            name=schedule.name,
            notebook=schedule.notebook,
            cron=schedule.cron,
            parameters=dict(schedule.parameters or {}),
            owner=schedule.owner,
            paused=schedule.paused,
            next_due_at=schedule.next_due_at,
            output_dir=schedule.output_dir,
            working_dir=schedule.working_dir,
            created_at=schedule.created_at,
            last_run=None if last_run is None else ScheduleRunInfo.of(last_run, schedule.name),
        )

    @property
    def status(self) -> str:
        """paused, or the last run's status (``new`` before the first run)."""
        if self.paused:
            return "paused"
        return "new" if self.last_run is None else self.last_run.status

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "notebook": self.notebook,
            "cron": self.cron,
            "parameters": self.parameters,
            "owner": self.owner,
            "paused": self.paused,
            "status": self.status,
            "next_due_at": self.next_due_at.isoformat(),
            "output_dir": self.output_dir,
            "working_dir": self.working_dir,
            "created_at": self.created_at.isoformat(),
            "last_run": None if self.last_run is None else self.last_run.as_dict(),
        }

    def __repr__(self) -> str:
        return (
            f"ScheduleInfo({self.name!r}, cron={self.cron!r}, {self.status}, "
            f"next due {display.format_time(self.next_due_at)})"
        )

    def _repr_html_(self) -> str:
        facts = [
            ("notebook", self.notebook),
            ("cron (UTC)", self.cron),
            ("parameters", ", ".join(f"{k}={v!r}" for k, v in self.parameters.items()) or "-"),
            ("next due", "paused" if self.paused else self.next_due_at),
            ("outputs", self.output_dir),
            ("owner", self.owner),
        ]
        last = self.last_run
        after = ""
        if last is not None:
            after = display.join(
                display.note(f"last run {display.format_time(last.started_at)}: {last.status}"),
                display.note(last.error) if last.error else "",
            )
        return display.card(f"Schedule · {self.name}", facts, status=self.status, after=after)
