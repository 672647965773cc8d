"""The extractor registry: entry points, plugin modules, broken plugins, thread-safe loading."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pytest

from batchnb.config import Settings, load_settings
from batchnb.errors import (
    ExtractorError,
    MissingDependencyError,
    PluginWarning,
    UnknownExtractorError,
)
from batchnb.extract import (
    ENTRY_POINT_GROUP,
    ExtractorRegistry,
    FunctionExtractor,
    OfflineExtractor,
    OpenAICompatibleExtractor,
    extractor_names,
    get_extractor,
)
from batchnb.extract import registry as registry_module
from batchnb.extract.registry import BUILT_IN, REGISTERED

GROUP = "batchnb.test_extractors"


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch, *points: EntryPoint) -> None:
    def fake(*, group: str) -> tuple[EntryPoint, ...]:
        return tuple(point for point in points if point.group == group)

    monkeypatch.setattr(registry_module, "entry_points", fake)


def _entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=GROUP)


def test_builtins_are_declared_as_entry_points() -> None:
    declared = {point.name: point.value for point in entry_points(group=ENTRY_POINT_GROUP)}
    assert declared["offline"] == "batchnb.extract.offline:register"
    assert declared["openai"] == "batchnb.extract.llm:register"


def test_default_registry_loads_offline_through_its_entry_point() -> None:
    assert "offline" in extractor_names()
    extractor = get_extractor("offline")
    assert isinstance(extractor, OfflineExtractor)
    assert (extractor.name, extractor.version) == ("offline", "4")
    assert get_extractor("offline") is not extractor  # a new instance each time (pools reuse)


def test_fresh_registry_gets_offline_only_from_the_entry_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = ExtractorRegistry()
    assert registry.names() == tuple(sorted(p.name for p in entry_points(group=ENTRY_POINT_GROUP)))
    _fake_entry_points(monkeypatch)  # no entry points: nothing at all
    assert ExtractorRegistry().names() == ()


def test_unknown_name_is_a_permanent_error_listing_the_known_ones() -> None:
    with pytest.raises(
        UnknownExtractorError, match=r"unknown extractor 'nope'; known extractors: .*offline"
    ) as caught:
        get_extractor("nope")
    assert isinstance(caught.value, ExtractorError)
    assert caught.value.permanent is True and caught.value.kind == "unknown_extractor"


def test_failing_plugin_disables_only_its_own_names(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    _fake_entry_points(
        monkeypatch,
        _entry_point("good", "batchnb.extract.offline:register"),
        _entry_point("broken", "batchnb_no_such_module:register"),
    )
    registry = ExtractorRegistry(GROUP)
    with pytest.warns(PluginWarning, match="plugin entry point broken = 'batchnb_no_such_mod"):
        assert isinstance(registry.build("offline", settings), OfflineExtractor)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: not tried, not warned about again
        assert registry.names() == ("offline",)
        # the broken one is named where it matters: the unknown-name error and describe()
        with pytest.raises(
            UnknownExtractorError,
            match=r"Plugins that failed to load: entry point broken = .*ModuleNotFoundError",
        ):
            registry.check("broken", settings)
        broken = [row for row in registry.describe() if row.broken]
    assert [(row.name, row.origin) for row in broken] == [
        ("broken", "entry point batchnb_no_such_module:register")
    ]
    assert broken[0].error is not None and "No module named" in broken[0].error


def test_plugin_whose_register_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, _entry_point("bad", f"{__name__}:raising_register"))
    registry = ExtractorRegistry(GROUP)
    with pytest.warns(PluginWarning, match=r"entry point bad .*failed to load: RuntimeError: boom"):
        assert registry.names() == ()  # what it registered before raising is dropped too


def raising_register(register_extractor: Callable[..., None]) -> None:
    register_extractor("half", OfflineExtractor)
    raise RuntimeError("boom")


CALLS: list[str] = []


def counting_register(register_extractor: Callable[..., None]) -> None:
    CALLS.append(threading.current_thread().name)
    register_extractor("counted", OfflineExtractor)


def test_loading_happens_once_under_concurrency(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    _fake_entry_points(monkeypatch, _entry_point("counted", f"{__name__}:counting_register"))
    CALLS.clear()
    registry = ExtractorRegistry(GROUP)
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def worker() -> None:
        barrier.wait()
        results.append(registry.build("counted", settings))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(CALLS) == 1
    assert len(results) == 8 and all(isinstance(r, OfflineExtractor) for r in results)


def test_register_rules(settings: Settings) -> None:
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
    with pytest.raises(ExtractorError, match=r"no argument or one \(the settings\); it needs a, b"):
        registry.register("two", lambda a, b: OfflineExtractor())
    assert registry.names() == ("fn", "offline")
    assert registry.build("fn", settings).name == "fn"


def test_factories_get_the_settings_when_they_take_a_parameter(tmp_path: Path) -> None:
    registry = ExtractorRegistry(GROUP)
    seen: list[Any] = []

    def with_settings(settings: Settings) -> FunctionExtractor:
        seen.append(settings.options_for("greeter"))
        return FunctionExtractor(lambda d, s: {}, name="greeter")

    class Configured:
        name, version = "configured", "1"

        def __init__(self, settings: Settings | None = None) -> None:
            seen.append(settings)

        def extract(self, document: Any, schema: Any) -> Any:
            raise NotImplementedError

    registry.register("greeter", with_settings)
    registry.register("configured", Configured)
    registry.register("bare", lambda: FunctionExtractor(lambda d, s: {}, name="bare"))
    settings = load_settings(
        home=str(tmp_path), extractor_options={"greeter": {"greeting": "hello"}}
    )
    registry.build("greeter", settings)
    registry.build("configured", settings)
    registry.build("bare", settings)
    assert seen == [{"greeting": "hello"}, settings]


def test_bad_factories(settings: Settings) -> None:
    registry = ExtractorRegistry(GROUP)
    registry.register("object", object)  # type: ignore[arg-type]
    registry.register("crash", lambda: 1 / 0)  # type: ignore[arg-type,return-value]

    def missing() -> Any:
        raise MissingDependencyError("openai", "llm", "The LLM extractor")

    registry.register("missing", missing)
    with pytest.raises(UnknownExtractorError, match="returned object, which lacks name"):
        registry.build("object", settings)
    with pytest.raises(UnknownExtractorError, match="'crash' failed to start: division by zero"):
        registry.build("crash", settings)
    with pytest.raises(MissingDependencyError, match=r"pip install 'batchnb\[llm\]'"):
        registry.build("missing", settings)


def test_plugin_modules(plugin_module: str, tmp_path: Path) -> None:
    registry = ExtractorRegistry(GROUP)
    assert registry.names([plugin_module]) == ("echo",)
    (tmp_path / "batchnb_test_no_register.py").write_text("x = 1\n", encoding="utf-8")
    with pytest.warns(PluginWarning, match=r"'batchnb_test_no_register' .*no register"):
        assert registry.names(["batchnb_test_no_register"]) == ()


def test_plugin_modules_named_later_are_picked_up(plugin_module: str, tmp_path: Path) -> None:
    registry = ExtractorRegistry(GROUP)
    assert registry.names() == ()
    # configured after first use, as a notebook might
    settings = load_settings(home=str(tmp_path), plugins=plugin_module)
    assert registry.build("echo", settings).name == "echo"


def test_a_modules_names_are_seen_only_by_settings_naming_it(
    plugin_module: str, tmp_path: Path, settings: Settings
) -> None:
    registry = ExtractorRegistry(GROUP)
    assert registry.names([plugin_module]) == ("echo",)
    assert registry.names() == ()
    with pytest.raises(UnknownExtractorError, match=rf"comes from plugin module {plugin_module}"):
        registry.check("echo", settings)
    rows = registry.describe([plugin_module])
    assert [(row.name, row.origin) for row in rows] == [
        ("echo", f"module {plugin_module} (BATCHNB_PLUGINS)")
    ]


def test_default_registry_reads_batchnb_plugins(
    plugin_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh default registry, so "echo" does not leak into other tests.
    monkeypatch.setattr(registry_module, "_DEFAULT", ExtractorRegistry())
    monkeypatch.setenv("BATCHNB_PLUGINS", f" {plugin_module} , ")
    assert get_extractor("echo").name == "echo"
    assert {"echo", "offline", "openai"} <= set(extractor_names())


def test_describe_reads_versions_and_needs_without_building(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = ExtractorRegistry()
    built: list[str] = []
    monkeypatch.setattr(OfflineExtractor, "__init__", lambda self: built.append("offline"))
    registry.register("fn", lambda: FunctionExtractor(lambda d, s: {}, name="fn"))
    rows = {row.name: row for row in registry.describe()}
    assert (rows["offline"].origin, rows["offline"].version) == (BUILT_IN, "4")
    assert rows["offline"].needs == OfflineExtractor.needs
    assert (rows["openai"].origin, rows["openai"].version) == (BUILT_IN, "1")
    assert rows["openai"].needs == OpenAICompatibleExtractor.needs
    assert "API key" in OpenAICompatibleExtractor.needs
    assert (rows["fn"].origin, rows["fn"].version, rows["fn"].needs) == (REGISTERED, None, None)
    assert rows["fn"].as_dict()["broken"] is False
    assert built == []
