"""The maintenance locks' table (migration 0009): who does a periodic repair job right now.

A lock here is a lease row, not a database lock: a worker claims it with one conditional
UPDATE (or the INSERT of the row, the first time) that succeeds only when the row is free or
its ``held_until`` has passed, and commits at once. Nothing is held open between statements,
so a holder that is frozen, killed or cut off loses the lock when its time runs out.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from batchnb.db.base import Base, UTCDateTime


class MaintenanceLock(Base):
    """One named lock (e.g. ``recovery``): its holder and until when the holder may keep it."""

    __tablename__ = "maintenance_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    held_by: Mapped[str] = mapped_column(String(255), nullable=False)
    held_until: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
