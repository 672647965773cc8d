"""Maintenance locks: a named lease that one worker at a time holds, kept in the database.

The lock is a row of ``maintenance_locks`` (name, holder, until when), claimed with a
conditional UPDATE that succeeds only when the row is free, expired or already this holder's,
or by inserting the row the first time (the primary key refuses a second insert). Each claim
commits at once: no database lock is held between statements, so a holder that is frozen
(SIGSTOP, a VM pause), killed or cut off loses the lock when its time runs out, and another
worker takes it on its next try.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Table, insert, or_, update
from sqlalchemy.exc import IntegrityError

from batchnb.db.engine import Database
from batchnb.db.models import MaintenanceLock, utcnow

_locks = cast(Table, MaintenanceLock.__table__)


class LeaseLock:
    """A named lock held by ``holder`` for ``seconds`` at a time, renewed by acquiring again.

    Parameters
    ----------
    db:
        The workspace database (the lock row lives there, beside the items it protects).
    name:
        Which lock, e.g. ``recovery``.
    holder:
        Who asks (a worker id); the same holder acquiring again renews its lock.
    seconds:
        How long a claim lasts: a holder that stops renewing loses the lock this long after
        its last claim.
    """

    def __init__(self, db: Database, name: str, holder: str, seconds: float) -> None:
        self.db = db
        self.name = name
        self.holder = holder
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"LeaseLock({self.name!r}, holder={self.holder!r}, seconds={self.seconds})"

    def acquire(self, now: datetime | None = None) -> bool:
        """Take or renew the lock; False when another holder's claim has not run out yet."""
        now = now or utcnow()
        until = now + timedelta(seconds=self.seconds)
        with self.db.begin() as connection:
            claimed = cast(
                CursorResult[Any],
                connection.execute(
                    update(_locks)
                    .where(
                        _locks.c.name == self.name,
                        or_(_locks.c.held_by == self.holder, _locks.c.held_until < now),
                    )
                    .values(held_by=self.holder, held_until=until)
                ),
            ).rowcount
        if claimed:
            return True
        try:
            # The first claim ever of this name: the primary key lets one insert through.
            with self.db.begin() as connection:
                connection.execute(
                    insert(_locks).values(name=self.name, held_by=self.holder, held_until=until)
                )
        except IntegrityError:
            return False
        return True

    def take_over(self, previous: str, now: datetime | None = None) -> bool:
        """Take the lock from ``previous``, known to be dead, before its claim runs out.

        Only if ``previous`` still holds it: of two workers taking over at once one wins."""
        now = now or utcnow()
        with self.db.begin() as connection:
            taken = cast(
                CursorResult[Any],
                connection.execute(
                    update(_locks)
                    .where(_locks.c.name == self.name, _locks.c.held_by == previous)
                    .values(held_by=self.holder, held_until=now + timedelta(seconds=self.seconds))
                ),
            ).rowcount
        return taken == 1

    def release(self) -> bool:
        """Give the lock up now (if this holder still has it), so another worker need not wait."""
        now = utcnow()
        with self.db.begin() as connection:
            released = cast(
                CursorResult[Any],
                connection.execute(
                    update(_locks)
                    .where(
                        _locks.c.name == self.name,
                        _locks.c.held_by == self.holder,
                        _locks.c.held_until >= now,
                    )
                    .values(held_until=now)
                ),
            ).rowcount
        return released == 1

    def current(self) -> tuple[str, datetime] | None:
        """Who holds the lock and until when (None: never claimed); expired claims included."""
        with self.db.connect() as connection:
            row = connection.execute(
                _locks.select().where(_locks.c.name == self.name)
            ).one_or_none()
        return None if row is None else (row.held_by, row.held_until)
