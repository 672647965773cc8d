"""Real-browser tests: JupyterLab and Voila servers driven by Playwright in Debian's Chromium.

Servers, the browser and the ``batchnb worker`` are session-scoped and started on first use, so
a run pays for each once. Every test gets a fresh browser context and a page that records the
console: any console error or uncaught page error fails the test. Screenshots, console logs
and server logs go to ``test-artifacts/browser/`` at the repository root.

Skipped, with the reason, where Chromium or Playwright is missing (``make system-packages``
installs Chromium; ``make setup`` installs Playwright). ``pytest -m "not browser"`` leaves
them out.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser import servers
from tests.browser.servers import CHROMIUM, CHROMIUM_ARGS, JupyterServer, Process

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, Playwright

NOTEBOOKS = Path(__file__).parent / "notebooks"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
"""Where ``screenshot(..., docs_image=NAME)`` writes the pictures the docs show."""

#: Console errors that do not fail a test, each with why. Keep this list short and specific.
ALLOWED_CONSOLE_ERRORS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(
            r"Failed to load resource: net::ERR_NAME_NOT_RESOLVED "
            r"\(https://cdn\.jsdelivr\.net/npm/@fortawesome/fontawesome-free@%5E5/css/"
            r"(all|v4-shims)\.min\.css"
        ),
        # Voila 0.5.13's lab template (voila/templates/lab/index.html.j2, block notebook_css)
        # links Font Awesome from a CDN although its own bundle already holds Font Awesome;
        # this machine has no internet. batchnb's own Voila template (templates/) should drop
        # the links, and this entry with them.
        "Voila's lab template links Font Awesome from cdn.jsdelivr.net",
    ),
    (
        re.compile(
            r"Failed to load resource: the server responded with a status of 403 \(Forbidden\) "
            r"\(http://127\.0\.0\.1:\d+/voila/api/shutdown/"
        ),
        # Voila 0.5.13's page asks the server to shut its kernel down when it unloads, without
        # the _xsrf token the server requires ("'_xsrf' argument missing from POST" in its
        # log): the kernel outlives the page. batchnb copes (an idle upload lets go of its
        # file), and test_resume.py relies on that; the error itself is Voila's.
        "Voila's shutdown-on-unload request lacks the _xsrf token",
    ),
    (
        re.compile(
            r"Cannot read properties of undefined \(reading 'schema'\)"
            r".*/static/notebook/notebook_core\.",
            re.DOTALL,
        ),
        # Notebook 7.6.5 (with JupyterLab 4.6.6) at start, before any notebook code runs, with
        # no extension but its own (checked with every labextension disabled): its keyboard
        # shortcuts plugin reads ``plugins[id].schema`` of a settings plugin the page has not
        # loaded. Nothing on the page is affected.
        "Notebook 7's shortcuts plugin reads the schema of a plugin it did not load",
    ),
]

#: Every process the session started, for the logs shown when a test fails.
_PROCESSES: list[Process] = []


# -- marks and failure reports ---------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the tail of every server's log to a failed browser test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and item.get_closest_marker("browser") is not None:
        for process in _PROCESSES:
            tail = "\n".join(process.log().splitlines()[-60:])
            report.sections.append((f"{process.name} log (last 60 lines)", tail))


# -- processes -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Temporary folder of the session's servers: notebooks, workspace, Jupyter state."""
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="session")
def lab_home(browser_state: Path) -> Path:
    """``BATCHNB_HOME`` of JupyterLab's kernels (and of workers started for them)."""
    return browser_state / "lab-home"


@pytest.fixture(scope="session")
def voila_home(browser_state: Path) -> Path:
    """``BATCHNB_HOME`` of Voila's kernels: apart from JupyterLab's, so that a Voila page's
    ``batchnb.latest_batch()`` is the batch its own test submitted."""
    return browser_state / "voila-home"


@pytest.fixture(scope="session")
def notebook_root(browser_state: Path) -> Path:
    """A copy of ``tests/browser/notebooks`` the servers serve (JupyterLab writes into it)."""
    root = browser_state / "notebooks"
    shutil.copytree(NOTEBOOKS, root)
    return root


def _start(starter: Callable[[], Process]) -> Process:
    process = starter()
    _PROCESSES.append(process)
    return process


@pytest.fixture(scope="session")
def lab_server(
    _browser_available: None, browser_state: Path, lab_home: Path, notebook_root: Path
) -> Iterator[JupyterServer]:
    """JupyterLab on a free port, serving the test notebooks."""
    env = servers.isolated_env(lab_home, browser_state / "lab")
    server = _start(lambda: servers.start_lab(notebook_root, env, ARTIFACTS / "logs" / "lab.log"))
    assert isinstance(server, JupyterServer)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def notebook7_home(browser_state: Path) -> Path:
    """``BATCHNB_HOME`` of Notebook 7's kernels."""
    return browser_state / "notebook7-home"


@pytest.fixture(scope="session")
def notebook7_server(
    _browser_available: None, browser_state: Path, notebook7_home: Path, notebook_root: Path
) -> Iterator[JupyterServer]:
    """Jupyter Notebook 7 on a free port, serving the test notebooks.

    A server of its own: pages of Notebook 7 served beside JupyterLab's throw errors of theirs
    (commands of JupyterLab's file browser that Notebook 7 does not register)."""
    env = servers.isolated_env(notebook7_home, browser_state / "notebook7")
    log = ARTIFACTS / "logs" / "notebook7.log"
    server = _start(lambda: servers.start_lab(notebook_root, env, log, app="notebook"))
    assert isinstance(server, JupyterServer)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def voila_server(
    _browser_available: None, browser_state: Path, voila_home: Path, notebook_root: Path
) -> Iterator[JupyterServer]:
    """Voila on a free port, serving the test notebooks at ``/voila/render/NAME.ipynb``."""
    env = servers.isolated_env(voila_home, browser_state / "voila")
    server = _start(
        lambda: servers.start_voila(notebook_root, env, ARTIFACTS / "logs" / "voila.log")
    )
    assert isinstance(server, JupyterServer)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _lab_sessions_closed() -> Iterator[None]:
    """After each test, the kernels of JupyterLab and Notebook 7 are shut down: the next test
    opens its own."""
    yield
    for process in _PROCESSES:
        lab = isinstance(process, JupyterServer) and process.name in ("jupyterlab", "notebook7")
        if lab and process.running():
            process.close_sessions()


@pytest.fixture
def start_worker(browser_state: Path, artifacts: Path) -> Iterator[Callable[[Path], Process]]:
    """``start_worker(home)`` starts a real ``batchnb worker`` on that workspace, when the test
    chooses (a batch can be seen waiting first); every one started is stopped at the end."""
    started: list[Process] = []

    def start(home: Path) -> Process:
        env = servers.isolated_env(home, browser_state / "worker")
        log = artifacts / f"worker-{len(started) + 1}.log"
        worker = _start(lambda: servers.start_worker(env, log))
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
        _PROCESSES.remove(worker)


# -- the browser -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _browser_available() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (make system-packages installs Chromium)")
    pytest.importorskip("playwright", reason="playwright is missing (make setup installs it)")
    for tool in ("jupyter", "voila"):
        if not (servers.BIN / tool).exists():
            pytest.skip(f"{servers.BIN / tool} is missing (make setup installs it)")


@pytest.fixture(scope="session")
def playwright(_browser_available: None) -> Iterator[Playwright]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """This test's artifacts folder, emptied first."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    folder = ARTIFACTS / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


class ConsoleRecorder:
    """What the pages of a context wrote to their consoles, and the errors they threw."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._pages: dict[int, int] = {}

    def _page_number(self, page: Any) -> int:
        return self._pages.setdefault(id(page), len(self._pages) + 1)

    def on_console(self, message: ConsoleMessage) -> None:
        location = message.location
        where = f" ({location.get('url', '')}:{location.get('lineNumber', '')})" if location else ""
        number = self._page_number(message.page)
        line = f"[page {number} {message.type}] {message.text}{where}"
        if message.type == "error":
            line = self._error(line)
        self.lines.append(line)

    def _error(self, line: str) -> str:
        """Record ``line`` as an error unless it is allowed; returns it as logged."""
        allowed = next(
            (why for pattern, why in ALLOWED_CONSOLE_ERRORS if pattern.search(line)), None
        )
        if allowed is None:
            self.errors.append(line)
            return line
        return f"{line}  [allowed: {allowed}]"

    def on_page_error(self, error: Any, page: Any) -> None:
        stack = getattr(error, "stack", None) or ""
        number = self._page_number(page)
        line = f"[page {number} pageerror] {error}" + (f"\n    {stack}" if stack else "")
        self.lines.append(self._error(line))


@pytest.fixture
def console() -> ConsoleRecorder:
    return ConsoleRecorder()


@pytest.fixture
def page(
    browser: Browser, artifacts: Path, console: ConsoleRecorder, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A page in a fresh context; the test fails on any console error or page error of any
    page of that context (a page it opens later too).

    Only the errors of :data:`ALLOWED_CONSOLE_ERRORS` are let through, each for the reason
    written there: any other is a defect of the product or of the test set-up.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    new_page = context.new_page()
    new_page.set_default_timeout(30_000)
    context.on("console", console.on_console)
    context.on("weberror", lambda error: console.on_page_error(error.error, error.page))
    yield new_page
    if getattr(request.node, "_browser_call_failed", False):
        for number, open_page in enumerate(context.pages, start=1):
            open_page.screenshot(path=artifacts / f"failure-{number}.png", full_page=True)
    context.close()
    (artifacts / "console.log").write_text("\n".join(console.lines) + "\n")
    if console.errors:
        pytest.fail("console errors:\n" + "\n".join(console.errors), pytrace=False)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    outcome = yield
    item._browser_call_failed = outcome.excinfo is not None  # type: ignore[attr-defined]


@pytest.fixture
def screenshot(page: Page, artifacts: Path) -> Callable[..., Path]:
    """``screenshot("dropped", show=locator)`` scrolls ``locator`` into view and saves
    ``NN-dropped.png`` of its page (default: the test's page) in the test's artifacts folder.

    ``docs_image="wizard-preview.png"`` marks the shot as the one the README or docs show:
    with ``BATCHNB_TEST_UPDATE_DOCS_IMAGES=1`` in the environment (``make docs-images``) it is
    also written to ``docs/images/``, so the pictures in the docs are the tests' own.
    """
    count = 0

    def take(step: str, show: Locator | None = None, *, docs_image: str | None = None) -> Path:
        nonlocal count
        count += 1
        shown = page
        if show is not None:
            # JupyterLab scrolls inside the notebook panel: a full-page shot would miss it.
            show.scroll_into_view_if_needed()
            shown = show.page
        path = artifacts / f"{count:02d}-{re.sub(r'[^A-Za-z0-9_-]+', '-', step)}.png"
        shown.screenshot(path=path, full_page=True)
        if docs_image is not None and os.environ.get("BATCHNB_TEST_UPDATE_DOCS_IMAGES") == "1":
            shutil.copyfile(path, DOCS_IMAGES / docs_image)
        return path

    return take
