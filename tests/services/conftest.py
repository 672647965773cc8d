"""Workspaces for service tests: embedded default, and PostgreSQL / Redis variants."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchnb.queue.worker import Worker
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace, open_workspace

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "documents"


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
