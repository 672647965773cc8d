"""The extractor registry: entry points, plugin modules, clear errors, thread-safe loading."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pytest

from batchnb.errors import ExtractorError, MissingDependencyError
from batchnb.extract import (
    ENTRY_POINT_GROUP,
    ExtractorRegistry,
    FunctionExtractor,
    OfflineExtractor,
    extractor_names,
    get_extractor,
)
from batchnb.extract import registry as registry_module

GROUP = "batchnb.test_extractors"


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch, *points: EntryPoint) -> None:
    def fake(*, group: str) -> tuple[EntryPoint, ...]:
        return tuple(point for point in points if point.group == group)

    monkeypatch.setattr(registry_module, "entry_points", fake)


def _entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=GROUP)


def test_offline_is_declared_as_an_entry_point() -> None:
    declared = {point.name: point.value for point in entry_points(group=ENTRY_POINT_GROUP)}
    assert declared["offline"] == "batchnb.extract.offline:register"


def test_default_registry_loads_offline_through_its_entry_point() -> None:
    assert "offline" in extractor_names()
    extractor = get_extractor("offline")
    assert isinstance(extractor, OfflineExtractor)
    assert (extractor.name, extractor.version) == ("offline", "1")
    assert get_extractor("offline") is not extractor  # a new instance each time


def test_fresh_registry_gets_offline_only_from_the_entry_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = ExtractorRegistry()
    assert registry.names() == tuple(sorted(p.name for p in entry_points(group=ENTRY_POINT_GROUP)))
    _fake_entry_points(monkeypatch)  # no entry points: nothing at all
    assert ExtractorRegistry().names() == ()


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(
        ExtractorError, match=r"unknown extractor 'nope'; known extractors: .*offline"
    ):
        get_extractor("nope")


def test_failing_plugin_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(
        monkeypatch,
        _entry_point("good", "batchnb.extract.offline:register"),
        _entry_point("broken", "batchnb_no_such_module:register"),
    )
    registry = ExtractorRegistry(GROUP)
    with pytest.raises(ExtractorError, match="plugin entry point broken = 'batchnb_no_such_mod"):
        registry.get("offline")
    # plugins before the broken one stay registered; the broken one fails again, clearly
    with pytest.raises(ExtractorError, match="broken"):
        registry.names()


def test_plugin_whose_register_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, _entry_point("bad", f"{__name__}:raising_register"))
    with pytest.raises(
        ExtractorError, match=r"entry point bad .*failed to load: RuntimeError: boom"
    ):
        ExtractorRegistry(GROUP).names()


def raising_register(register_extractor: Callable[..., None]) -> None:
    raise RuntimeError("boom")


CALLS: list[str] = []


def counting_register(register_extractor: Callable[..., None]) -> None:
    CALLS.append(threading.current_thread().name)
    register_extractor("counted", OfflineExtractor)


def test_loading_happens_once_under_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, _entry_point("counted", f"{__name__}:counting_register"))
    CALLS.clear()
    registry = ExtractorRegistry(GROUP)
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def worker() -> None:
        barrier.wait()
        results.append(registry.get("counted"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(CALLS) == 1
    assert len(results) == 8 and all(isinstance(r, OfflineExtractor) for r in results)


def test_register_rules() -> None:
    registry = ExtractorRegistry(GROUP)
    registry.register("fn", lambda: FunctionExtractor(lambda d, s: {}, name="fn"))
    registry.register("offline", OfflineExtractor)
    registry.register("offline", OfflineExtractor)  # the same factory again is harmless
    with pytest.raises(ExtractorError, match=r"already registered .*replace=True"):
        registry.register("offline", lambda: OfflineExtractor())
    registry.register("offline", lambda: OfflineExtractor(), replace=True)
    with pytest.raises(ExtractorError, match="non-empty string"):
        registry.register("", OfflineExtractor)
    with pytest.raises(ExtractorError, match="must be callable"):
        registry.register("x", "not callable")  # type: ignore[arg-type]
    assert registry.names() == ("fn", "offline")
    assert registry.get("fn").name == "fn"


def test_bad_factories() -> None:
    registry = ExtractorRegistry(GROUP)
    registry.register("object", object)  # type: ignore[arg-type]
    registry.register("crash", lambda: 1 / 0)  # type: ignore[arg-type,return-value]

    def missing() -> Any:
        raise MissingDependencyError("openai", "llm", "The LLM extractor")

    registry.register("missing", missing)
    with pytest.raises(ExtractorError, match="returned object, which lacks name"):
        registry.get("object")
    with pytest.raises(ExtractorError, match="'crash' failed to start: division by zero"):
        registry.get("crash")
    with pytest.raises(MissingDependencyError, match=r"pip install 'batchnb\[llm\]'"):
        registry.get("missing")


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A plain module on sys.path with a register() function, like a user's own plugin."""
    name = f"batchnb_test_plugin_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(
        "from batchnb.extract import FunctionExtractor\n"
        "def register(register_extractor):\n"
        "    register_extractor('echo', lambda: FunctionExtractor(\n"
        "        lambda document, schema: {'total': 1.0}, name='echo'))\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_plugin_modules(plugin_module: str, tmp_path: Path) -> None:
    registry = ExtractorRegistry(GROUP, modules=lambda: [plugin_module])
    assert registry.names() == ("echo",)
    (tmp_path / "batchnb_test_no_register.py").write_text("x = 1\n", encoding="utf-8")
    broken = ExtractorRegistry(GROUP, modules=lambda: ["batchnb_test_no_register"])
    with pytest.raises(ExtractorError, match=r"'batchnb_test_no_register' .*no register"):
        broken.names()
    sys.modules.pop("batchnb_test_no_register", None)


def test_batchnb_plugins_setting_is_read_when_a_name_is_missing(
    plugin_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    modules: list[str] = []
    registry = ExtractorRegistry(GROUP, modules=lambda: list(modules))
    assert registry.names() == ()
    modules.append(plugin_module)  # configured after first use, as a notebook might
    assert registry.get("echo").name == "echo"


def test_default_registry_reads_batchnb_plugins(
    plugin_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh default registry built like the real one, so "echo" does not leak into others.
    fresh = ExtractorRegistry(modules=registry_module._configured_modules)
    monkeypatch.setattr(registry_module, "_DEFAULT", fresh)
    monkeypatch.setenv("BATCHNB_PLUGINS", f" {plugin_module} , ")
    assert get_extractor("echo").name == "echo"
    assert {"echo", "offline", "openai"} <= set(extractor_names())
