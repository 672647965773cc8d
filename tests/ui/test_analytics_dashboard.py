"""The analytics dashboard on a real workspace: its cards and chart data, filters, permissions
and reports, checked against the service's own summary and numbers worked out from the seed."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from batchnb.db.models import AuditEvent
from batchnb.services.analytics import analytics_summary
from batchnb.services.workspace import Workspace, open_workspace
from batchnb.ui import AnalyticsDashboard
from batchnb.ui.analytics_dashboard import DEFAULT_DAYS
from batchnb.ui.charts import MAX_DAYS, dashboard_data, volume_points
from tests.ui.analytics_history import seed_days

# day -> (completed, failed); alice owns these, bob has one batch on March 2.
HISTORY = {date(2024, 3, 1): (3, 1), date(2024, 3, 3): (2, 2), date(2024, 3, 6): (4, 0)}
BOB = {date(2024, 3, 2): (2, 1)}
MARCH = (date(2024, 3, 1), date(2024, 3, 10))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    seed_days(home, HISTORY, user="alice")
    seed_days(home, BOB, user="bob")
    return home


def as_user(home: Path, user: str, admins: str = "") -> Workspace:
    return open_workspace(home=str(home), user=user, admins=admins, queue_url="memory://")


@pytest.fixture
def alice(home: Path) -> Any:
    workspace = as_user(home, "alice")
    yield workspace
    workspace.close()


@pytest.fixture
def admin(home: Path) -> Any:
    workspace = as_user(home, "root", admins="root")
    yield workspace
    workspace.close()


class Sent:
    """What the dashboard sends to the browser (the comm is not open outside a kernel)."""

    def __init__(self, dashboard: AnalyticsDashboard, monkeypatch: pytest.MonkeyPatch) -> None:
        self.messages: list[tuple[dict[str, Any], list[bytes]]] = []
        monkeypatch.setattr(dashboard, "send", self._send)

    def _send(self, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        self.messages.append((content, list(buffers or [])))


def test_cards_and_charts_show_the_period(alice: Workspace) -> None:
    dashboard = AnalyticsDashboard(start=MARCH[0], end=MARCH[1], workspace=alice)
    assert (dashboard.start, dashboard.end, dashboard.error) == ("2024-03-01", "2024-03-10", "")
    cards = dashboard.data["cards"]
    # Alice's own documents only: 12, of which 9 completed and 3 failed.
    assert (cards["documents"], cards["batches"]) == (12, 3)
    assert (cards["completed"], cards["failed"], cards["success_rate"]) == (9, 3, 0.75)
    assert cards["pages"] == dashboard.summary.pages  # type: ignore[union-attr]
    assert 0 < cards["p50_ms"] <= cards["p95_ms"]
    # One bar per day of the period, empty days included.
    volume = dashboard.data["volume"]
    assert dashboard.data["unit"] == "day"
    assert [point["label"] for point in volume][:3] == ["2024-03-01", "2024-03-02", "2024-03-03"]
    assert len(volume) == 10
    assert [(p["created"], p["completed"], p["failed"]) for p in volume if p["created"]] == [
        (4, 3, 1),
        (4, 2, 2),
        (4, 4, 0),
    ]
    status = {point["label"]: point["documents"] for point in dashboard.data["status"]}
    assert status == {"completed": 9, "failed": 3, "cancelled": 0, "open": 0}
    assert {row["label"] for row in dashboard.data["timing"]} == {"pdf", "html", "markdown", "text"}
    assert all(row["p50"] <= row["p95"] for row in dashboard.data["timing"])
    failures = {row["label"]: row["documents"] for row in dashboard.data["failures"]}
    assert failures == {"corrupt": 2, "empty": 1}
    assert "user alice" in dashboard.period
    assert not dashboard.admin and dashboard.users == []


def test_the_data_is_the_services_summary(alice: Workspace) -> None:
    dashboard = AnalyticsDashboard(start=MARCH[0], end=MARCH[1], workspace=alice)
    summary = analytics_summary(
        start=datetime(2024, 3, 1, tzinfo=UTC),
        end=datetime(2024, 3, 11, tzinfo=UTC),
        workspace=alice,
    )
    assert dashboard.data == dashboard_data(summary, *MARCH)


def test_a_narrower_period_changes_cards_and_charts(alice: Workspace) -> None:
    dashboard = AnalyticsDashboard(start=MARCH[0], end=MARCH[1], workspace=alice)
    dashboard.set_period(date(2024, 3, 1), date(2024, 3, 3))
    assert dashboard.data["cards"]["documents"] == 8
    assert len(dashboard.data["volume"]) == 3
    assert {row["label"] for row in dashboard.data["timing"]} == {"pdf", "html", "text"}
    # As the browser does it: the synced dates change.
    dashboard.end = "2024-03-01"
    assert dashboard.data["cards"]["documents"] == 4
    assert dashboard.data["cards"]["success_rate"] == 0.75


def test_the_default_period_is_the_last_days(alice: Workspace) -> None:
    dashboard = AnalyticsDashboard(workspace=alice)
    today = datetime.now(UTC).date()
    assert dashboard.end == today.isoformat()
    assert dashboard.start == (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
    assert dashboard.data["cards"]["documents"] == 0  # the history is of March 2024
    assert len(dashboard.data["volume"]) == DEFAULT_DAYS
    assert "AnalyticsDashboard(" in repr(dashboard)


def test_an_open_period_spans_the_data_and_long_ones_go_per_week(alice: Workspace) -> None:
    dashboard = AnalyticsDashboard(workspace=alice)
    dashboard.set_period(None, None)
    assert dashboard.data["cards"]["documents"] == 12
    labels = [point["label"] for point in dashboard.data["volume"]]
    assert (labels[0], labels[-1], len(labels)) == ("2024-03-01", "2024-03-06", 6)
    summary = dashboard.summary
    assert summary is not None
    unit, weeks = volume_points(summary, date(2024, 1, 1), date(2024, 1, 1) + timedelta(MAX_DAYS))
    assert unit == "week"
    assert weeks[0]["label"] == "2024-01-01"  # a Monday
    assert sum(point["created"] for point in weeks) == 12


def test_bad_dates_are_messages(alice: Workspace) -> None:
    dashboard = AnalyticsDashboard(start=MARCH[0], end=MARCH[1], workspace=alice)
    dashboard.start = "March"
    assert "YYYY-MM-DD" in dashboard.error
    dashboard.set_period(date(2024, 3, 5), date(2024, 3, 1))
    assert dashboard.error == "the last day (2024-03-01) is before the first (2024-03-05)"
    dashboard.set_period(*MARCH)
    assert dashboard.error == ""


def test_a_user_who_is_not_an_admin_sees_the_refusal_and_nothing_else(
    alice: Workspace,
) -> None:
    dashboard = AnalyticsDashboard(start=MARCH[0], end=MARCH[1], workspace=alice)
    dashboard.user = "bob"
    assert "see the analytics of user 'bob'" in dashboard.error
    assert dashboard.data == {} and dashboard.summary is None
    with alice.db.connect() as connection:
        refused = connection.execute(
            select(AuditEvent.actor, AuditEvent.action, AuditEvent.allowed).where(
                AuditEvent.action == "analytics"
            )
        ).all()
    assert refused == [("alice", "analytics", False)]
    dashboard.user = ""
    assert dashboard.error == "" and dashboard.data["cards"]["documents"] == 12


def test_an_admin_sees_everyone_or_one_user(admin: Workspace) -> None:
    dashboard = AnalyticsDashboard(start=MARCH[0], end=MARCH[1], workspace=admin)
    assert dashboard.admin and dashboard.users == ["alice", "bob"]
    assert dashboard.data["cards"]["documents"] == 15
    assert "all users" in dashboard.period
    dashboard.user = "bob"
    assert dashboard.data["cards"]["documents"] == 3
    assert [p["created"] for p in dashboard.data["volume"] if p["created"]] == [3]


def test_reports_download_as_bytes(alice: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    dashboard = AnalyticsDashboard(start=MARCH[0], end=MARCH[1], workspace=alice)
    sent = Sent(dashboard, monkeypatch)
    dashboard._handle_message(dashboard, {"type": "report", "format": "xlsx"}, [])
    ((content, buffers),) = sent.messages
    assert content["type"] == "report"
    assert content["name"] == "batchnb-analytics-2024-03-01-to-2024-03-10.xlsx"
    workbook = load_workbook(io.BytesIO(buffers[0]), read_only=True)
    overview = {row[0]: row[1] for row in workbook["Overview"].iter_rows(values_only=True)}
    assert overview["documents"] == 12 and overview["failed"] == 3

    name, page = dashboard.report("html")
    assert name.endswith(".html")
    assert b"batchnb analytics" in page and b"user alice" in page
    dashboard._handle_message(dashboard, {"type": "report", "format": "pdf"}, [])
    assert sent.messages[-1][0] == {
        "type": "error",
        "message": "no report format 'pdf'; choose xlsx or html",
    }


def test_filters_changed_together_recompute_once(alice: Workspace) -> None:
    """In a kernel, one browser message sets several filters: one summary is read, after all."""
    dashboard = AnalyticsDashboard(start=MARCH[0], end=MARCH[1], workspace=alice)
    before = dashboard._generation

    async def change() -> None:
        dashboard.start, dashboard.end = "2024-03-03", "2024-03-03"
        for _ in range(200):
            await asyncio.sleep(0.01)
            if not dashboard.busy and dashboard.data["cards"]["documents"] == 4:
                break

    asyncio.run(change())
    assert dashboard._generation == before + 1
    assert dashboard.data["cards"]["documents"] == 4 and not dashboard.busy


def test_refresh_message_reads_again(alice: Workspace) -> None:
    dashboard = AnalyticsDashboard(start=MARCH[0], end=MARCH[1], workspace=alice)
    before = dashboard._generation
    dashboard._handle_message(dashboard, {"type": "refresh"}, [])
    assert dashboard._generation == before + 1 and dashboard.error == ""


def test_help_is_built_in(alice: Workspace) -> None:
    dashboard = AnalyticsDashboard(start=MARCH[0], end=MARCH[1], workspace=alice)
    assert "Download the period" in dashboard.help_body
    assert dashboard.help().topic == "analytics"


def test_the_same_figures_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    home = tmp_path / "pg-home"
    seed_days(home, HISTORY, user="alice", database_url=postgres_url)
    workspace = open_workspace(home=str(home), user="alice", database_url=postgres_url)
    try:
        dashboard = AnalyticsDashboard(start=MARCH[0], end=MARCH[1], workspace=workspace)
        cards = dashboard.data["cards"]
        assert (cards["documents"], cards["completed"], cards["failed"]) == (12, 9, 3)
        assert [p["created"] for p in dashboard.data["volume"] if p["created"]] == [4, 4, 4]
        failures = {row["label"]: row["documents"] for row in dashboard.data["failures"]}
        assert failures == {"corrupt": 2, "empty": 1}
        dashboard.set_period(date(2024, 3, 3), date(2024, 3, 3))
        assert dashboard.data["cards"]["documents"] == 4
        assert dashboard.report("xlsx")[0] == "batchnb-analytics-2024-03-03-to-2024-03-03.xlsx"
    finally:
        workspace.close()
