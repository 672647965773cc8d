"""`batchnb extractors`: what is installed, where it comes from, what it needs, what is broken."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from batchnb.cli import main
from batchnb.extract import OpenAICompatibleExtractor


@pytest.fixture
def typo() -> str:
    """A plugin module name nobody has (new each test: the process warns once per plugin)."""
    return f"batchnb_typo_{uuid.uuid4().hex[:8]}"


def test_lists_builtins_plugins_and_broken_plugins(
    monkeypatch: pytest.MonkeyPatch, typo: str
) -> None:
    monkeypatch.setenv("BATCHNB_PLUGINS", f"{typo},tests.plugins.slow_extractor")
    result = CliRunner().invoke(main, ["extractors"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["name", "version", "from", "needs"]
    offline = next(line for line in lines if line.startswith("offline "))
    assert offline.split()[:4] == ["offline", "4", "built", "in"] and "nothing" in offline
    openai = next(line for line in lines if line.startswith("openai "))
    assert OpenAICompatibleExtractor.needs in openai
    slow = next(line for line in lines if line.startswith("slow "))
    assert "module tests.plugins.slow_extractor (BATCHNB_PLUGINS)" in slow
    broken = next(line for line in lines if line.startswith("BROKEN "))
    assert f"{typo} (module {typo} (BATCHNB_PLUGINS))" in broken
    assert "ModuleNotFoundError" in broken


def test_json(monkeypatch: pytest.MonkeyPatch, typo: str) -> None:
    monkeypatch.setenv("BATCHNB_PLUGINS", typo)
    result = CliRunner().invoke(main, ["extractors", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["offline"] == {
        "name": "offline",
        "origin": "built in",
        "version": "4",
        "needs": "nothing (no network, no API key)",
        "error": None,
        "broken": False,
    }
    assert rows["openai"]["needs"] == OpenAICompatibleExtractor.needs
    assert rows[typo]["broken"] is True and "No module named" in rows[typo]["error"]
    assert "slow" not in rows  # modules not named in this environment's settings
