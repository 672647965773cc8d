"""``batchnb schedule``: the commands, and schedules run by real ``batchnb worker`` processes
(two of them: each due time still runs once), failures showing in ``batchnb health``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from batchnb.cli import main
from batchnb.db.models import Schedule, ScheduleRun
from batchnb.services.workspace import Workspace, open_workspace
from tests.conftest import SAMPLES
from tests.queue.schedule_notebooks import write_notebook

REPO = Path(__file__).resolve().parents[2]
BATCHNB = Path(sys.executable).with_name("batchnb")
SCHEDULED_RUN = REPO / "notebooks" / "scheduled_run.ipynb"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    return write_notebook(tmp_path / "tiny.ipynb")


def test_add_list_run_history_pause_resume_remove(
    notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    added = invoke(
        "schedule", "add", str(notebook), "--name", "hourly", "--cron", "0 * * * *",
        "-p", "text", "hello", "-p", "threshold", "0.1", "-p", "count", "3",
        "-p", "fail", "False", "-p", "marker", "out.txt",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "schedule hourly: 0 * * * * (UTC), next due " in added.output

    listed = json.loads(invoke("schedule", "list", "--json").output)
    assert [item["name"] for item in listed] == ["hourly"]
    assert listed[0]["parameters"] == {
        "text": "hello",
        "threshold": 0.1,
        "count": 3,
        "fail": False,
        "marker": "out.txt",
    }
    assert listed[0]["working_dir"] == str(tmp_path.resolve())
    table = invoke("schedule", "list").output.splitlines()
    assert table[0].split()[:4] == ["name", "cron", "(UTC)", "status"]
    assert table[1].startswith("hourly") and " new " in table[1]

    ran = invoke("schedule", "run", "hourly")
    assert ran.exit_code == 0, ran.output
    assert ran.output.startswith("hourly: succeeded in ")
    assert (tmp_path / "out.txt").read_text() == "hello\n"  # relative to the schedule's folder

    history = json.loads(invoke("schedule", "history", "hourly", "--json").output)
    assert [(run["status"], run["manual"]) for run in history] == [("succeeded", True)]
    assert Path(history[0]["output_path"]).is_file()
    assert "succeeded" in invoke("schedule", "history", "hourly").output

    assert invoke("schedule", "pause", "hourly").output == "schedule hourly paused\n"
    assert json.loads(invoke("schedule", "list", "--json").output)[0]["status"] == "paused"
    assert invoke("schedule", "resume", "hourly").output.startswith("schedule hourly resumed")
    assert invoke("schedule", "remove", "hourly").output == "schedule hourly removed\n"
    assert json.loads(invoke("schedule", "list", "--json").output) == []


def test_mistakes_are_one_line_messages(notebook: Path) -> None:
    bad_cron = invoke("schedule", "add", str(notebook), "--name", "x", "--cron", "hourly")
    assert bad_cron.exit_code == 1
    assert bad_cron.output.startswith("Error: 'hourly' is not a cron expression: give five")
    missing = invoke("schedule", "run", "nope")
    assert missing.exit_code == 1
    assert missing.output == (
        "Error: no schedule named 'nope'; add one with batchnb schedule add\n"
    )


def test_a_failing_run_exits_1_with_the_notebooks_error(notebook: Path, tmp_path: Path) -> None:
    invoke(
        "schedule", "add", str(notebook), "--name", "bad", "--cron", "0 * * * *",
        "-p", "fail", "True", "--cwd", str(tmp_path),
    )  # fmt: skip

    ran = invoke("schedule", "run", "bad")

    assert ran.exit_code == 1
    assert "bad: failed in " in ran.output
    assert "error: In [4]: TooManyFailures: 3 of 4 documents failed (75%)" in ran.output


# --- real worker processes ---------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    values = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("BATCHNB_") or name.startswith("BATCHNB_TEST_")
    }
    values["BATCHNB_HOME"] = str(tmp_path / "home")
    values["BATCHNB_HEARTBEAT_SECONDS"] = "0.5"
    return values


@pytest.fixture
def workspace(env: dict[str, str]) -> Iterator[Workspace]:
    ws = open_workspace(home=env["BATCHNB_HOME"])
    yield ws
    ws.close()


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BATCHNB), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _runs(ws: Workspace) -> dict[str, list[ScheduleRun]]:
    with ws.db.read() as session:
        rows = session.execute(
            select(Schedule.name, ScheduleRun).join(ScheduleRun).order_by(ScheduleRun.id)
        ).all()
    found: dict[str, list[ScheduleRun]] = {}
    for name, run in rows:
        found.setdefault(name, []).append(run)
    return found


def test_schedules_added_with_the_cli_run_once_under_two_real_workers(
    env: dict[str, str], workspace: Workspace, notebook: Path, tmp_path: Path
) -> None:
    """A tiny notebook, the scheduled-run notebook over a folder of samples, and a failing one:
    each due time runs once though two workers tick, each run keeps its output notebook, and
    the failure shows in `batchnb health`."""
    folder = tmp_path / "work"
    (folder / "inbox").mkdir(parents=True)
    for name in ("maplewood-print-invoice.txt", "copperleaf-web-invoice.md"):
        shutil.copy(SAMPLES / name, folder / "inbox" / name)
    yearly = "0 0 1 1 *"  # never due by itself during the test
    added = [
        _cli(env, folder, "schedule", "add", str(notebook), "--name", "tiny", "--cron", yearly,
             "-p", "marker", "ran.txt", "-p", "text", "tick"),
        _cli(env, folder, "schedule", "add", str(SCHEDULED_RUN), "--name", "inbox",
             "--cron", yearly, "-p", "inputs", "inbox", "-p", "output", "exports",
             "-p", "formats", "csv", "-p", "name", "scheduled", "-p", "max_failure_rate", "0.5"),
        _cli(env, folder, "schedule", "add", str(notebook), "--name", "broken",
             "--cron", yearly, "-p", "marker", "broken.txt", "-p", "fail", "True"),
    ]  # fmt: skip
    for result in added:
        assert result.returncode == 0, result.stderr
    # As if the schedules were added a while ago and their time came while no worker ran.
    with workspace.db.write() as session:
        for row in session.scalars(select(Schedule)):
            row.next_due_at = row.created_at.replace(year=row.created_at.year - 1)

    workers = [
        subprocess.Popen(
            [str(BATCHNB), "worker", "--processes", "1", "--threads", "2"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:

        def finished() -> bool:
            runs = _runs(workspace)
            return len(runs) == 3 and all(r.status != "running" for v in runs.values() for r in v)

        _wait_for(finished, 240, "the three scheduled runs to finish")
        runs = _runs(workspace)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        logs = [worker.communicate(timeout=60)[1] for worker in workers]

    assert all(worker.returncode == 0 for worker in workers), logs
    assert {name: len(found) for name, found in runs.items()} == {
        "tiny": 1,
        "inbox": 1,
        "broken": 1,
    }
    tiny, inbox, broken = runs["tiny"][0], runs["inbox"][0], runs["broken"][0]
    assert (tiny.status, inbox.status, broken.status) == ("succeeded", "succeeded", "failed"), (
        inbox.error
    )
    assert not tiny.manual and tiny.worker_id and tiny.duration_s
    assert (folder / "ran.txt").read_text() == "tick\n"  # ran once, in the folder of `add`
    home = Path(env["BATCHNB_HOME"])
    for name, run in (("tiny", tiny), ("inbox", inbox), ("broken", broken)):
        outputs = list((home / "schedules" / name).glob("*.ipynb"))
        assert [str(path) for path in outputs] == [run.output_path], name
        assert outputs[0].name.endswith("-01-01T00-00-00Z.ipynb")
    summary = json.loads((folder / "exports" / "summary.json").read_text())
    assert (summary["submitted"], summary["completed"], summary["failed"]) == (2, 2, 0)
    table = pd.read_csv(folder / "exports" / "scheduled-normal.csv")
    assert sorted(table.file_name) == ["copperleaf-web-invoice.md", "maplewood-print-invoice.txt"]
    assert "2/2 (100%)" in Path(inbox.output_path or "").read_text()

    health = _cli(env, tmp_path, "health")
    assert health.returncode == 1
    [problem] = [line for line in health.stdout.splitlines() if "schedule" in line]
    assert problem.startswith("PROBLEM: schedule broken failed at ")
    assert problem.endswith(
        ": In [4]: TooManyFailures: 3 of 4 documents failed (75%), over the allowed 10%"
    )
    history = json.loads(_cli(env, tmp_path, "schedule", "history", "inbox", "--json").stdout)
    assert [run["status"] for run in history] == ["succeeded"]
