"""Cache for batch summaries, progress counts and analytics (dogpile.cache: memory or Redis).

One :class:`SummaryCache` per workspace (``Workspace.cache``). Callers ask for a value by
namespace and key and pass the function that computes it; service functions that change rows
call :meth:`SummaryCache.invalidate` for the namespaces they touched. docs/operations.md has
the user's view; the reasons for the design are here.

Backends (``BATCHNB_CACHE_URL``): ``memory://`` (default) is a bounded dictionary per process
and database, shared by every workspace object on that database. It pickles values like Redis
does, so a caller cannot change a cached list or DataFrame it received, and an unpicklable
value fails in every test, not only in Redis deployments. ``redis://host:port/db`` is shared
by all processes; ``none`` computes every value.

**Invalidation by generation.** Each namespace has a generation token stored in the backend,
and one more token covers all namespaces; both are part of every key. ``invalidate("x")`` is
one write (a new token for ``x``); from then on every process computes keys nobody has
written, so the next read is a miss, and the old entries expire unread (Redis entries carry a
hard expiry just past their time to live). Deleting entries instead would need a keyspace scan
per invalidation and would race with a reader that computed an old value before the change
and stores it after the delete; with generations that late write lands under a dead key.
Tokens are random, not counters, so a token lost to eviction or a Redis restart cannot bring
back a generation whose entries are still stored.

**Progress counts** change as workers finish documents, in the queue's hot path, not through a
service function. Invalidating there would cost a cache write per document and drop every
batch's progress entry whenever any document finishes: the cache would be useless exactly
while people watch progress. So the ``progress`` namespace lives :data:`PROGRESS_TTL_SECONDS`:
however many widgets poll, the database answers at most one progress query per batch per
second per process (across all processes with Redis), and a count is at most a second old.
Service functions that change progress (cancel, retry, delete) still invalidate it at once.

**Analytics follow the data** instead (``get_or_create(..., freshness=...)``, see
:mod:`batchnb.cache.freshness`): a summary costs hundreds of milliseconds, far more than a
version check, so each read asks the database for a cheap version of what the summary reads
and serves the stored summary only while it matches.

**Redis unreachable:** reads fall back to the creator (a miss), a warning goes to
``batchnb.cache``, and Redis is left alone for :data:`REDIS_RETRY_SECONDS`, so an outage costs
one short timeout, not one per read. A failed invalidation is logged; other processes may read
the old value until its time to live ends. Keys start with batchnb's version and a hash of the
database URL: workspaces sharing a Redis never meet, and an upgrade never unpickles old values.

**Hit and miss counts.** Each object counts its own reads (``CacheStats.hits``); with Redis the
counts are also added to two counters shared by every process (``<prefix>:stats:hits`` and
``:misses``), so ``batchnb health``, a fresh process, can show the totals. A hit must stay two
round trips (generation tokens, then the entry), so a read does not send its own count: it is
kept in the process and rides along with the next read's generation lookup, in the same
pipeline (``RedisBackend.generation`` in :mod:`batchnb.cache.backends`). The shared
totals therefore lag by at most the last
read of each running process; :meth:`SummaryCache.stats`, :meth:`SummaryCache.close` and the
interpreter's exit publish that too. Counting never fails a read: a counter Redis refuses
(its key holds something else) is dropped, and counts that could not be sent are kept for the
next attempt (so a connection that breaks mid-pipeline may count a few reads twice).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy.engine import make_url

from batchnb.cache.backends import ALL_NAMESPACES, Backend, make_backend, safe_url
from batchnb.cache.freshness import Freshness, Stamped
from batchnb.config import Settings

T = TypeVar("T")

#: Namespaces used by the service layer.
BATCHES = "batches"
PROGRESS = "progress"
ANALYTICS = "analytics"

#: Time to live of progress counts, which workers change without invalidating (see above).
PROGRESS_TTL_SECONDS = 1.0

#: Namespaces whose default time to live is not ``BATCHNB_CACHE_TTL_SECONDS``.
NAMESPACE_TTL_SECONDS: dict[str, float] = {PROGRESS: PROGRESS_TTL_SECONDS}

#: After a Redis failure, reads skip Redis this long before trying it again.
REDIS_RETRY_SECONDS = 5.0

log = logging.getLogger("batchnb.cache")


@dataclass(frozen=True)
class CacheStats:
    """Hits and misses of one :class:`SummaryCache`, and with Redis of every process.

    A miss is every read whose value was computed: not yet cached, expired, invalidated, cache
    off (``none``) or Redis unreachable. ``hits``, ``misses`` and ``errors`` (failed backend
    calls) are this object's, in this process. ``shared_hits`` and ``shared_misses`` are the
    totals of every process using the same Redis and database, lagging by at most the last
    read of each running process; None for the memory and none backends (nothing is shared)
    and when Redis could not be read.
    """

    backend: str
    hits: int
    misses: int
    errors: int = 0
    shared_hits: int | None = None
    shared_misses: int | None = None

    @property
    def hit_rate(self) -> float | None:
        """This object's hits per read; None before the first read."""
        return _rate(self.hits, self.misses)

    @property
    def shared_hit_rate(self) -> float | None:
        """Every process's hits per read (Redis only); None when unknown or no reads."""
        if self.shared_hits is None or self.shared_misses is None:
            return None
        return _rate(self.shared_hits, self.shared_misses)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "hit_rate": self.hit_rate,
            "shared_hit_rate": self.shared_hit_rate,
        }

    def describe(self) -> str:
        """One line for ``batchnb health``: the totals of all processes when shared, else
        this process's counts, saying so."""
        if self.shared_hits is not None and self.shared_misses is not None:
            return (
                f"{self.backend} {self.shared_hits} hits / {self.shared_misses} misses "
                "(all processes)"
            )
        counts = f"{self.backend} {self.hits} hits / {self.misses} misses"
        if self.backend == "memory":
            return f"{counts} (this process only: each process has its own memory cache)"
        if self.backend == "redis":
            return f"{counts} (this process only: the totals of all processes could not be read)"
        return f"{counts} (caching is off: every read queries the database)"


def _rate(hits: int, misses: int) -> float | None:
    reads = hits + misses
    return None if reads == 0 else hits / reads


class SummaryCache:
    """Cached values by namespace and key, invalidated by namespace.

    Build it with :func:`open_cache` (or use ``Workspace.cache``).

    Parameters
    ----------
    url:
        ``""`` or ``memory://``, ``redis://host:port/db``, or ``none``.
    key_prefix:
        Start of every key; different prefixes never see each other's entries.
    default_ttl:
        Seconds a value lives unless the call or its namespace says otherwise.
    """

    def __init__(self, url: str = "", *, key_prefix: str, default_ttl: float = 300.0) -> None:
        self.url = url
        self.key_prefix = key_prefix
        self.default_ttl = default_ttl
        self._backend = make_backend(url, key_prefix)
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._errors = 0
        self._down_until = 0.0
        # One lock per key read with a freshness, dropped when no thread holds it.
        self._key_locks: weakref.WeakValueDictionary[str, _KeyLock] = weakref.WeakValueDictionary()
        if self._backend is not None and self._backend.shares_counts:
            _counting_caches.add(self)

    @property
    def backend(self) -> str:
        """``memory``, ``redis`` or ``none``."""
        return "none" if self._backend is None else self._backend.name

    def get_or_create(
        self,
        namespace: str,
        key: str,
        creator: Callable[[], T],
        *,
        ttl: float | None = None,
        freshness: Freshness | None = None,
    ) -> T:
        """The cached value of ``key`` in ``namespace``, computed by ``creator`` when missing.

        Parameters
        ----------
        namespace:
            Group of values invalidated together (``"batches"``, ``"progress"``,
            ``"analytics"``).
        key:
            Identifies the value inside the namespace (it is hashed, so any length will do):
            include everything the value depends on, e.g. the filters, page and acting user.
        creator:
            Computes the value; it must be picklable. Its exceptions propagate and nothing is
            cached.
        ttl:
            Seconds the value may be served; default: the namespace's
            (:data:`NAMESPACE_TTL_SECONDS`) or the cache's ``default_ttl``. 0 or less: do not
            cache.
        freshness:
            Serve a stored value only while ``freshness.holds`` its stamp; a value computed
            here is stored with ``freshness.stamp(value)``, replacing the older one (see
            :mod:`batchnb.cache.freshness`). Read the data's version before calling.
        """
        lifetime = self._lifetime(namespace, ttl)
        backend = self._backend
        if backend is None or lifetime <= 0 or time.monotonic() < self._down_until:
            self._count(hit=False)
            return creator()
        if freshness is not None:
            return self._get_or_create_fresh(backend, lifetime, namespace, key, creator, freshness)
        created: list[T] = []
        raised: list[BaseException] = []

        def create() -> T:
            try:
                value = creator()
            except BaseException as exc:
                raised.append(exc)
                raise
            created.append(value)
            return value

        try:
            full_key = self._full_key(backend, namespace, key)
            value = backend.region(lifetime).get_or_create(full_key, create)
        except backend.errors as exc:
            if raised and raised[0] is exc:
                raise
            self._failed(exc, "read")
            self._count(hit=False)
            return created[0] if created else creator()
        self._count(hit=not created)
        return cast(T, value)

    def _get_or_create_fresh(
        self,
        backend: Backend,
        lifetime: float,
        namespace: str,
        key: str,
        creator: Callable[[], T],
        freshness: Freshness,
    ) -> T:
        """:meth:`get_or_create` with a :class:`Freshness`: one entry per key, its stamp beside
        the value. Threads of this process that miss the same key wait for the one computing
        it (as dogpile does for plain values), then serve its value if it holds for them."""
        created: list[T] = []
        try:
            full_key = self._full_key(backend, namespace, key)
            region = backend.region(lifetime)
            found = _current(region.get(full_key), freshness)
            if found is _MISSING:
                with self._key_lock(full_key):
                    found = _current(region.get(full_key), freshness)
                    if found is _MISSING:
                        # The creator's exceptions are not the backend's: they propagate.
                        created.append(_call(creator))
                        region.set(full_key, Stamped(freshness.stamp(created[0]), created[0]))
        except _CreatorError as wrapped:
            raise wrapped.error from None
        except backend.errors as exc:
            self._failed(exc, "read")
            self._count(hit=False)
            return created[0] if created else creator()
        self._count(hit=not created)
        return created[0] if created else cast(T, found)

    def _key_lock(self, full_key: str) -> _KeyLock:
        with self._lock:
            lock = self._key_locks.get(full_key)
            if lock is None:
                lock = _KeyLock()
                self._key_locks[full_key] = lock
            return lock

    def invalidate(self, *namespaces: str) -> None:
        """Make the next read of these namespaces (no argument: of every namespace) a miss."""
        backend = self._backend
        if backend is None:
            return
        try:
            backend.bump(namespaces or (ALL_NAMESPACES,))
        except backend.errors as exc:
            self._failed(exc, f"invalidate {', '.join(namespaces) or 'all namespaces'}")
        else:
            self._down_until = 0.0  # it answered: reads may use it again

    def stats(self) -> CacheStats:
        """Hits, misses and backend errors counted by this object, and with Redis the totals
        of every process (one round trip, which also publishes this object's counts)."""
        shared: tuple[int | None, int | None] | None = None
        backend = self._backend
        if backend is not None and time.monotonic() >= self._down_until:
            try:
                shared = backend.shared_counts()
            except backend.errors as exc:
                self._failed(exc, "read of the hit and miss counts")
        shared_hits, shared_misses = shared or (None, None)
        with self._lock:
            return CacheStats(
                self.backend, self._hits, self._misses, self._errors, shared_hits, shared_misses
            )

    def check(self) -> str | None:
        """None when the backend answers, else what is wrong (for ``batchnb health``)."""
        backend = self._backend
        if backend is None:
            return None
        try:
            backend.ping()
        except backend.errors as exc:
            self._failed(exc, "health check")
            return (
                f"the {backend.name} cache at {safe_url(self.url)} is unreachable ({exc}); "
                "reads fall back to the database: start Redis or fix BATCHNB_CACHE_URL"
            )
        self._down_until = 0.0
        return None

    def close(self) -> None:
        """Publish the last counts and release the backend's connections (the cache still
        works; it reconnects)."""
        if self._backend is not None:
            self.publish_counts()
            self._backend.close()

    def publish_counts(self) -> None:
        """Add the reads not yet counted in Redis to the shared totals (never raises).

        Reads publish the counts of earlier reads; this sends the last ones. It runs on
        :meth:`close` and when the interpreter exits.
        """
        backend = self._backend
        if backend is None or time.monotonic() < self._down_until:
            return
        try:
            backend.publish_counts()
        except backend.errors as exc:
            self._failed(exc, "publishing of the hit and miss counts")

    def _lifetime(self, namespace: str, ttl: float | None) -> float:
        if ttl is not None:
            return float(ttl)
        return NAMESPACE_TTL_SECONDS.get(namespace, self.default_ttl)

    def _full_key(self, backend: Backend, namespace: str, key: str) -> str:
        digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        return f"{self.key_prefix}:{namespace}:{backend.generation(namespace)}:{digest}"

    def _count(self, *, hit: bool) -> None:
        with self._lock:
            if hit:
                self._hits += 1
            else:
                self._misses += 1
        if self._backend is not None:
            self._backend.count(hit=hit)

    def _failed(self, exc: BaseException, action: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._errors += 1
            # One warning per outage, not one per invalidation while Redis stays away.
            level = logging.DEBUG if now < self._down_until else logging.WARNING
            self._down_until = now + REDIS_RETRY_SECONDS
        log.log(
            level,
            "cache %s at %s failed (%s: %s); using the database directly for %.0fs",
            action,
            safe_url(self.url),
            type(exc).__name__,
            exc,
            REDIS_RETRY_SECONDS,
        )


_MISSING = object()


class _KeyLock:
    """A lock that a weak dictionary can hold (``threading.Lock`` takes no weak reference)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class _CreatorError(Exception):
    """Carries a creator's exception past the handler of backend errors."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _call(creator: Callable[[], T]) -> T:
    try:
        return creator()
    except Exception as exc:
        raise _CreatorError(exc) from exc


def _current(stored: Any, freshness: Freshness) -> Any:
    """The value of a stored entry whose stamp still holds, else :data:`_MISSING`."""
    if isinstance(stored, Stamped) and freshness.holds(stored.stamp):
        return stored.value
    return _MISSING


#: Caches whose counts go to Redis: the last reads' counts are published when Python exits
#: (command-line processes never close their workspace).
_counting_caches: weakref.WeakSet[SummaryCache] = weakref.WeakSet()


@atexit.register
def _publish_counts_at_exit() -> None:
    for cache in list(_counting_caches):
        backend = cache._backend
        if backend is None or time.monotonic() < cache._down_until:
            continue
        try:
            backend.publish_counts()
        except backend.errors as exc:
            # The process is leaving: a warning would reach nobody who can act on it.
            log.debug("cache counts not published at exit (%s: %s)", type(exc).__name__, exc)


def cache_key_prefix(database_url: str) -> str:
    """Key prefix for a workspace: batchnb's version and a hash of its database.

    The password is left out (the same database reached with other credentials shares the
    cache) and a SQLite path is made absolute (the same relative path from two folders names
    two databases).
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        url = url.set(database=str(Path(url.database).resolve()))
    identity = url.render_as_string(hide_password=True)
    digest = hashlib.blake2b(identity.encode(), digest_size=8).hexdigest()
    return f"batchnb:{_package_version()}:{digest}"


def _package_version() -> str:
    try:
        return version("batchnb")
    except PackageNotFoundError:
        return "dev"


def open_cache(settings: Settings) -> SummaryCache:
    """The cache described by ``cache_url`` and ``cache_ttl_seconds``, keyed by the database."""
    return SummaryCache(
        settings.cache_url,
        key_prefix=cache_key_prefix(settings.database_url),
        default_ttl=settings.cache_ttl_seconds,
    )
