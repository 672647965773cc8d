"""``AnalyticsDashboard`` in a real browser, in Voila, JupyterLab and Notebook 7.

A history across several days of May 2023 is seeded in the server's workspace (real batches,
their dates moved back by the test); the dashboard shows its cards and SVG charts, a hovered bar
shows its value, a narrower date range changes the cards and the charts, and both reports
download and read back. The same notebook shows the magics' help panel, loads the magics and
lists the batches with ``%batchnb list``.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.browser.pages import open_app
from tests.browser.servers import JupyterServer
from tests.ui.analytics_history import seed_days

pytest.importorskip("playwright.sync_api", reason="playwright is missing (make setup installs it)")

from playwright.sync_api import Locator, Page, expect

Screenshot = Callable[..., Path]
# day -> (completed, failed): 12 documents, 9 completed, 3 failed; the notebook shows May 1-10.
HISTORY = {date(2023, 5, 1): (3, 1), date(2023, 5, 3): (2, 2), date(2023, 5, 6): (4, 0)}


def _value(dashboard: Locator, card: str) -> Locator:
    return dashboard.get_by_test_id(f"card-{card}").locator(".bna-card-value")


def _download(page: Page, button: Locator) -> bytes:
    with page.expect_download() as info:
        button.click()
    path = info.value.path()
    return Path(path).read_bytes()


@pytest.mark.parametrize("frontend", ["voila", "lab", "notebook7"])
def test_dashboard_cards_charts_hover_range_and_reports(
    frontend: str, page: Page, screenshot: Screenshot, request: pytest.FixtureRequest
) -> None:
    server: JupyterServer = request.getfixturevalue(f"{frontend}_server")
    home: Path = request.getfixturevalue(f"{frontend}_home")
    seed_days(home, HISTORY)
    open_app(page, server, "analytics.ipynb")

    dashboard = page.locator(".batchnb-analytics").last
    expect(_value(dashboard, "documents")).to_have_text("12", timeout=60_000)
    expect(_value(dashboard, "success")).to_have_text("75.0%")
    expect(_value(dashboard, "p50")).to_have_text(re.compile(r"^[\d.]+ (ms|s)$"))
    volume = dashboard.get_by_test_id("chart-volume")
    expect(volume.get_by_test_id("volume-bar")).to_have_count(10)  # one per day, May 1-10
    expect(dashboard.get_by_test_id("status-slice")).to_have_count(2)  # completed, failed
    expect(dashboard.get_by_test_id("timing-bar")).to_have_count(8)  # 4 types: p50 and p95
    expect(dashboard.get_by_test_id("failure-bar")).to_have_count(2)  # corrupt, empty
    docs_image = "analytics-dashboard.png" if frontend == "voila" else None
    screenshot("dashboard", show=dashboard, docs_image=docs_image)

    # Values on hover.
    tooltip = dashboard.get_by_test_id("tooltip")
    volume.locator("[data-testid=volume-bar][data-label='2023-05-03']").hover()
    expect(tooltip).to_be_visible()
    expect(tooltip).to_have_text("2023-05-03: 4 documents (completed 2, failed 2)")
    screenshot("hover-bar", show=dashboard)
    dashboard.locator("[data-testid=status-slice][data-label=failed]").hover()
    expect(tooltip).to_have_text("failed: 3 documents (25.0%)")
    dashboard.locator("[data-testid=failure-bar][data-label=corrupt]").hover()
    expect(tooltip).to_contain_text("corrupt: 2 documents (66.7%)")
    screenshot("hover-failure", show=dashboard)

    # A narrower range: May 1-3 holds 8 documents, 5 completed, and no markdown file.
    began = time.monotonic()
    dashboard.get_by_test_id("to").fill("2023-05-03")
    expect(_value(dashboard, "documents")).to_have_text("8")
    updated_ms = (time.monotonic() - began) * 1000
    expect(_value(dashboard, "success")).to_have_text("62.5%")
    expect(volume.get_by_test_id("volume-bar")).to_have_count(3)
    expect(dashboard.get_by_test_id("timing-bar")).to_have_count(6)
    expect(dashboard.get_by_test_id("period")).to_contain_text("2023-05-01 00:00 to 2023-05-04")
    screenshot("narrower-range", show=dashboard)
    print(f"{frontend}: range change to cards updated in {updated_ms:.0f} ms")

    # Reports: the period shown, downloaded from the browser and read back.
    workbook = _download(page, dashboard.get_by_role("button", name="Excel report"))
    sheet = load_workbook(io.BytesIO(workbook), read_only=True)["Overview"]
    overview = {row[0]: row[1] for row in sheet.iter_rows(values_only=True)}
    assert (overview["documents"], overview["completed"], overview["failed"]) == (8, 5, 3)
    expect(dashboard.get_by_test_id("status")).to_have_text(
        "Downloaded batchnb-analytics-2023-05-01-to-2023-05-03.xlsx"
    )
    report = _download(page, dashboard.get_by_role("button", name="HTML report")).decode()
    assert "<h1>batchnb analytics</h1>" in report and "2023-05-01 00:00 to 2023-05-04" in report

    # A preset goes back to a wider period.
    dashboard.get_by_role("button", name="All").click()
    expect(_value(dashboard, "documents")).not_to_have_text("8")
    expect(dashboard.get_by_test_id("from")).to_have_value("")

    # The help panel, and the magics of the notebook's last cell.
    dashboard.locator(".batchnb-help summary").click()
    expect(dashboard.locator(".batchnb-help-body")).to_contain_text("Hover a bar or a slice")
    screenshot("help", show=dashboard.locator(".batchnb-help"))
    magics_help = page.get_by_test_id("help").last
    expect(magics_help.locator("summary")).to_contain_text("Magics")
    magics_help.locator("summary").click()
    expect(magics_help).to_contain_text("%%extract PROMPT, then file paths or text in the cell")
    expect(magics_help.locator("code", has_text="docs/magics.md")).to_be_visible()
    listing = page.locator("table", has_text="history 2023-05-06").last
    expect(listing).to_be_visible()
    screenshot("help-and-magics", show=listing)
