"""Shared fixtures: a temporary workspace per test, and real PostgreSQL/Redis when configured."""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from batchnb.config import Settings, load_settings
from batchnb.queue.worker import Worker
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace, open_workspace

#: An evaluation folder (docs/evaluation.md): BATCHNB_EVAL_DIR, else ../shared/eval beside
#: the repository where the team keeps its labelled documents.
EVAL_DIR = Path(
    os.environ.get("BATCHNB_EVAL_DIR", Path(__file__).resolve().parents[2] / "shared" / "eval")
)

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "documents"
"""The sample documents of the demo."""

POSTGRES_ENV = "BATCHNB_TEST_POSTGRES_URL"
REDIS_ENV = "BATCHNB_TEST_REDIS_URL"

# What marks a test as needing a server: a fixture it uses, or a parameter naming the server
# (fixtures parametrized over backends ask for the server's fixture only when they run).
_SERVER_FIXTURES = {"postgres": "postgres_url", "redis": "redis_url"}
_SERVER_PARAMS = {
    "postgres": {"postgres", "postgresql", "postgres_workspace"},
    "redis": {"redis", "redis_workspace"},
}
_PROCESS_WORDS = ("subprocess.", "Popen(")
_BROWSER_TESTS = Path(__file__).parent / "browser"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs PostgreSQL, Redis, or starts other processes.

    So ``pytest -m "not postgres and not redis"`` runs on a laptop with no servers, and
    ``-m "not slow"`` leaves out the tests that start workers, the CLI or pip in processes of
    their own. A test that reaches a server without its mark fails (see the server fixtures),
    so a mark this hook misses shows up at once. Tests under ``tests/browser`` are marked
    ``browser`` (and ``slow``: they start Jupyter servers), so ``-m "not browser"`` skips them.
    """
    for item in items:
        if item.path.is_relative_to(_BROWSER_TESTS):
            item.add_marker("browser")
            item.add_marker("slow")
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        params = {str(value) for value in callspec.params.values()} if callspec else set()
        for marker, fixture in _SERVER_FIXTURES.items():
            if fixture in fixtures or params & _SERVER_PARAMS[marker]:
                item.add_marker(marker)
        if _starts_processes(item):
            item.add_marker("slow")
    # Browser tests run last: Playwright's sync API keeps an event loop running in the main
    # thread while its (session-wide) browser is open, which tests of asyncio code must not see.
    browser = [item for item in items if item.get_closest_marker("browser")]
    items[:] = [item for item in items if not item.get_closest_marker("browser")] + browser


def _starts_processes(item: pytest.Item) -> bool:
    function = getattr(item, "function", None)
    try:
        source = inspect.getsource(function) if function is not None else ""
    except (OSError, TypeError):
        return False
    return any(word in source for word in _PROCESS_WORDS)


def _require_marker(request: pytest.FixtureRequest, marker: str) -> None:
    if request.node.get_closest_marker(marker) is None:
        pytest.fail(
            f"{request.node.nodeid} uses {marker} without the {marker!r} mark: name the server "
            "in its parameter or fixture (see pytest_collection_modifyitems) or mark it"
        )


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own workspace or BATCHNB_* settings."""
    for name in list(os.environ):
        if name.startswith("BATCHNB_") and not name.startswith("BATCHNB_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BATCHNB_HOME", str(tmp_path / "home"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a fresh workspace in a temporary folder (embedded SQLite defaults)."""
    return load_settings(home=str(tmp_path / "home"))


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a new, empty PostgreSQL database, dropped after the test."""
    _require_marker(request, "postgres")
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(
            f"{POSTGRES_ENV} is not set (PostgreSQL tests run where it is, e.g. in .ci/run)"
        )
    name = f"batchnb_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """URL of the test Redis, using a key prefix unique to this test (see queue tests)."""
    _require_marker(request, "redis")
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set (Redis tests run where it is, e.g. in .ci/run)")
    return url


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = open_workspace(home=str(tmp_path / "home"), heartbeat_seconds=0.5)
    yield ws
    ws.close()


@pytest.fixture
def worker(workspace: Workspace) -> Iterator[Worker]:
    w = start_worker(workspace, threads=2)
    yield w
    w.stop()


@pytest.fixture
def postgres_workspace(tmp_path: Path, postgres_url: str) -> Iterator[Workspace]:
    ws = open_workspace(home=str(tmp_path / "pg-home"), database_url=postgres_url)
    yield ws
    ws.close()


@pytest.fixture
def redis_workspace(tmp_path: Path, redis_url: str) -> Iterator[Workspace]:
    queue_url = f"{redis_url}?huey_name=batchnb-test-{uuid.uuid4().hex[:8]}"
    ws = open_workspace(home=str(tmp_path / "redis-home"), queue_url=queue_url)
    yield ws
    ws.runtime.huey.flush()
    ws.close()
