"""The harness itself: an anywidget and an ipywidgets button render and talk to their kernel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.browser.pages import open_app, open_lab_notebook, open_voila, run_all_cells
from tests.browser.servers import JupyterServer

pytest.importorskip("playwright.sync_api", reason="playwright is missing (make setup installs it)")

from playwright.sync_api import Page, expect

Screenshot = Callable[..., Path]


def _click_and_check(page: Page, screenshot: Screenshot) -> None:
    hello = page.get_by_test_id("hello")
    expect(hello).to_have_text("anywidget says hello", timeout=60_000)
    label = page.locator(".widget-label")
    expect(label).to_have_text("not clicked")
    screenshot("rendered", show=label)
    page.get_by_role("button", name="Click me").click()
    # Both changes come back from the kernel's click handler.
    expect(label).to_have_text("clicked in the kernel")
    expect(hello).to_have_text("anywidget says clicked")
    screenshot("clicked", show=label)


def test_widgets_render_in_voila(
    page: Page, voila_server: JupyterServer, screenshot: Screenshot
) -> None:
    open_voila(page, voila_server, "smoke.ipynb")
    _click_and_check(page, screenshot)


def test_widgets_render_in_jupyterlab(
    page: Page, lab_server: JupyterServer, screenshot: Screenshot
) -> None:
    open_lab_notebook(page, lab_server, "smoke.ipynb")
    screenshot("opened")
    run_all_cells(page)
    _click_and_check(page, screenshot)


def test_widgets_render_in_notebook7(
    page: Page, notebook7_server: JupyterServer, screenshot: Screenshot
) -> None:
    open_app(page, notebook7_server, "smoke.ipynb")
    screenshot("opened")
    _click_and_check(page, screenshot)
