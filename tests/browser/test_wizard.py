"""``BatchWizard`` end to end in a real browser: each strategy in Voila and JupyterLab, one in
Notebook 7.

Files are dropped, prompts set, one document previewed (its evidence marked), the batch
submitted while no worker runs, so its progress is seen waiting, the page reloaded (Voila: a
new kernel that reattaches to the latest batch; JupyterLab: the same kernel, the widget shows
the current state), and only then a real ``batchnb worker`` is started: the progress on the
reloaded page reaches 100%. In JupyterLab and Notebook 7 another cell runs while the progress
is live (Notebook 7's page is not reloaded).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.browser.pages import open_app, save_notebook, wait_lab_idle
from tests.browser.servers import JupyterServer, Process

pytest.importorskip("playwright.sync_api", reason="playwright is missing (make setup installs it)")

from playwright.sync_api import Locator, Page, expect

Screenshot = Callable[..., Path]
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "documents"
FILES = [
    SAMPLES / "bluefin-office-supplies-invoice.pdf",
    SAMPLES / "maplewood-print-invoice.txt",
    SAMPLES / "ridgeback-bicycle-invoice.html",
]
STRATEGY_BUTTONS = {"global": "One prompt", "per_document": "Per document", "auto": "Auto"}
FINISH_TIMEOUT = 120_000


def _add_files(page: Page, screenshot: Screenshot) -> None:
    wizard = page.locator(".batchnb-wizard").last
    next_button = wizard.locator("button.batchnb-wizard-next")
    expect(next_button).to_be_disabled()
    expect(wizard.locator(".batchnb-wizard-reason")).to_contain_text("add at least one file")
    wizard.get_by_test_id("file-input").set_input_files(FILES)
    rows = wizard.locator("[data-testid=file-row][data-status=verified]")
    expect(rows).to_have_count(len(FILES), timeout=60_000)
    screenshot("files", show=wizard)
    next_button.click()


def _set_prompts(
    page: Page, strategy: str, screenshot: Screenshot, docs_image: str | None = None
) -> None:
    wizard = page.locator(".batchnb-wizard").last
    wizard.locator(".batchnb-strategy button", has_text=STRATEGY_BUTTONS[strategy]).click()
    if strategy == "global":
        box = wizard.locator(".batchnb-prompt-box textarea")
        box.fill("invoice number, date, total")
        expect(wizard.locator(".batchnb-schema-view")).to_contain_text("invoice_number")
    elif strategy == "per_document":
        wizard.locator(".batchnb-default-prompt textarea").fill("invoice number, total")
        wizard.locator(".batchnb-file-prompt-0 textarea").fill("invoice number, date, vendor")
        expect(wizard.locator(".batchnb-document-error")).to_be_empty()
    else:
        wizard.locator("button.batchnb-classify-button").click()
        expect(wizard.locator(".batchnb-classification")).to_contain_text("invoice")
    screenshot(f"prompts-{strategy}", show=wizard.locator(".batchnb-prompt-editor"))

    # Preview one document: values with their evidence marked in the page text.
    wizard.locator(".batchnb-preview-file select").select_option(FILES[0].name)
    wizard.locator("button.batchnb-preview-button").click()
    marks = wizard.locator(".batchnb-preview-output mark.batchnb-evidence")
    expect(marks.first).to_be_visible(timeout=60_000)
    expect(wizard.locator(".batchnb-preview-error")).to_be_empty()
    screenshot("preview", show=marks.first, docs_image=docs_image)
    wizard.locator("button.batchnb-wizard-next").click()


def _review_and_submit(page: Page, strategy: str, screenshot: Screenshot) -> None:
    wizard = page.locator(".batchnb-wizard").last
    review = wizard.locator(".batchnb-wizard-review")
    expect(review).to_contain_text(strategy)
    expect(review).to_contain_text(FILES[1].name)
    screenshot("review", show=review)
    wizard.locator("button.batchnb-wizard-next").click()
    wizard.locator("button.batchnb-wizard-submit").click()
    # No worker yet: the batch waits, and the wizard has become its progress panel.
    expect(wizard.locator(".batchnb-progress-percent")).to_have_text("0%", timeout=30_000)
    expect(wizard.locator(".batchnb-progress-counts")).to_contain_text("3")
    screenshot("submitted", show=wizard.locator(".batchnb-progress"))


def _last_prompt(page: Page) -> Locator:
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt").last


def _start_cell(page: Page, code: str) -> None:
    """Add a cell under the last one, type ``code`` and run it (without waiting for it)."""
    _last_prompt(page).click()
    page.keyboard.press("b")  # command mode: insert a cell below
    page.keyboard.press("Enter")
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")


def _run_another_cell(page: Page, screenshot: Screenshot) -> None:
    """Add a cell under the last one and run it while the progress panel is live."""
    _start_cell(page, "print('another cell ran', 6 * 7)")
    output = page.locator(".jp-OutputArea-output", has_text="another cell ran 42")
    expect(output).to_be_visible(timeout=30_000)
    screenshot("another-cell", show=output)


FRONTENDS_AND_STRATEGIES = [
    *((frontend, strategy) for frontend in ("voila", "lab") for strategy in STRATEGY_BUTTONS),
    # Notebook 7 shares JupyterLab's widgets and front end: one strategy shows it works there.
    ("notebook7", "global"),
]


@pytest.mark.parametrize(("frontend", "strategy"), FRONTENDS_AND_STRATEGIES)
def test_wizard_to_a_finished_batch(
    frontend: str,
    strategy: str,
    page: Page,
    screenshot: Screenshot,
    start_worker: Callable[[Path], Process],
    request: pytest.FixtureRequest,
) -> None:
    server: JupyterServer = request.getfixturevalue(f"{frontend}_server")
    home: Path = request.getfixturevalue(f"{frontend}_home")
    open_app(page, server, "wizard.ipynb")
    wizard = page.locator(".batchnb-wizard").last
    expect(wizard.locator(".batchnb-wizard-steps")).to_contain_text("1 Files", timeout=60_000)
    _add_files(page, screenshot)
    # The README shows the Voila app's preview of the one-prompt batch.
    docs_image = "wizard-preview.png" if (frontend, strategy) == ("voila", "global") else None
    _set_prompts(page, strategy, screenshot, docs_image)
    _review_and_submit(page, strategy, screenshot)
    batch_title = wizard.locator(".batchnb-progress-title").text_content() or ""
    assert batch_title.startswith("Batch ")
    batch = batch_title.split("·")[0].strip()  # "Batch 7"

    if frontend == "notebook7":
        _run_another_cell(page, screenshot)
        # The same view stays live: the worker started below takes it to 100% while a
        # long cell runs (the updates run on the kernel's event loop, which awaits yield to).
        _start_cell(page, "import asyncio\nawait asyncio.sleep(120)")
        progress = wizard.locator(".batchnb-progress").last
    elif frontend == "lab":
        _run_another_cell(page, screenshot)
        # The progress panel still answers: it shows the batch waiting, not a stale view.
        expect(wizard.locator(".batchnb-progress-percent")).to_have_text("0%")
        save_notebook(page)
        page.reload()
        wait_lab_idle(page)
        # Same kernel: the wizard's output shows the live progress of the same batch.
        progress = page.locator(".batchnb-wizard .batchnb-progress").last
    else:
        page.reload()
        # New kernel: the page's "latest batch" cell reattaches to the batch just submitted.
        progress = page.locator(".latest-batch .batchnb-progress")
    title = progress.locator(".batchnb-progress-title")
    expect(title).to_have_text(re.compile(rf"^{batch} ·"), timeout=60_000)
    expect(progress.locator(".batchnb-progress-percent")).to_have_text("0%")
    screenshot("live" if frontend == "notebook7" else "reloaded", show=progress)

    start_worker(home)
    expect(progress.locator(".batchnb-progress-percent")).to_have_text(
        "100%", timeout=FINISH_TIMEOUT
    )
    expect(progress.locator(".batchnb-progress-eta")).to_have_text("done")
    expect(progress.locator(".batchnb-progress-title")).to_contain_text("completed")
    if frontend == "notebook7":
        # The long cell is still running: the progress moved during it.
        long_cell = page.locator(".jp-CodeCell", has_text="asyncio.sleep(120)")
        expect(long_cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\*\]"))
    screenshot("finished", show=progress)
