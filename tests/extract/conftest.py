"""Fixtures shared by the extraction tests: a local chat-completions server, a plugin module."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.extract.llm.chat_server import ChatServer, serving


@pytest.fixture
def server() -> Iterator[ChatServer]:
    """A local OpenAI-compatible server answering from a script (see chat_server.py)."""
    with serving() as chat:
        yield chat


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A plain module on sys.path with a register() function, like a user's own plugin.

    It registers ``echo``; the name of the module is new in every test, so a registry that
    loaded it in one test does not know it in the next.
    """
    name = f"batchnb_test_plugin_{uuid.uuid4().hex[:8]}"
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


@pytest.fixture
def missing_module() -> str:
    """The name of a plugin module that does not exist (a typo in BATCHNB_PLUGINS)."""
    return f"batchnb_no_such_plugin_{uuid.uuid4().hex[:8]}"
