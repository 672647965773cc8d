"""Values read with a freshness (a version of the data): served while it holds, replaced when
it changes, on the memory and the real Redis backend (fixtures of test_summary_cache.py)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from batchnb.cache import DataVersion, SummaryCache
from tests.cache.test_summary_cache import MakeCache, Source, cache_url, make_cache

__all__ = ["cache_url", "make_cache"]  # fixtures, used by name


def test_a_value_is_served_while_its_version_holds(make_cache: MakeCache) -> None:
    cache = make_cache()
    source = Source("v1")

    def read(version: int) -> object:
        return cache.get_or_create("analytics", "summary", source, freshness=DataVersion(version))

    assert read(1) == read(1) == "v1"
    source.value = "v2"
    assert read(2) == read(2) == "v2"
    stats = cache.stats()
    assert (source.calls, stats.hits, stats.misses) == (2, 2, 2)
    # Back to an old version: its value was replaced, so it is computed again.
    assert read(1) == "v2"
    assert source.calls == 3


def test_a_new_version_replaces_the_entry_instead_of_adding_one(make_cache: MakeCache) -> None:
    cache = make_cache()
    for version in range(50):
        cache.get_or_create("analytics", "summary", Source(version), freshness=DataVersion(version))
    if cache.backend == "memory":
        assert len(cache._backend._store.entries) == 1  # type: ignore[union-attr]
    assert (
        cache.get_or_create("analytics", "summary", Source("new"), freshness=DataVersion(49)) == 49
    )


def test_the_stamp_may_depend_on_the_value(make_cache: MakeCache) -> None:
    """A freshness chooses the stamp after computing (analytics: settled periods)."""

    class Settles:
        def __init__(self, version: int) -> None:
            self.version = version

        def holds(self, stamp: Any) -> bool:
            return bool(stamp in (("settled",), ("live", self.version)))

        def stamp(self, value: Any) -> Any:
            return ("settled",) if value == "old figures" else ("live", self.version)

    cache = make_cache()
    assert cache.get_or_create("analytics", "old", Source("old figures"), freshness=Settles(1))
    assert cache.get_or_create("analytics", "new", Source("new figures"), freshness=Settles(1))
    old, new = Source("recomputed"), Source("recomputed")
    assert cache.get_or_create("analytics", "old", old, freshness=Settles(2)) == "old figures"
    assert cache.get_or_create("analytics", "new", new, freshness=Settles(2)) == "recomputed"
    assert (old.calls, new.calls) == (0, 1)


def test_invalidation_still_applies(make_cache: MakeCache) -> None:
    cache = make_cache()
    cache.get_or_create("analytics", "summary", Source("v1"), freshness=DataVersion(1))
    cache.invalidate("analytics")
    assert (
        cache.get_or_create("analytics", "summary", Source("v2"), freshness=DataVersion(1)) == "v2"
    )


def test_a_failing_creator_propagates_and_caches_nothing(make_cache: MakeCache) -> None:
    cache = make_cache()

    def broken() -> object:
        raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError, match="boom"):
        cache.get_or_create("analytics", "summary", broken, freshness=DataVersion(1))
    assert cache.get_or_create("analytics", "summary", Source("ok"), freshness=DataVersion(1))


def test_threads_missing_one_key_compute_it_once(make_cache: MakeCache) -> None:
    cache = make_cache()
    calls = []

    def slow() -> str:
        calls.append(1)
        time.sleep(0.3)
        return "value"

    found: list[str] = []

    def read() -> None:
        found.append(cache.get_or_create("analytics", "summary", slow, freshness=DataVersion(7)))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert found == ["value"] * 8
    assert len(calls) == 1
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (7, 1)


def test_values_still_expire_after_their_ttl(make_cache: MakeCache) -> None:
    cache = make_cache(default_ttl=0.3)
    source = Source("v")
    cache.get_or_create("analytics", "summary", source, freshness=DataVersion(1))
    time.sleep(0.5)
    cache.get_or_create("analytics", "summary", source, freshness=DataVersion(1))
    assert source.calls == 2


def test_the_none_backend_always_computes() -> None:
    cache = SummaryCache("none", key_prefix="unused")
    source = Source("v")
    for _ in range(3):
        cache.get_or_create("analytics", "summary", source, freshness=DataVersion(1))
    assert source.calls == 3
