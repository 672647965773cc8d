"""``batchnb worker --processes N``: real worker processes under a real supervisor. A child
killed with SIGKILL is replaced and its items finish, exactly once; SIGTERM stops every child
gracefully; a supervisor killed outright takes its children with it (Linux)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from batchnb.db.models import ExtractedData
from batchnb.services.health import live_workers
from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace, open_workspace
from tests.services.conftest import slow_worker_env

pytestmark = pytest.mark.slow

BATCHNB = Path(sys.executable).with_name("batchnb")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return slow_worker_env(tmp_path, monkeypatch, lease_seconds=3, slow_seconds=0.3)


@pytest.fixture
def workspace(env: dict[str, str]) -> Iterator[Workspace]:
    opened = open_workspace()
    yield opened
    opened.close()


@pytest.fixture
def supervisor(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [str(BATCHNB), "worker", "--processes", "2", "--threads", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.wait(10)
    for pid in _children(process.pid):
        os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(child) for child in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)  # polling interval
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _documents(count: int) -> list[tuple[str, bytes]]:
    return [
        (
            f"invoice-{n:02d}.txt",
            f"ACME Ltd\nInvoice Number: INV-{n:04d}\nTotal: {n}.50 EUR\n".encode(),
        )
        for n in range(count)
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads children from /proc")
def test_a_killed_child_is_replaced_and_every_document_is_done_once(
    workspace: Workspace, supervisor: subprocess.Popen[bytes]
) -> None:
    _wait_for(lambda: len(live_workers(workspace)) == 2, 60, "two workers")
    first = _children(supervisor.pid)
    assert len(first) == 2
    batch = submit(_documents(24), "invoice number, total", extractor="slow", workspace=workspace)
    _wait_for(lambda: batch.progress(cached=False).completed >= 2, 60, "documents to complete")

    os.kill(first[0], signal.SIGKILL)
    _wait_for(
        lambda: len(_children(supervisor.pid)) == 2 and first[0] not in _children(supervisor.pid),
        30,
        "the supervisor to start another worker",
    )
    progress = batch.wait(timeout=120)

    assert (progress.completed, progress.failed) == (24, 0)
    with workspace.db.read() as session:
        per_document = session.execute(
            select(ExtractedData.document_id, func.count()).group_by(ExtractedData.document_id)
        ).all()
    assert len(per_document) == 24 and {count for _, count in per_document} == {1}
    assert supervisor.poll() is None, "the supervisor itself carries on"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads children from /proc")
def test_sigterm_stops_every_child_gracefully(
    workspace: Workspace, supervisor: subprocess.Popen[bytes]
) -> None:
    _wait_for(lambda: len(live_workers(workspace)) == 2, 60, "two workers")
    children = _children(supervisor.pid)
    batch = submit(_documents(8), "invoice number, total", extractor="slow", workspace=workspace)
    _wait_for(lambda: batch.progress(cached=False).processing >= 1, 60, "work in progress")

    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(60) == 0
    assert not any(_alive(pid) for pid in children)
    # Graceful: the workers said goodbye (none is left "alive" in the table) and every item
    # they held was finished or released, so nothing is stuck in processing.
    assert live_workers(workspace) == []
    progress = batch.progress(cached=False)
    assert progress.processing == 0
    assert progress.completed + progress.pending == 8


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_supervisor_killed_outright_takes_its_children_with_it(
    workspace: Workspace, supervisor: subprocess.Popen[bytes]
) -> None:
    _wait_for(lambda: len(live_workers(workspace)) == 2, 60, "two workers")
    children = _children(supervisor.pid)
    supervisor.kill()
    supervisor.wait(10)
    _wait_for(lambda: not any(_alive(pid) for pid in children), 60, "the children to stop")
