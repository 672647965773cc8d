"""Analytics reports read back: Excel sheets, cells and charts; HTML tables, SVG and escaping."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from batchnb.cli import main
from batchnb.errors import ExportError
from batchnb.services.analytics import (
    FAILURE_COLUMNS,
    TIMING_COLUMNS,
    TREND_COLUMNS,
    VOLUME_COLUMNS,
    AnalyticsSummary,
    analytics_summary,
)
from batchnb.services.analytics_report import SHEETS, report_html, write_report
from batchnb.services.workspace import Workspace
from tests.services.test_analytics import ADMIN, seed_history

MALICIOUS_FILE = "<img src=x onerror=alert(1)>.pdf"
MALICIOUS_ERROR = "=HYPERLINK(\"http://evil\") </td><script>alert('x')</script>"


@pytest.fixture
def seeded(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AnalyticsSummary:
    """The seeded history of test_analytics, all users, from March 2024 on."""
    monkeypatch.setenv("BATCHNB_ADMINS", ADMIN)
    workspace: Workspace = request.getfixturevalue("workspace")
    seed_history(workspace)
    return analytics_summary(start=datetime(2024, 3, 1), actor=ADMIN, workspace=workspace)


def hostile_summary() -> AnalyticsSummary:
    """A hand-made summary whose texts try to break out of cells, tables and SVG."""
    return AnalyticsSummary(
        start=datetime(2024, 3, 1, tzinfo=UTC),
        end=None,
        user="<u>mallory</u>",
        batches=1,
        documents=2,
        completed=1,
        failed=1,
        cancelled=0,
        open=0,
        pages=3,
        timing=pd.DataFrame(
            [("document_type", "<svg onload=alert(1)>", 1, 10.0, 10.0, 10.0)],
            columns=TIMING_COLUMNS,
        ),
        failures=pd.DataFrame(
            [("<b>kind</b>", 1, 1.0, MALICIOUS_ERROR, MALICIOUS_FILE)], columns=FAILURE_COLUMNS
        ),
        volume_daily=pd.DataFrame(
            [(date(2024, 3, 4), 2, 1, 1, 0, 0, 3)], columns=["day", *VOLUME_COLUMNS]
        ),
        volume_weekly=pd.DataFrame(
            [(date(2024, 3, 4), 2, 1, 1, 0, 0, 3)], columns=["week", *VOLUME_COLUMNS]
        ),
        trends=pd.DataFrame(
            [(pd.Timestamp("2024-03-04 09:00", tz="UTC"), "<q>", 2, 1, 1, 0, 0, 5.5, 7.0)],
            columns=TREND_COLUMNS,
        ),
    )


def rows(path: Path, sheet: str) -> list[tuple[object, ...]]:
    workbook = openpyxl.load_workbook(path)
    return [tuple(row) for row in workbook[sheet].iter_rows(values_only=True)]


def test_excel_report_has_a_sheet_per_table_and_charts(
    seeded: AnalyticsSummary, tmp_path: Path
) -> None:
    path = write_report(seeded, tmp_path / "out" / "report.xlsx")

    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == list(SHEETS.values())
    overview = rows(path, "Overview")
    assert overview[:9] == [
        ("metric", "value"),
        ("batches", 3),
        ("documents", 13),
        ("completed", 6),
        ("failed", 5),
        ("cancelled", 1),
        ("open", 1),
        ("success_rate", pytest.approx(6 / 11)),
        ("pages", 16),
    ]
    assert "all users" in str(overview[-1][0])
    assert rows(path, "Volume per day") == [
        ("day", *VOLUME_COLUMNS),
        (datetime(2024, 3, 4), 5, 3, 2, 0, 0, 6),
        (datetime(2024, 3, 5), 5, 2, 1, 1, 1, 5),
        (datetime(2024, 3, 11), 3, 1, 2, 0, 0, 5),
    ]
    assert rows(path, "Timing")[6] == ("document_type", "invoice", 3, 766.667, 200, 1820)
    assert rows(path, "Failures")[1][:3] == ("empty", 2, 0.4)
    trends = rows(path, "Queue items per hour")
    assert trends[1][:9] == (datetime(2024, 3, 4, 9), "batch_processing", 6, 3, 3, 0, 1, 200, 300)
    # The chart's own table beside it: hour 10 of March 5 sums both queues.
    assert trends[2][11:15] == (datetime(2024, 3, 5, 10), 5, 2, 1)

    charts = {sheet.title: [type(c).__name__ for c in sheet._charts] for sheet in workbook}
    assert charts["Volume per day"] == ["BarChart"]
    assert charts["Failures"] == ["BarChart"]
    assert charts["Queue items per hour"] == ["LineChart"]
    assert charts["Overview"] == charts["Timing"] == []


def test_excel_report_neutralises_formulas(tmp_path: Path) -> None:
    path = write_report(hostile_summary(), tmp_path / "report.xlsx")

    failure = rows(path, "Failures")[1]
    assert failure[3] == "'" + MALICIOUS_ERROR
    assert failure[4] == MALICIOUS_FILE
    assert rows(path, "Queue items per hour")[1][:2] == (datetime(2024, 3, 4, 9), "<q>")


def test_html_report_has_tables_charts_and_no_script(
    seeded: AnalyticsSummary, tmp_path: Path
) -> None:
    path = write_report(seeded, tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")

    assert text.startswith("<!doctype html>")
    assert text.count("<table") == len(SHEETS)
    for heading in SHEETS.values():
        assert f"<h2>{heading}</h2>" in text
    assert "<td>success_rate</td>\n      <td>54.5%</td>" in text
    assert "<td>invoice</td>\n      <td>3</td>\n      <td>766.667</td>" in text
    assert "<td>2024-03-11</td>" in text
    # Three charts (volume per day, failures, trends), each well-formed XML.
    svgs = re.findall(r"<svg.*?</svg>", text, flags=re.S)
    assert len(svgs) == 3
    titles = [ET.fromstring(svg).get("aria-label") for svg in svgs]
    assert titles == [
        "Failed documents by kind",
        "Documents per day",
        "Queue items per hour (all queues)",
    ]
    volume = ET.fromstring(svgs[1])
    bars = [r for r in volume.iter("{http://www.w3.org/2000/svg}rect") if r.find("*") is not None]
    # 3 days x (created, completed, failed); the tallest is 5 created on March 4 and 5.
    assert len(bars) == 9
    heights = [float(bar.get("height", "")) for bar in bars]
    assert heights[0] == heights[1] == max(heights)
    # Self-contained: no script, no stylesheet or image fetched, no link.
    assert "<script" not in text.lower()
    assert not re.search(r"\b(src|href)\s*=", text)
    # The error text of the seeded history is escaped, in the table and nowhere raw.
    assert "not a readable PDF: &lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;x&lt;/b&gt;.pdf" in text


def test_html_report_escapes_every_text(tmp_path: Path) -> None:
    text = report_html(hostile_summary())

    assert "<script" not in text and "<img" not in text and "<u>" not in text
    assert "<svg onload" not in text and "<b>kind" not in text and "<q>" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;.pdf" in text
    assert "&lt;/td&gt;&lt;script&gt;" in text
    assert "user &lt;u&gt;mallory&lt;/u&gt;" in text
    for svg in re.findall(r"<svg.*?</svg>", text, flags=re.S):
        ET.fromstring(svg)  # still well-formed with hostile labels
    assert "&lt;b&gt;kind&lt;/b&gt;" in re.findall(r"<svg.*?</svg>", text, flags=re.S)[0]


def test_an_empty_summary_still_makes_a_report(workspace: Workspace, tmp_path: Path) -> None:
    summary = analytics_summary(workspace=workspace)

    text = write_report(summary, tmp_path / "empty.htm").read_text(encoding="utf-8")
    assert "<svg" not in text and text.count("nothing in this period") == len(SHEETS) - 1
    workbook = openpyxl.load_workbook(write_report(summary, tmp_path / "empty.xlsx"))
    assert workbook.sheetnames == list(SHEETS.values())
    assert all(not sheet._charts for sheet in workbook)


def test_unknown_report_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"name a \.xlsx or \.html file"):
        write_report(hostile_summary(), tmp_path / "report.pdf")
    assert not (tmp_path / "report.pdf").exists()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def cli_history(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The seeded history in the workspace the command opens (BATCHNB_HOME)."""
    seed_history(workspace)
    monkeypatch.setenv("BATCHNB_HOME", str(workspace.settings.home))
    monkeypatch.setenv("BATCHNB_ADMINS", ADMIN)
    return workspace


def test_cli_prints_the_users_own_figures(
    cli_history: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHNB_USER", "alice")

    data = json.loads(invoke("analytics", "--json").stdout)
    assert (data["user"], data["documents"], data["failed"]) == ("alice", 8, 4)

    text = invoke("analytics", "--from", "2024-03-10").stdout
    assert "documents 3  completed 1  failed 2" in text
    assert "success rate 33.3%  pages 5" in text
    assert "the CSV file is empty (no text)" in text
    # The trends count queue items, not documents, and say so.
    assert "Queue items per hour (trends; unlike the documents above, a retried document" in text

    refused = CliRunner().invoke(main, ["analytics", "--user", "bob"])
    assert refused.exit_code == 1
    assert "'alice' may not see the analytics of user 'bob'" in refused.stderr


def test_cli_writes_reports(
    cli_history: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BATCHNB_USER", ADMIN)
    xlsx, page = tmp_path / "a.xlsx", tmp_path / "a.html"

    result = invoke(
        "analytics",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-06",
        "--user",
        "bob",
        "--xlsx",
        str(xlsx),
        "--html",
        str(page),
    )
    assert result.exit_code == 0
    assert "documents 5  completed 2  failed 1  cancelled 1  open 1" in result.stdout
    assert f"wrote {xlsx}" in result.stderr and f"wrote {page}" in result.stderr
    assert rows(xlsx, "Overview")[2] == ("documents", 5)
    assert "user bob" in page.read_text(encoding="utf-8")


def test_cli_refuses_an_empty_period(cli_history: Workspace) -> None:
    result = CliRunner().invoke(main, ["analytics", "--from", "2024-03-02", "--to", "2024-03-01"])
    assert result.exit_code == 2
    assert "--to must come after --from" in result.stderr
