"""Values that follow the data: each cached value carries a stamp of the data it was computed
from, and a read serves it only while the data still carries that stamp.

Invalidation (:meth:`SummaryCache.invalidate`) needs the code that changes rows to call the
cache. Workers finish documents in the queue's hot path, in other processes and on other
machines, where a cache write per document would cost time and, with the in-process backend,
reach nobody. A *version* turns this around: the reader asks the database for a cheap
fingerprint of what the value depends on (a few index lookups, well under a millisecond), and
a value stored with another fingerprint is recomputed. Nothing is written anywhere when data
changes, and every process, whatever its cache backend, sees every committed change at its
next read.

The reader must take the version *before* computing: a change committed after that moment then
gives a newer version, so a value that missed it is never served once the change is visible.

A value is stored under its key alone, with its stamp beside it, so a new version replaces the
old entry instead of piling up entries under dead keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Freshness(Protocol):
    """Decides whether a stored value still matches the data (see the module's docstring)."""

    def holds(self, stamp: Any) -> bool:
        """Whether a value stored with ``stamp`` may be served now."""
        ...

    def stamp(self, value: Any) -> Any:
        """The stamp to store with ``value``, computed now (picklable, compared with ``==``)."""
        ...


@dataclass(frozen=True)
class DataVersion:
    """The simplest freshness: a value is current while the data's version is the one it was
    computed under (``token``: anything picklable, compared with ``==``)."""

    token: Any

    def holds(self, stamp: Any) -> bool:
        return bool(stamp == self.token)

    def stamp(self, value: Any) -> Any:
        return self.token


@dataclass(frozen=True)
class Stamped:
    """What the cache stores for a value read with a :class:`Freshness`."""

    stamp: Any
    value: Any
