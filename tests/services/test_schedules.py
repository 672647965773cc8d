"""The schedule services: add (checked), list, run now, pause/resume, remove, history; failing
schedules in health and the analytics; how schedules and runs show in a notebook."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from batchnb.db.models import AuditEvent, ScheduleRun
from batchnb.errors import NotFoundError, PermissionDeniedError
from batchnb.queue.scheduler import ScheduleError, run_due_schedules
from batchnb.services.analytics import analytics_summary
from batchnb.services.health import check_health
from batchnb.services.schedules import (
    add_schedule,
    list_schedules,
    parse_parameter,
    pause_schedule,
    remove_schedule,
    resume_schedule,
    run_schedule,
    schedule_history,
)
from batchnb.services.workspace import Workspace
from tests.queue.schedule_notebooks import write_notebook

HOSTILE = "<script>alert('x')</script>"


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    return write_notebook(tmp_path / "tiny.ipynb")


def test_parameters_are_read_like_papermills_dash_p() -> None:
    values = ["3", "-2", "0.25", "1e3", "True", "False", "None", "inbox", "0 * * * *", ""]
    assert [parse_parameter(v) for v in values] == [
        3,
        -2,
        0.25,
        1000.0,
        True,
        False,
        None,
        "inbox",
        "0 * * * *",
        "",
    ]


def test_add_stores_the_schedule_and_refuses_what_it_could_not_run(
    workspace: Workspace, notebook: Path, tmp_path: Path
) -> None:
    added = add_schedule(
        notebook,
        name="hourly",
        cron="0 * * * *",
        parameters={"inputs": "inbox", "max_failure_rate": 0.2},
        working_dir=tmp_path,
        workspace=workspace,
    )

    assert added.notebook == str(notebook.resolve())
    assert added.output_dir == str(workspace.settings.home / "schedules" / "hourly")
    assert added.working_dir == str(tmp_path.resolve())
    assert added.next_due_at.minute == 0 and added.next_due_at.second == 0
    assert added.status == "new" and added.owner == workspace.settings.user
    assert [s.name for s in list_schedules(workspace=workspace)] == ["hourly"]
    with pytest.raises(ScheduleError, match=r"a schedule named 'hourly' exists.*remove hourly"):
        add_schedule(notebook, name="hourly", cron="0 * * * *", workspace=workspace)
    with pytest.raises(ScheduleError, match="'every hour' is not a cron expression"):
        add_schedule(notebook, name="other", cron="every hour", workspace=workspace)
    with pytest.raises(ScheduleError, match="cannot name a schedule"):
        add_schedule(notebook, name="../up", cron="0 * * * *", workspace=workspace)
    with pytest.raises(ScheduleError, match="no such notebook"):
        add_schedule(tmp_path / "nope.ipynb", name="x", cron="0 * * * *", workspace=workspace)
    with workspace.db.read() as session:
        actions = session.scalars(select(AuditEvent.action)).all()
    assert actions == ["schedule_add"]


def test_run_now_pause_resume_history_and_remove(
    workspace: Workspace, notebook: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran.txt"
    added = add_schedule(
        notebook,
        name="nightly",
        cron="30 2 * * *",
        parameters={"marker": str(marker), "text": "by hand"},
        working_dir=tmp_path,
        workspace=workspace,
    )

    run = run_schedule("nightly", workspace=workspace)

    assert (run.status, run.manual, run.error) == ("succeeded", True, None)
    assert marker.read_text() == "by hand\n"
    assert Path(run.output_path or "").is_file()
    assert Path(run.output_path or "").parent == Path(added.output_dir)
    [listed] = list_schedules(workspace=workspace)
    assert listed.last_run == run and listed.next_due_at == added.next_due_at

    paused = pause_schedule("nightly", workspace=workspace)
    assert paused.paused and paused.status == "paused"
    assert run_due_schedules(workspace.db, "w", added.next_due_at + timedelta(days=3)) == []
    resumed = resume_schedule("nightly", workspace=workspace)
    assert not resumed.paused and resumed.next_due_at >= added.next_due_at

    assert schedule_history("nightly", workspace=workspace) == [run]
    remove_schedule("nightly", workspace=workspace)
    assert list_schedules(workspace=workspace) == []
    with workspace.db.read() as session:
        assert session.scalar(select(func.count()).select_from(ScheduleRun)) == 0
    assert Path(run.output_path or "").is_file()  # outputs stay
    with pytest.raises(NotFoundError, match=r"no schedule named 'nightly'.*batchnb schedule add"):
        schedule_history("nightly", workspace=workspace)


def test_only_the_owner_or_an_admin_changes_a_schedule(
    workspace: Workspace, notebook: Path
) -> None:
    add_schedule(notebook, name="alices", cron="0 * * * *", workspace=workspace, actor="alice")

    for change in (pause_schedule, remove_schedule, run_schedule):
        with pytest.raises(PermissionDeniedError, match="user 'bob' may not"):
            change("alices", workspace=workspace, actor="bob")  # type: ignore[operator]
    assert [s.name for s in list_schedules(workspace=workspace)] == ["alices"]


def test_a_failing_schedule_is_a_health_problem_and_in_the_analytics(
    workspace: Workspace, notebook: Path, tmp_path: Path
) -> None:
    add_schedule(
        notebook,
        name="inbox-hourly",
        cron="0 * * * *",
        parameters={"marker": str(tmp_path / "ran.txt"), "fail": True},
        working_dir=tmp_path,
        workspace=workspace,
    )
    assert not any("schedule" in p for p in check_health(workspace).problems)

    failed = run_schedule("inbox-hourly", workspace=workspace)

    assert failed.status == "failed" and not failed.ok
    report = check_health(workspace)
    [problem] = [p for p in report.problems if p.startswith("schedule ")]
    assert re.fullmatch(
        r"schedule inbox-hourly failed at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: In \[4\]: "
        r"TooManyFailures: 3 of 4 documents failed \(75%\), over the allowed 10%",
        problem,
    ), problem
    assert not report.healthy
    summary = analytics_summary(workspace=workspace)
    assert summary.scheduled_runs == {"succeeded": 0, "failed": 1, "running": 0}
    assert list(summary.scheduled_failures.schedule) == ["inbox-hourly"]
    assert "TooManyFailures" in summary.scheduled_failures.error[0]
    data = json.loads(json.dumps(summary.as_dict()))
    assert data["scheduled_runs"]["failed"] == 1
    assert "failed scheduled runs (1)" in summary._repr_html_()


def test_schedules_and_runs_show_escaped_in_a_notebook(
    workspace: Workspace, notebook: Path, tmp_path: Path
) -> None:
    added = add_schedule(
        notebook,
        name="shown",
        cron="0 * * * *",
        parameters={"text": HOSTILE, "marker": str(tmp_path / "m.txt"), "fail": True},
        working_dir=tmp_path,
        workspace=workspace,
    )
    run = run_schedule("shown", workspace=workspace)
    listed = list_schedules(workspace=workspace)[0]

    for value in (added, listed):
        markup = value._repr_html_()
        assert "<script" not in markup and "&lt;script&gt;" in markup
    for value in (added, listed, run):
        assert "<script" not in value._repr_html_()
        assert "object at 0x" not in repr(value)
    assert repr(added).startswith("ScheduleInfo('shown', cron='0 * * * *', new, next due ")
    assert repr(run).startswith("ScheduleRunInfo('shown', due ") and "failed" in repr(run)
    assert "TooManyFailures" in run._repr_html_()
