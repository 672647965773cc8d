"""ExtractorPool: extractors built once from the workspace's settings, shared, and closed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from batchnb.config import Settings, load_settings
from batchnb.documents.parsed import ParsedDocument
from batchnb.errors import PluginWarning, UnknownExtractorError
from batchnb.extract import (
    ExtractionResult,
    ExtractorPool,
    ExtractorRegistry,
    OfflineExtractor,
    OpenAICompatibleExtractor,
    Schema,
    get_extractor,
)
from tests.extract.llm.chat_server import DOCUMENT, KEY, MODEL, SCHEMA, ChatServer

ELSEWHERE = "http://127.0.0.1:9/v1"  # nothing listens on the discard port


class Counted:
    """An extractor whose builds and closes are counted, like a plugin loading a model."""

    name = "counted"
    version = "1"
    built = 0
    closed = 0

    def __init__(self) -> None:
        Counted.built += 1

    def extract(self, document: ParsedDocument, schema: Schema) -> ExtractionResult:
        return ExtractionResult(values=dict.fromkeys(schema.names), extractor=self.name)

    def close(self) -> None:
        Counted.closed += 1


@pytest.fixture
def counted() -> ExtractorRegistry:
    Counted.built = Counted.closed = 0
    registry = ExtractorRegistry()
    registry.register("counted", Counted)
    return registry


def test_openai_talks_to_the_server_of_the_settings_not_of_the_environment(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BATCHNB_OPENAI_BASE_URL", ELSEWHERE)
    monkeypatch.setenv("BATCHNB_OPENAI_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("BATCHNB_OPENAI_MODEL", "gpt-from-the-environment")
    settings = load_settings(
        home=str(tmp_path), openai_base_url=server.url, openai_api_key=KEY, openai_model=MODEL
    )
    with ExtractorPool(settings) as pool:
        extractor = pool.get("openai")
        assert isinstance(extractor, OpenAICompatibleExtractor)
        assert extractor.extract(DOCUMENT, SCHEMA).data()["invoice_number"] == "INV-0042"
    # the key of the settings was sent (the server answers 401 to any other)
    assert [request["body"]["model"] for request in server.requests] == [MODEL]
    # the module-level convenience honours settings given to it too
    assert get_extractor("openai", settings).extract(DOCUMENT, SCHEMA).extractor == "openai"
    assert len(server.requests) == 2


def test_each_name_is_built_once_for_all_threads_and_closed(counted: ExtractorRegistry) -> None:
    pool = ExtractorPool(load_settings(), counted)
    barrier = threading.Barrier(8)
    got: list[Any] = []

    def worker() -> None:
        barrier.wait()
        got.extend(pool.get("counted") for _ in range(25))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counted.built == 1 and len(got) == 200 and all(e is got[0] for e in got)
    pool.close()
    assert Counted.closed == 1
    pool.close()  # nothing built since: nothing to close again
    assert Counted.closed == 1
    assert pool.get("counted") is not got[0]  # a later get builds anew
    assert Counted.built == 2
    pool.close()


def test_check_never_builds(counted: ExtractorRegistry) -> None:
    pool = ExtractorPool(load_settings(), counted)
    pool.check("counted")
    assert Counted.built == 0
    assert pool.names() == ("counted", "offline", "openai")


def test_unknown_extractor_is_permanent(counted: ExtractorRegistry) -> None:
    pool = ExtractorPool(load_settings(), counted)
    for ask in (pool.get, pool.check):
        with pytest.raises(UnknownExtractorError, match="unknown extractor 'nope'") as caught:
            ask("nope")
        assert caught.value.permanent is True


def test_a_typo_in_plugins_leaves_every_other_extractor_working(
    plugin_module: str, missing_module: str, tmp_path: Path
) -> None:
    settings = load_settings(home=str(tmp_path), plugins=f"{missing_module},{plugin_module}")
    pool = ExtractorPool(settings, ExtractorRegistry())
    with pytest.warns(PluginWarning, match=rf"module '{missing_module}' .*ModuleNotFoundError"):
        assert isinstance(pool.get("offline"), OfflineExtractor)
    assert pool.get("echo").name == "echo"
    assert {"echo", "offline", "openai"} <= set(pool.names())
    with pytest.raises(UnknownExtractorError, match=rf"failed to load: module '{missing_module}'"):
        pool.get(missing_module)
    rows = {row.name: row for row in pool.describe()}
    assert rows[missing_module].broken and not rows["offline"].broken


def test_plugin_modules_of_one_workspace_do_not_leak_into_another(
    plugin_module: str, tmp_path: Path
) -> None:
    registry = ExtractorRegistry()
    mine = ExtractorPool(load_settings(home=str(tmp_path / "a"), plugins=plugin_module), registry)
    theirs = ExtractorPool(load_settings(home=str(tmp_path / "b")), registry)
    assert "echo" in mine.names() and mine.get("echo").name == "echo"
    assert "echo" not in theirs.names()
    with pytest.raises(UnknownExtractorError):
        theirs.get("echo")


def test_close_closes_every_instance_even_when_one_fails(settings: Settings) -> None:
    registry = ExtractorRegistry()
    closed: list[str] = []

    class Failing(Counted):
        name = "failing"

        def close(self) -> None:
            closed.append(self.name)
            raise RuntimeError("cannot close")

    class Fine(Counted):
        name = "fine"

        def close(self) -> None:
            closed.append(self.name)

    registry.register("failing", Failing)
    registry.register("fine", Fine)
    registry.register("offline", OfflineExtractor)  # no close(): left alone
    pool = ExtractorPool(settings, registry)
    for name in ("failing", "fine", "offline"):
        pool.get(name)
    with pytest.raises(RuntimeError, match="cannot close"):
        pool.close()
    assert sorted(closed) == ["failing", "fine"]


def test_describe_shows_the_built_instances_version(server: ChatServer, tmp_path: Path) -> None:
    settings = load_settings(home=str(tmp_path), openai_base_url=server.url, openai_model=MODEL)
    pool = ExtractorPool(settings)
    assert {row.name: row.version for row in pool.describe()}["openai"] == "1"
    pool.get("openai")
    assert {row.name: row.version for row in pool.describe()}["openai"] == f"1:{MODEL}"
    pool.close()
