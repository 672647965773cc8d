"""``Dropzone`` in a real browser: refusals before any byte moves, and a 50 MB file verified."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.browser.files import padded_pdf, sha256_of
from tests.browser.pages import open_app
from tests.browser.servers import JupyterServer

pytest.importorskip("playwright.sync_api", reason="playwright is missing (make setup installs it)")

from playwright.sync_api import Page, expect

Screenshot = Callable[..., Path]
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def chosen_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 50 MB PDF, a program, and a PDF over the growth plan's 100 MiB per file."""
    folder = tmp_path_factory.mktemp("chosen")
    big = padded_pdf(folder / "scan-50mb.pdf", 50_000_000)
    program = folder / "setup.exe"
    program.write_bytes(b"MZ\x90\x00" + bytes(4092))
    oversize = folder / "archive-scan.pdf"
    with oversize.open("wb") as handle:  # refused by its size: its bytes are never read
        handle.write(b"%PDF-1.4\n")
        handle.truncate(101 * MIB)
    return {"big": big, "program": program, "oversize": oversize}


@pytest.mark.parametrize("frontend", ["voila", "lab"])
def test_dropzone_refuses_and_verifies(
    frontend: str,
    page: Page,
    screenshot: Screenshot,
    chosen_files: dict[str, Path],
    request: pytest.FixtureRequest,
) -> None:
    server: JupyterServer = request.getfixturevalue(f"{frontend}_server")
    home: Path = request.getfixturevalue(f"{frontend}_home")
    open_app(page, server, "dropzone.ipynb")
    limits = page.get_by_test_id("plan-limits")
    expect(limits).to_contain_text("Plan growth", timeout=60_000)
    screenshot("empty", show=limits)

    page.get_by_test_id("file-input").set_input_files(list(chosen_files.values()))

    program = page.locator("[data-testid=file-row][data-name='setup.exe']")
    expect(program).to_have_attribute("data-status", "refused")
    expect(program.get_by_test_id("file-message")).to_contain_text(".exe files are not accepted")
    oversize = page.locator("[data-testid=file-row][data-name='archive-scan.pdf']")
    expect(oversize).to_have_attribute("data-status", "refused")
    expect(oversize.get_by_test_id("file-message")).to_have_text(
        "too large: 101.0 MiB, plan 'growth' allows 100.0 MiB"
    )
    big = page.locator("[data-testid=file-row][data-name='scan-50mb.pdf']")
    dropzone = page.get_by_test_id("dropzone")  # its rows are redrawn on every change
    screenshot("chosen", show=dropzone)
    expect(big).to_have_attribute("data-status", "verified", timeout=120_000)
    expect(big).to_contain_text("47.7 MiB · pdf · 1 page")
    screenshot("verified", show=dropzone)

    # What the kernel kept: the 50 MB file, byte for byte; no partial; nothing of the others.
    uploads = home / "uploads"
    arrived = sorted((uploads / "done").glob("*/scan-50mb.pdf"))
    assert len(arrived) == 1
    assert sha256_of(arrived[0]) == sha256_of(chosen_files["big"])
    assert not list(uploads.glob("**/*.part"))
    assert not list(uploads.glob("done/*/setup.exe"))
    assert not list(uploads.glob("done/*/archive-scan.pdf"))
