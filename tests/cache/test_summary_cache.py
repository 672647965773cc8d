"""The summary cache on the memory and the real Redis backend, and its place in `batchnb health`."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from batchnb.cache import backends as cache_backends
from batchnb.cache import summary as cache_module
from batchnb.cache.summary import (
    NAMESPACE_TTL_SECONDS,
    PROGRESS_TTL_SECONDS,
    SummaryCache,
    cache_key_prefix,
    open_cache,
)
from batchnb.cli import main
from batchnb.db.models import ExtractionBatch
from batchnb.errors import ConfigurationError
from batchnb.services.health import check_health
from batchnb.services.workspace import Workspace, open_workspace

#: A Redis URL nothing listens on (port 1 refuses connections at once).
CLOSED_REDIS = "redis://127.0.0.1:1/0"

MakeCache = Callable[..., SummaryCache]


def _delete_prefix(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["memory", "redis"])
def cache_url(request: pytest.FixtureRequest) -> str:
    """Every cache test runs on the in-process dictionary and on the real Redis."""
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def make_cache(cache_url: str) -> Iterator[MakeCache]:
    """Build caches under a key prefix unique to this test (Redis is shared by all tests)."""
    prefix = f"batchnb-test:{uuid.uuid4().hex[:12]}"
    caches: list[SummaryCache] = []

    def make(*, suffix: str = "", default_ttl: float = 60.0) -> SummaryCache:
        cache = SummaryCache(cache_url, key_prefix=prefix + suffix, default_ttl=default_ttl)
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        cache.close()
    if cache_url.startswith("redis"):
        _delete_prefix(cache_url, prefix)


class Source:
    """A value that changes, and a creator that counts how often it was asked."""

    def __init__(self, value: object = 1) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        return self.value


def test_counts_hits_and_misses(make_cache: MakeCache, cache_url: str) -> None:
    cache = make_cache()
    source = Source({"pending": 3})
    assert cache.get_or_create("batches", "summary:1", source) == {"pending": 3}
    assert cache.get_or_create("batches", "summary:1", source) == {"pending": 3}
    assert cache.get_or_create("batches", "summary:1", source) == {"pending": 3}
    assert cache.get_or_create("batches", "summary:2", source) == {"pending": 3}
    assert source.calls == 2
    stats = cache.stats()
    shared = None if cache_url == "memory://" else 2  # Redis: every process's (only this one)
    assert stats.backend == ("memory" if cache_url == "memory://" else "redis")
    assert (stats.hits, stats.misses, stats.errors) == (2, 2, 0)
    assert stats.as_dict() == {
        "backend": stats.backend,
        "hits": 2,
        "misses": 2,
        "errors": 0,
        "shared_hits": shared,
        "shared_misses": shared,
        "hit_rate": 0.5,
        "shared_hit_rate": None if shared is None else 0.5,
    }


def test_a_change_is_visible_on_the_next_read_after_invalidation(make_cache: MakeCache) -> None:
    cache = make_cache()
    source = Source(10)
    assert cache.get_or_create("progress", "batch:7", source, ttl=60) == 10
    source.value = 11
    assert cache.get_or_create("progress", "batch:7", source, ttl=60) == 10  # still cached
    cache.invalidate("progress")
    assert cache.get_or_create("progress", "batch:7", source, ttl=60) == 11
    assert source.calls == 2


def test_invalidating_one_namespace_leaves_the_others(make_cache: MakeCache) -> None:
    cache = make_cache()
    batches, analytics = Source("b1"), Source("a1")
    cache.get_or_create("batches", "page:1", batches)
    cache.get_or_create("analytics", "summary", analytics)
    batches.value, analytics.value = "b2", "a2"
    cache.invalidate("batches")
    assert cache.get_or_create("batches", "page:1", batches) == "b2"
    assert cache.get_or_create("analytics", "summary", analytics) == "a1"
    assert (batches.calls, analytics.calls) == (2, 1)


def test_invalidate_without_namespaces_clears_every_namespace(make_cache: MakeCache) -> None:
    cache = make_cache()
    sources = {name: Source(f"{name}-1") for name in ("batches", "progress", "analytics")}
    for name, source in sources.items():
        cache.get_or_create(name, "k", source, ttl=60)
        source.value = f"{name}-2"
    cache.invalidate()
    for name, source in sources.items():
        assert cache.get_or_create(name, "k", source, ttl=60) == f"{name}-2"


def test_invalidation_by_another_cache_object_is_seen(make_cache: MakeCache) -> None:
    """Two objects on one database: two workspaces in a process, or two processes on Redis."""
    reader, writer = make_cache(), make_cache()
    source = Source("old")
    assert reader.get_or_create("batches", "page:1", source) == "old"
    assert writer.get_or_create("batches", "page:1", Source("unused")) == "old"  # shared entry
    source.value = "new"
    writer.invalidate("batches")
    assert reader.get_or_create("batches", "page:1", source) == "new"


def test_invalidation_from_another_process_is_seen_through_redis(
    redis_url: str, tmp_path: Path
) -> None:
    prefix = f"batchnb-test:{uuid.uuid4().hex[:12]}"
    cache = SummaryCache(redis_url, key_prefix=prefix)
    try:
        source = Source("old")
        assert cache.get_or_create("batches", "page:1", source) == "old"
        source.value = "new"
        script = (
            "from batchnb.cache.summary import SummaryCache\n"
            f"SummaryCache({redis_url!r}, key_prefix={prefix!r}).invalidate('batches')\n"
        )
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
        assert cache.get_or_create("batches", "page:1", source) == "new"
        assert source.calls == 2
    finally:
        cache.close()
        _delete_prefix(redis_url, prefix)


def _shared(cache: SummaryCache) -> tuple[int | None, int | None]:
    stats = cache.stats()
    return stats.shared_hits, stats.shared_misses


def test_redis_counts_are_seen_by_every_cache_object(redis_url: str) -> None:
    """Two objects with one prefix stand for two processes sharing a Redis."""
    prefix = f"batchnb-test:{uuid.uuid4().hex[:12]}"
    kernel = SummaryCache(redis_url, key_prefix=prefix)
    health = SummaryCache(redis_url, key_prefix=prefix)
    try:
        kernel.get_or_create("batches", "page:1", Source("v"))  # miss
        kernel.get_or_create("batches", "page:1", Source("unused"))  # hit
        # A read sends the counts of the earlier reads with its own first round trip, so the
        # miss is shared already and the last hit is still on its way.
        assert _shared(health) == (0, 1)
        assert _shared(kernel) == (1, 1)  # stats() sends the rest
        assert _shared(health) == (1, 1)
        assert (health.stats().hits, health.stats().misses) == (0, 0)  # its own: none
        health.get_or_create("batches", "page:1", Source("unused"))  # hit
        kernel.get_or_create("analytics", "summary", Source("a"))  # miss
        kernel.close()  # closing sends the last count
        assert _shared(health) == (2, 2)
        assert (kernel.stats().hits, kernel.stats().misses) == (1, 2)
    finally:
        kernel.close()
        health.close()
        _delete_prefix(redis_url, prefix)


def test_a_process_sends_its_last_counts_when_it_exits(redis_url: str) -> None:
    """Command-line processes never close their workspace: the counts still arrive."""
    prefix = f"batchnb-test:{uuid.uuid4().hex[:12]}"
    cache = SummaryCache(redis_url, key_prefix=prefix)
    script = (
        "from batchnb.cache.summary import SummaryCache\n"
        f"cache = SummaryCache({redis_url!r}, key_prefix={prefix!r})\n"
        "for _ in range(3):\n"
        "    cache.get_or_create('batches', 'page:1', lambda: 1)\n"
    )
    try:
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
        assert _shared(cache) == (2, 1)
    finally:
        cache.close()
        _delete_prefix(redis_url, prefix)


def test_a_counter_redis_refuses_never_fails_a_read(redis_url: str) -> None:
    import redis

    prefix = f"batchnb-test:{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(redis_url)
    client.set(f"{prefix}:stats:hits", "not a number")  # INCRBY on it is an error
    cache = SummaryCache(redis_url, key_prefix=prefix)
    try:
        source = Source("v")
        for _ in range(4):
            assert cache.get_or_create("batches", "page:1", source) == "v"
        assert source.calls == 1  # every later read was a hit from Redis
        stats = cache.stats()
        assert (stats.hits, stats.misses, stats.errors) == (3, 1, 0)
        assert (stats.shared_hits, stats.shared_misses) == (None, 1)
        assert stats.describe() == (
            "redis 3 hits / 1 misses "
            "(this process only: the totals of all processes could not be read)"
        )
    finally:
        cache.close()
        client.close()
        _delete_prefix(redis_url, prefix)


def test_counts_wait_for_redis_to_come_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "REDIS_RETRY_SECONDS", 0.0)  # every call tries Redis
    cache = SummaryCache(CLOSED_REDIS, key_prefix=f"batchnb-test:{uuid.uuid4().hex[:12]}")
    cache.get_or_create("batches", "page:1", Source("db"))
    cache.get_or_create("batches", "page:1", Source("db"))
    stats = cache.stats()
    assert (stats.misses, stats.errors) == (2, 3)
    assert (stats.shared_hits, stats.shared_misses) == (None, None)
    cache.publish_counts()  # fails and is logged, never raised
    cache.close()
    assert cache.stats().errors == 6  # publish_counts, close and stats() tried and failed
    backend = cache._backend  # the counts are kept for when Redis answers again
    assert isinstance(backend, cache_backends.RedisBackend)
    assert backend._take_unpublished() == (0, 2)


def test_values_expire_after_their_ttl(make_cache: MakeCache) -> None:
    cache = make_cache()
    source = Source("first")
    cache.get_or_create("analytics", "daily", source, ttl=0.3)
    source.value = "second"
    assert cache.get_or_create("analytics", "daily", source, ttl=0.3) == "first"
    time.sleep(0.4)
    assert cache.get_or_create("analytics", "daily", source, ttl=0.3) == "second"
    assert source.calls == 2


def test_progress_counts_live_one_second_by_default(make_cache: MakeCache) -> None:
    """Workers change progress without invalidating: a short namespace TTL keeps it fresh."""
    assert NAMESPACE_TTL_SECONDS["progress"] == PROGRESS_TTL_SECONDS <= 1.0
    cache = make_cache(default_ttl=600)
    progress, batches = Source(1), Source("b")
    cache.get_or_create("progress", "batch:1", progress)
    cache.get_or_create("batches", "page:1", batches)
    progress.value, batches.value = 2, "b2"
    time.sleep(PROGRESS_TTL_SECONDS + 0.1)
    assert cache.get_or_create("progress", "batch:1", progress) == 2
    assert cache.get_or_create("batches", "page:1", batches) == "b"  # default ttl: still cached


def test_key_prefixes_isolate_workspaces(make_cache: MakeCache) -> None:
    one = make_cache(suffix=":one")
    two = make_cache(suffix=":two")
    assert one.get_or_create("batches", "page:1", Source("one")) == "one"
    assert two.get_or_create("batches", "page:1", Source("two")) == "two"
    two.invalidate()
    assert one.get_or_create("batches", "page:1", Source("changed")) == "one"
    assert one.stats().hits == 1


def test_a_failing_creator_propagates_and_caches_nothing(make_cache: MakeCache) -> None:
    cache = make_cache()

    def broken() -> object:
        raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError):
        cache.get_or_create("analytics", "summary", broken)
    assert cache.get_or_create("analytics", "summary", Source("ok")) == "ok"


def test_readers_get_copies_not_the_cached_object(make_cache: MakeCache) -> None:
    cache = make_cache()
    first: list[int] = cache.get_or_create("batches", "ids", lambda: [1, 2, 3])
    first.append(4)
    assert cache.get_or_create("batches", "ids", lambda: [9]) == [1, 2, 3]


def test_dataframes_are_cached(make_cache: MakeCache) -> None:
    pd = pytest.importorskip("pandas")
    cache = make_cache()
    frame = pd.DataFrame({"queue": ["a", "b"], "documents": [3, 4]})
    cache.get_or_create("analytics", "volume", lambda: frame)
    cached = cache.get_or_create("analytics", "volume", lambda: pd.DataFrame())
    pd.testing.assert_frame_equal(cached, frame)


def test_the_none_backend_always_computes() -> None:
    cache = SummaryCache("none", key_prefix="unused")
    source = Source("v")
    for _ in range(3):
        assert cache.get_or_create("batches", "page:1", source) == "v"
    cache.invalidate("batches")
    assert source.calls == 3
    assert cache.stats().as_dict()["backend"] == "none"
    assert (cache.stats().hits, cache.stats().misses) == (0, 3)
    assert cache.check() is None


def test_unreachable_redis_falls_back_to_the_creator(caplog: pytest.LogCaptureFixture) -> None:
    cache = SummaryCache(CLOSED_REDIS, key_prefix=f"batchnb-test:{uuid.uuid4().hex[:12]}")
    source = Source("from the database")
    with caplog.at_level(logging.WARNING, logger="batchnb.cache"):
        assert cache.get_or_create("batches", "page:1", source) == "from the database"
        assert cache.get_or_create("batches", "page:1", source) == "from the database"
        cache.invalidate("batches")  # logged, not raised
    assert source.calls == 2
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (0, 2)
    # The second read skipped Redis (retry pause); the invalidation still tried, and failed.
    assert stats.errors == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one warning per outage
    assert warnings[0].name == "batchnb.cache"
    assert "127.0.0.1:1" in warnings[0].getMessage()
    problem = cache.check()
    assert problem is not None and "unreachable" in problem and "BATCHNB_CACHE_URL" in problem


def test_redis_is_tried_again_after_the_retry_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "REDIS_RETRY_SECONDS", 0.0)
    cache = SummaryCache(CLOSED_REDIS, key_prefix=f"batchnb-test:{uuid.uuid4().hex[:12]}")
    for _ in range(3):
        assert cache.get_or_create("batches", "page:1", Source("db")) == "db"
    assert cache.stats().errors == 4  # three reads, and stats() asking for the shared counts


def test_the_in_process_cache_keeps_a_bounded_number_of_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cache_backends, "MEMORY_MAX_ENTRIES", 3)
    cache = SummaryCache("memory://", key_prefix=f"bounded-{uuid.uuid4().hex}")
    for index in range(5):
        cache.get_or_create("batches", f"page:{index}", Source(index))
    source = Source("recomputed")
    assert cache.get_or_create("batches", "page:4", source) == 4  # recent: kept
    assert cache.get_or_create("batches", "page:0", source) == "recomputed"  # oldest: dropped


def test_an_unknown_cache_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="redis://host:port/db"):
        SummaryCache("memcached://localhost", key_prefix="x")


def test_key_prefix_identifies_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = cache_key_prefix("postgresql+psycopg://app:secret@db:5432/batches")
    same = cache_key_prefix("postgresql+psycopg://app:other@db:5432/batches")
    other = cache_key_prefix("postgresql+psycopg://app:secret@db:5432/other")
    assert one == same != other
    assert "secret" not in one
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    relative = cache_key_prefix("sqlite:///a/batchnb.db")
    assert relative == cache_key_prefix(f"sqlite:///{tmp_path / 'a' / 'batchnb.db'}")
    monkeypatch.chdir(tmp_path / "a")
    assert cache_key_prefix("sqlite:///a/batchnb.db") != relative


@pytest.fixture
def cached_workspace(tmp_path: Path, cache_url: str) -> Iterator[Workspace]:
    ws = open_workspace(home=str(tmp_path / "cache-home"), cache_url=cache_url)
    yield ws
    prefix = ws.cache.key_prefix
    ws.close()  # first: closing sends the last counts to Redis
    if cache_url.startswith("redis"):
        _delete_prefix(cache_url, prefix)


def _count_batches(workspace: Workspace) -> int:
    with workspace.db.read() as session:
        return session.scalar(select(func.count()).select_from(ExtractionBatch)) or 0


def test_workspace_cache_serves_database_reads_until_invalidated(
    cached_workspace: Workspace,
) -> None:
    ws = cached_workspace
    assert ws.cache is ws.cache  # one cache per workspace
    assert ws.cache.key_prefix == cache_key_prefix(ws.settings.database_url)

    def count() -> int:
        return ws.cache.get_or_create("batches", "count", lambda: _count_batches(ws))

    assert count() == 0
    with ws.db.write() as session:
        session.add(ExtractionBatch(name="new", owner="ana", status="pending"))
    assert count() == 0  # served from the cache
    ws.cache.invalidate("batches")
    assert count() == 1


def test_open_cache_reads_the_settings(cached_workspace: Workspace) -> None:
    cache = open_cache(cached_workspace.settings)
    assert cache.default_ttl == cached_workspace.settings.cache_ttl_seconds
    assert cache.backend == cached_workspace.cache.backend


def test_health_reports_cache_stats(cached_workspace: Workspace) -> None:
    ws = cached_workspace
    ws.cache.get_or_create("batches", "k", lambda: 1)
    ws.cache.get_or_create("batches", "k", lambda: 2)
    report = check_health(ws)
    assert report.cache is not None
    assert (report.cache.hits, report.cache.misses) == (1, 1)
    assert report.as_dict()["cache"]["hits"] == 1
    shared = None if ws.cache.backend == "memory" else 1
    assert (report.cache.shared_hits, report.cache.shared_misses) == (shared, shared)
    assert report.healthy


def test_health_reports_an_unreachable_cache(tmp_path: Path) -> None:
    ws = open_workspace(home=str(tmp_path / "down"), cache_url=CLOSED_REDIS)
    try:
        report = check_health(ws)
    finally:
        ws.close()
    assert not report.healthy
    assert any("cache" in problem and "unreachable" in problem for problem in report.problems)


def test_health_command_prints_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["health"], catch_exceptions=False)
    assert result.exit_code == 0
    assert (
        "cache:           memory 0 hits / 0 misses "
        "(this process only: each process has its own memory cache)\n"
    ) in result.stdout
    payload = json.loads(runner.invoke(main, ["health", "--json"], catch_exceptions=False).stdout)
    assert payload["cache"] == {
        "backend": "memory",
        "hits": 0,
        "misses": 0,
        "errors": 0,
        "shared_hits": None,
        "shared_misses": None,
        "hit_rate": None,
        "shared_hit_rate": None,
    }
    monkeypatch.setenv("BATCHNB_CACHE_URL", CLOSED_REDIS)
    down = runner.invoke(main, ["health"], catch_exceptions=False)
    assert down.exit_code == 1
    assert (
        "cache:           redis 0 hits / 0 misses "
        "(this process only: the totals of all processes could not be read)\n"
    ) in down.stdout
    assert "PROBLEM: the redis cache at redis://127.0.0.1:1/0 is unreachable" in down.stdout


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_health_command_shows_the_counts_of_every_process(
    database: str,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """`batchnb health` is a fresh process: with Redis it still sees what others counted."""
    monkeypatch.setenv("BATCHNB_HOME", str(tmp_path / "shared-home"))
    if database == "postgresql":
        monkeypatch.setenv("BATCHNB_DATABASE_URL", request.getfixturevalue("postgres_url"))
    monkeypatch.setenv("BATCHNB_CACHE_URL", redis_url)
    kernel = open_workspace()  # e.g. a notebook; its prefix is unique to this test's database
    prefix = kernel.cache.key_prefix
    try:
        for _ in range(3):
            kernel.cache.get_or_create("batches", "summary:1", lambda: {"pending": 0})
        kernel.cache.get_or_create("analytics", "daily", lambda: [])
        kernel.cache.publish_counts()  # else the last read waits for the kernel's next one
        runner = CliRunner()
        result = runner.invoke(main, ["health", "--json"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["cache"] == {
            "backend": "redis",
            "hits": 0,  # the health command's own reads
            "misses": 0,
            "errors": 0,
            "shared_hits": 2,
            "shared_misses": 2,
            "hit_rate": None,
            "shared_hit_rate": 0.5,
        }
        kernel.cache.get_or_create("analytics", "daily", lambda: [])  # hit
        kernel.cache.publish_counts()
        text = runner.invoke(main, ["health"], catch_exceptions=False).stdout
        assert "cache:           redis 3 hits / 2 misses (all processes)\n" in text
    finally:
        kernel.close()
        _delete_prefix(redis_url, prefix)
