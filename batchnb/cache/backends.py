"""The storage behind :class:`batchnb.cache.summary.SummaryCache`: in-process or Redis.

A backend keeps dogpile regions (one per time to live), the generation tokens that make
invalidation one write, and (Redis) the hit and miss counters shared by every process. The
design and its reasons are in :mod:`batchnb.cache.summary`.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from dogpile.cache import make_region, register_backend
from dogpile.cache.backends.redis import RedisBackend as DogpileRedisBackend
from dogpile.cache.region import CacheRegion

from batchnb.errors import ConfigurationError, MissingDependencyError

log = logging.getLogger("batchnb.cache")

#: Values kept by the in-process backend, per database.
MEMORY_MAX_ENTRIES = 2048

#: Redis connect and read timeout: a cache that answers slower than this is no help.
REDIS_TIMEOUT_SECONDS = 0.5

#: Seconds a Redis entry outlives its time to live (dogpile checks the exact age itself).
REDIS_EXPIRY_MARGIN_SECONDS = 1


class LruDict:
    """The in-process cache's storage: a thread-safe dict holding at most ``limit`` values."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._data: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            if key not in self._data:
                return default
            self._data.move_to_end(key)
            return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._limit:
                self._data.popitem(last=False)

    def pop(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._data.pop(key, default)

    def discard_prefix(self, prefix: str) -> None:
        with self._lock:
            for key in [k for k in self._data if k.startswith(prefix)]:
                del self._data[key]

    def __len__(self) -> int:
        return len(self._data)


class MemoryStore:
    """Entries and generation counters of one database's in-process cache."""

    def __init__(self) -> None:
        self.entries = LruDict(MEMORY_MAX_ENTRIES)
        self.generations: dict[str, int] = {}
        self.lock = threading.Lock()


_memory_stores: weakref.WeakValueDictionary[str, MemoryStore] = weakref.WeakValueDictionary()
_memory_stores_lock = threading.Lock()

ALL_NAMESPACES = "*"  # the generation that covers every namespace


class Backend:
    """What SummaryCache needs from a backend: regions, generations, a health check."""

    name = ""
    errors: tuple[type[BaseException], ...] = ()
    #: Whether hits and misses are also counted for all processes (:meth:`shared_counts`).
    shares_counts = False

    def __init__(self) -> None:
        self._regions: dict[float, CacheRegion] = {}
        self._regions_lock = threading.Lock()

    def region(self, ttl: float) -> CacheRegion:
        """The dogpile region whose entries live ``ttl`` seconds (one per distinct ttl)."""
        region = self._regions.get(ttl)
        if region is None:
            with self._regions_lock:
                region = self._regions.get(ttl)
                if region is None:
                    region = self._make_region(ttl)
                    self._regions[ttl] = region
        return region

    def _make_region(self, ttl: float) -> CacheRegion:
        raise NotImplementedError

    def generation(self, namespace: str) -> str:
        """The token naming the current generation of ``namespace`` (and of all namespaces)."""
        raise NotImplementedError

    def bump(self, namespaces: Iterable[str]) -> None:
        """Start new generations (``ALL_NAMESPACES`` for every namespace)."""
        raise NotImplementedError

    def ping(self) -> None:
        """Raise one of :attr:`errors` when the backend cannot be reached."""

    def count(self, *, hit: bool) -> None:
        """Add one read to the totals shared by all processes (if the backend keeps any)."""

    def publish_counts(self) -> None:
        """Send the reads counted but not yet added to the shared totals."""

    def shared_counts(self) -> tuple[int | None, int | None] | None:
        """Hits and misses of every process (after publishing this one's); None if not shared."""
        return None

    def close(self) -> None:
        """Release connections."""


class MemoryBackend(Backend):
    name = "memory"

    def __init__(self, key_prefix: str) -> None:
        super().__init__()
        self._prefix = key_prefix
        with _memory_stores_lock:
            store = _memory_stores.get(key_prefix)
            if store is None:
                store = MemoryStore()
                _memory_stores[key_prefix] = store
        self._store = store

    def _make_region(self, ttl: float) -> CacheRegion:
        return make_region().configure(
            "dogpile.cache.memory_pickle",
            expiration_time=ttl,
            arguments={"cache_dict": self._store.entries},
        )

    def generation(self, namespace: str) -> str:
        generations = self._store.generations
        return f"{generations.get(ALL_NAMESPACES, 0)}.{generations.get(namespace, 0)}"

    def bump(self, namespaces: Iterable[str]) -> None:
        store = self._store
        with store.lock:
            for namespace in namespaces:
                store.generations[namespace] = store.generations.get(namespace, 0) + 1
                # Old generations are never read again: free their memory now.
                store.entries.discard_prefix(
                    self._prefix if namespace == ALL_NAMESPACES else f"{self._prefix}:{namespace}:"
                )


class RedisEntries(DogpileRedisBackend):
    """dogpile's Redis backend, writing expiring entries with ``SET EX`` (redis-py deprecates
    the ``SETEX`` command dogpile uses, which warns on every write)."""

    def set_serialized(self, key: str, value: bytes) -> None:
        self.writer_client.set(key, value, ex=self.redis_expiration_time or None)

    def set_serialized_multi(self, mapping: Mapping[str, bytes]) -> None:
        pipe = self.writer_client.pipeline()
        for key, value in mapping.items():
            pipe.set(key, value, ex=self.redis_expiration_time or None)
        pipe.execute()


register_backend("batchnb.redis", __name__, "RedisEntries")


class RedisBackend(Backend):
    name = "redis"
    shares_counts = True

    def __init__(self, url: str, key_prefix: str) -> None:
        super().__init__()
        try:
            import redis
        except ModuleNotFoundError:
            raise MissingDependencyError("redis", "redis", "the Redis cache (cache_url)") from None
        self.errors = (redis.RedisError,)
        try:
            self._pool = redis.ConnectionPool.from_url(
                url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
        except ValueError as exc:
            raise ConfigurationError(
                f"BATCHNB_CACHE_URL {url!r} is not a Redis URL ({exc}): use redis://host:port/db"
            ) from None
        self._client = redis.Redis(connection_pool=self._pool)
        self._prefix = key_prefix
        self._stats_keys = (f"{key_prefix}:stats:hits", f"{key_prefix}:stats:misses")
        # Reads counted here and not yet added to the shared counters: (hits, misses).
        self._unpublished = (0, 0)
        self._unpublished_lock = threading.Lock()

    def _make_region(self, ttl: float) -> CacheRegion:
        # dogpile's own expiry is soft (it compares the stored creation time); the Redis
        # expiry makes entries of old generations disappear instead of piling up.
        return make_region().configure(
            "batchnb.redis",
            expiration_time=ttl,
            arguments={
                "connection_pool": self._pool,
                "redis_expiration_time": math.ceil(ttl) + REDIS_EXPIRY_MARGIN_SECONDS,
            },
        )

    def _generation_key(self, namespace: str) -> str:
        return f"{self._prefix}:generation:{namespace}"

    def generation(self, namespace: str) -> str:
        keys = [self._generation_key(ALL_NAMESPACES), self._generation_key(namespace)]
        counts = self._take_unpublished()
        if counts == (0, 0):
            tokens = self._client.mget(keys)
        else:
            # The earlier reads' counts travel in this read's round trip: counting costs a hit
            # a few bytes, not a third round trip.
            pipe = self._counting_pipeline(counts)
            pipe.mget(keys)
            tokens = self._execute(pipe, counts)[0]
        if None in tokens:
            # First use (or the token was evicted): start a generation nobody has used. NX
            # keeps a token another process set meanwhile.
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.set(key, _new_token(), nx=True)
            pipe.mget(keys)
            tokens = pipe.execute()[-1]
        return ".".join(
            token.decode() if isinstance(token, bytes) else str(token) for token in tokens
        )

    def bump(self, namespaces: Iterable[str]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for namespace in namespaces:
            pipe.set(self._generation_key(namespace), _new_token())
        pipe.execute()

    def ping(self) -> None:
        self._client.ping()

    def count(self, *, hit: bool) -> None:
        with self._unpublished_lock:
            hits, misses = self._unpublished
            self._unpublished = (hits + 1, misses) if hit else (hits, misses + 1)

    def publish_counts(self) -> None:
        counts = self._take_unpublished()
        if counts != (0, 0):
            self._execute(self._counting_pipeline(counts), counts)

    def shared_counts(self) -> tuple[int | None, int | None]:
        counts = self._take_unpublished()
        pipe = self._counting_pipeline(counts)
        pipe.mget(self._stats_keys)
        hits, misses = self._execute(pipe, counts)[0]
        return _counter(hits), _counter(misses)

    def close(self) -> None:
        self._pool.disconnect()

    def _take_unpublished(self) -> tuple[int, int]:
        with self._unpublished_lock:
            counts, self._unpublished = self._unpublished, (0, 0)
        return counts

    def _counting_pipeline(self, counts: tuple[int, int]) -> Any:
        """A pipeline starting with the increments of ``counts`` (queue more commands on it)."""
        pipe = self._client.pipeline(transaction=False)
        for key, amount in zip(self._stats_keys, counts, strict=True):
            if amount:
                pipe.incrby(key, amount)
        return pipe

    def _execute(self, pipe: Any, counts: tuple[int, int]) -> list[Any]:
        """Run a :meth:`_counting_pipeline`; the replies of the commands queued after the counts.

        An increment Redis refuses (its key holds something that is not a number) is dropped:
        counting must never fail a read. When Redis cannot be reached the counts are kept for
        the next attempt and the error propagates, as it would without counting.
        """
        increments = sum(1 for amount in counts if amount)
        try:
            replies = pipe.execute(raise_on_error=False)
        except BaseException:
            with self._unpublished_lock:
                hits, misses = self._unpublished
                self._unpublished = (hits + counts[0], misses + counts[1])
            raise
        for reply in replies[:increments]:
            if isinstance(reply, Exception):
                log.debug("cache counts dropped: Redis refused the increment (%s)", reply)
        for reply in replies[increments:]:
            if isinstance(reply, Exception):
                raise reply
        return list(replies[increments:])


def _counter(raw: Any) -> int | None:
    """A shared counter's value: 0 when it does not exist yet, None when it is not a number."""
    if raw is None:
        return 0
    try:
        return int(raw)
    except ValueError:
        return None


def _new_token() -> str:
    return uuid.uuid4().hex[:16]


def make_backend(url: str, key_prefix: str) -> Backend | None:
    scheme = url.split("://", 1)[0].lower() if "://" in url else url.strip().lower()
    if scheme in ("", "memory"):
        return MemoryBackend(key_prefix)
    if scheme == "none":
        return None
    if scheme in ("redis", "rediss", "unix"):
        return RedisBackend(url, key_prefix)
    raise ConfigurationError(
        f"BATCHNB_CACHE_URL {safe_url(url)!r} is not a cache URL: use memory:// (default), "
        "redis://host:port/db or none"
    )


def safe_url(url: str) -> str:
    """The URL without its password (it goes into logs and health output)."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
