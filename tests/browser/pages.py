"""What a user does in JupyterLab and Voila, as Playwright steps that wait on what is shown."""

from __future__ import annotations

import itertools
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tests.browser.servers import JupyterServer

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

LAB_TIMEOUT = 90_000
"""Milliseconds for JupyterLab to load and start a kernel on 2 busy cores."""

RUN_TIMEOUT = 120_000
"""Milliseconds for a notebook's cells to finish."""

START_TIMEOUT = 15_000
"""Milliseconds for a cell to start after Run All Cells (else the click is made again)."""

RUN_ATTEMPTS = 3

_ANY_CELL_STARTED = """() => {
    const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
    return [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].some(
        prompt => /\\[(\\*|\\d+)\\]/.test(prompt.textContent));
}"""

NOTEBOOKS = Path(__file__).parent / "notebooks"
"""The test notebooks as written (servers serve copies: JupyterLab saves into what it opens)."""

_copies = itertools.count(1)


def open_lab_notebook(page: Page, lab: JupyterServer, name: str) -> Locator:
    """Open ``name`` in JupyterLab with a fresh workspace and wait until its kernel is idle.

    Returns the notebook panel.
    """
    # ?reset: no notebook left open by an earlier test is restored.
    page.goto(f"{lab.url}/lab/tree/{name}?reset")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.wait_for(timeout=LAB_TIMEOUT)
    wait_lab_idle(page)
    return panel


_IDLE = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status='idle']"
_KERNEL_DIALOG = ".jp-Dialog:has-text('Select Kernel')"
_KERNEL_NAME = ".jp-NotebookPanel:not(.lm-mod-hidden) :is(.jp-KernelName, .jp-Toolbar-kernelName)"


def wait_lab_idle(page: Page, timeout: float = LAB_TIMEOUT) -> None:
    """Wait until the notebook has its kernel and the toolbar's indicator says idle.

    On two busy cores JupyterLab sometimes opens a notebook with "No Kernel" and then asks
    which kernel to start, although the notebook names one: the dialog's own choice (the
    notebook's kernel) is accepted, as a user would.
    """
    deadline = time.monotonic() + timeout / 1000
    while time.monotonic() < deadline:
        accept_kernel_dialog(page)
        named = page.locator(_KERNEL_NAME).first
        has_kernel = named.count() and "No Kernel" not in (named.text_content() or "")
        if has_kernel and page.locator(_IDLE).count():
            return
        page.wait_for_timeout(250)  # polling interval while the kernel starts
    raise AssertionError(f"the notebook's kernel was not idle within {timeout / 1000:.0f} s")


def accept_kernel_dialog(page: Page) -> bool:
    """Accept JupyterLab's "Select Kernel" dialog if it shows (see :func:`wait_lab_idle`);
    returns whether it did."""
    dialog = page.locator(_KERNEL_DIALOG)
    if not dialog.count():
        return False
    dialog.locator("button.jp-mod-accept").click()
    dialog.wait_for(state="detached")
    return True


def lab_menu(page: Page, *path: str) -> None:
    """Click through the main menu, e.g. ``lab_menu(page, "Run", "Run All Cells")``."""
    top, *items = path
    page.locator(".lm-MenuBar-itemLabel", has_text=top).first.click()
    for item in items:
        page.locator(".lm-Menu-itemLabel").filter(
            has_text=re.compile(f"^{re.escape(item)}$")
        ).first.click()


def run_all_cells(page: Page, timeout: float = RUN_TIMEOUT) -> None:
    """Run → Run All Cells, then wait until every code cell has an execution count.

    On two busy cores a click on the menu can land before JupyterLab enables the command and
    do nothing; then the click is made again (only while no cell has started).
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(1, RUN_ATTEMPTS + 1):
        accept_kernel_dialog(page)
        lab_menu(page, "Run", "Run All Cells")
        try:
            page.wait_for_function(_ANY_CELL_STARTED, timeout=START_TIMEOUT)
            break
        except PlaywrightTimeout:
            if attempt == RUN_ATTEMPTS:
                raise
            page.keyboard.press("Escape")  # close the menu if it stayed open
    page.wait_for_function(
        """() => {
            const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            // An empty cell (left by Shift+Enter on the last one) is never run.
            const cells = [...panel.querySelectorAll('.jp-CodeCell')].filter(
                cell => cell.querySelector('.cm-content')?.textContent.trim());
            return cells.length > 0 && cells.every(cell => /\\[\\d+\\]/.test(
                cell.querySelector('.jp-InputPrompt').textContent));
        }""",
        timeout=timeout,
    )


def save_notebook(page: Page) -> None:
    """File → Save Notebook, then wait until the notebook's tab no longer shows unsaved
    changes (the mark goes when the server has the file)."""
    from playwright.sync_api import expect

    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")
    lab_menu(page, "File", "Save Notebook")
    expect(tab).not_to_have_class(re.compile(r"\bjp-mod-dirty\b"), timeout=LAB_TIMEOUT)


def open_voila(page: Page, voila: JupyterServer, name: str) -> None:
    """Open the Voila app ``name``; the caller then waits on what the app shows."""
    page.goto(f"{voila.url}/voila/render/{name}")


def fresh_copy(server: JupyterServer, name: str) -> str:
    """Copy test notebook ``name`` into the server's folder under a new name, and return it.

    In JupyterLab each test then has its own kernel (one per notebook path) and starts from
    the notebook as written, whatever an earlier test ran or saved.
    """
    assert server.cwd is not None
    copy = f"{Path(name).stem}-{next(_copies)}.ipynb"
    shutil.copyfile(NOTEBOOKS / name, server.cwd / copy)
    return copy


def open_notebook7(page: Page, lab: JupyterServer, name: str) -> Locator:
    """Open ``name`` in Jupyter Notebook 7 and wait until its kernel is idle. Returns the
    notebook panel."""
    page.goto(f"{lab.url}/notebooks/{name}")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.wait_for(timeout=LAB_TIMEOUT)
    wait_lab_idle(page)
    return panel


def open_app(page: Page, server: JupyterServer, name: str) -> str:
    """Open notebook ``name`` as its user would: a Voila app, or a fresh copy in JupyterLab
    or Notebook 7 with every cell run. Returns the name opened (the copy's, in JupyterLab and
    Notebook 7)."""
    if server.name == "voila":
        open_voila(page, server, name)
        return name
    copy = fresh_copy(server, name)
    if server.name == "notebook7":
        open_notebook7(page, server, copy)
    else:
        open_lab_notebook(page, server, copy)
    run_all_cells(page)
    return copy
