"""The Voila apps as users meet them: ``batchnb app`` started as a subprocess serves the apps of
``notebooks/`` through batchnb's template; each renders under the one title bar, with no code,
and the title bar's links lead from one app to the next."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.servers import BIN, JupyterServer, free_port, isolated_env

pytest.importorskip("playwright.sync_api", reason="playwright is missing (make setup installs it)")

from playwright.sync_api import Page, expect

Screenshot = Callable[..., Path]

#: Each app: the link's test id in the title bar, and what shows that its widget rendered.
APPS = [
    ("nav-upload", "New batch", ".batchnb-wizard"),
    ("nav-batches", "Batches", ".batchnb-manager"),
    ("nav-analytics", "Analytics", "[data-testid=card-documents]"),
]


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """``batchnb app --no-browser`` on a free port, with a workspace of its own."""
    state = tmp_path_factory.mktemp("app")
    env = isolated_env(state / "home", state / "jupyter", {"BATCHNB_USER": "ada"})
    port = free_port()
    server = JupyterServer(
        name="batchnb app",
        args=[str(BIN / "batchnb"), "app", "--no-browser", f"--port={port}"],
        env=env,
        log_path=ARTIFACTS / "logs" / "batchnb-app.log",
        port=port,
        ready_path="/voila/render/upload.ipynb",
    )
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
    # SIGTERM (systemd, docker stop) takes Ctrl-C's path: Voila and the worker it started
    # stop, and batchnb app exits 0.
    assert server.popen is not None
    assert server.popen.returncode == 0, server.log()
    worker = re.search(r"worker started \(pid (\d+)\)", server.log())
    assert worker is not None, server.log()
    assert not Path(f"/proc/{worker.group(1)}").exists(), "the worker outlived batchnb app"


def test_the_apps_render_under_one_title_bar_and_link_to_each_other(
    page: Page, app_server: JupyterServer, screenshot: Screenshot
) -> None:
    page.goto(f"{app_server.url}/voila/render/upload.ipynb")
    appbar = page.get_by_test_id("appbar")
    expect(appbar).to_contain_text("batchnb")
    expect(page.get_by_test_id("appbar-user")).to_have_text("ada")

    for testid, title, rendered in APPS:
        link = appbar.get_by_test_id(testid)
        link.click()
        expect(page).to_have_url(re.compile(rf"/voila/render/{testid[4:]}\.ipynb$"))
        expect(page.locator(rendered).first).to_be_visible(timeout=90_000)
        expect(appbar.get_by_test_id(testid)).to_have_attribute("aria-current", "page")
        expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
        # Sources are stripped: no code shows, only the apps.
        expect(page.locator(".jp-CodeCell .jp-InputArea")).to_have_count(0)
        # The README shows the first app under the title bar.
        docs_image = "app-upload.png" if testid == "nav-upload" else None
        screenshot(testid[4:], docs_image=docs_image)

    page.get_by_test_id("appbar-help").click()
    expect(page).to_have_url(re.compile(r"/voila/render/help\.ipynb$"))
    expect(page.locator(".batchnb-help").first).to_be_visible(timeout=90_000)
    screenshot("help")
    # Back where the apps start: the brand leads to the first app.
    page.get_by_role("link", name="batchnb").click()
    expect(page.locator(".batchnb-wizard")).to_be_visible(timeout=90_000)
