"""A period and an owner: what a report or an aggregate covers, as query conditions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement


def hour_start(moment: datetime) -> datetime:
    """The start of the hour containing ``moment``."""
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Scope:
    """Rows created in ``[start, end)`` (UTC, ``None``: unbounded), of ``user`` or of everyone."""

    start: datetime | None = None
    end: datetime | None = None
    user: str | None = None

    def period(self, column: Any) -> list[ColumnElement[bool]]:
        """Conditions keeping ``column`` inside the period."""
        conditions: list[ColumnElement[bool]] = []
        if self.start is not None:
            conditions.append(column >= self.start)
        if self.end is not None:
            conditions.append(column < self.end)
        return conditions

    def where(self, created: Any, owner: Any) -> list[ColumnElement[bool]]:
        """The period on ``created``, and the user on ``owner`` when there is one."""
        conditions = self.period(created)
        if self.user is not None:
            conditions.append(owner == self.user)
        return conditions

    def hours(self) -> Scope:
        """The whole hours that overlap the period (hourly figures)."""
        start = None if self.start is None else hour_start(self.start)
        end = self.end
        if end is not None and end != hour_start(end):
            end = hour_start(end) + timedelta(hours=1)
        return Scope(start, end, self.user)
