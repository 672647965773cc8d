"""The prompt editor in a real browser: live schema while typing, a preview with its evidence
marked, the per-document error and the classifier's choice, found by their CSS classes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("playwright", reason="the browser tests need playwright (the test extra)")

from playwright.sync_api import Page, expect

from tests.browser.pages import open_voila
from tests.browser.servers import JupyterServer

Screenshot = Callable[..., Path]
LOAD_TIMEOUT = 90_000


def test_the_prompt_editor_in_voila(
    page: Page, voila_server: JupyterServer, screenshot: Screenshot
) -> None:
    open_voila(page, voila_server, "prompt_editor.ipynb")
    prompt = page.locator(".batchnb-prompt-box textarea")
    prompt.wait_for(timeout=LOAD_TIMEOUT)
    schema = page.locator(".batchnb-schema-view")
    expect(schema).to_contain_text("list the fields to extract")
    screenshot("opened", show=prompt)

    prompt.press_sequentially("invoice number, total, line items", delay=20)

    expect(page.locator(".batchnb-prompt-counter")).to_have_text("33 / 4,000 characters")
    expect(schema).to_contain_text("3 fields")
    expect(schema).to_contain_text("array of rows: description")
    screenshot("schema", show=schema)

    page.locator(".batchnb-preview-button").click()

    marked = page.locator(".batchnb-preview-output mark[data-field='invoice_number']")
    expect(marked).to_have_text("BOS-2024-0117", timeout=60_000)
    expect(page.locator(".batchnb-preview-error")).to_have_text("")
    screenshot("preview", show=page.locator(".batchnb-preview-output"))

    page.locator(".batchnb-strategy button", has_text="Per document").click()
    default = page.locator(".batchnb-default-prompt textarea")
    expect(default).to_have_value("invoice number, total, line items")
    default.fill("")
    error = page.locator(".batchnb-document-error")
    expect(error).to_contain_text("no prompt for bluefin-office-supplies-invoice.pdf")
    page.locator(".batchnb-file-prompt textarea").first.fill("invoice number")
    expect(error).not_to_contain_text("bluefin-office-supplies-invoice.pdf")
    expect(error).to_contain_text("harbor-lane-bakery-receipt.pdf")
    screenshot("per-document", show=error)

    page.locator(".batchnb-strategy button", has_text="Auto").click()
    expect(page.locator(".batchnb-template-box textarea")).to_have_count(7)
    page.locator(".batchnb-classify-button").click()
    classification = page.locator(".batchnb-classification")
    receipt = classification.locator("tr", has_text="harbor-lane-bakery-receipt.pdf")
    expect(receipt).to_contain_text("receipt", timeout=60_000)
    screenshot("auto", show=classification)
