"""A 200 MB upload through the ``Dropzone`` survives closing the page half-way.

Voila: the page reopened has a new kernel, which takes the file up from the partial on disk
once the old kernel lets go of it. JupyterLab: the notebook reopened has the same kernel and
widget, whose row waits, paused, for the file to be chosen again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.browser.files import padded_pdf, sha256_of
from tests.browser.pages import open_app, open_lab_notebook, open_voila, save_notebook
from tests.browser.servers import JupyterServer

pytest.importorskip("playwright.sync_api", reason="playwright is missing (make setup installs it)")

from playwright.sync_api import Page, expect

Screenshot = Callable[..., Path]
NAME = "statement-200mb.pdf"
MIB = 1024 * 1024


class PartialWatcher:
    """Samples the size of every partial upload on disk, to see whether one ever shrank."""

    def __init__(self, partial_dir: Path) -> None:
        self.partial_dir = partial_dir
        self.sizes: dict[str, list[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PartialWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for part in self.partial_dir.glob("*.part"):
                try:
                    size = part.stat().st_size
                except FileNotFoundError:
                    continue
                self.sizes.setdefault(part.name, []).append(size)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = padded_pdf(tmp_path_factory.mktemp("resume") / NAME, 200_000_000)
    yield path
    path.unlink()


@pytest.mark.parametrize("frontend", ["voila", "lab"])
def test_upload_resumes_after_the_page_closed(
    frontend: str,
    page: Page,
    screenshot: Screenshot,
    big_file: Path,
    request: pytest.FixtureRequest,
) -> None:
    server: JupyterServer = request.getfixturevalue(f"{frontend}_server")
    uploads = request.getfixturevalue(f"{frontend}_home") / "uploads"
    notebook = open_app(page, server, "resume.ipynb")
    if frontend == "lab":
        save_notebook(page)  # so that the reopened notebook shows the widget's output
    page.get_by_test_id("file-input").set_input_files(big_file)
    row = page.locator(f"[data-testid=file-row][data-name='{NAME}']")
    expect(row).to_have_attribute("data-status", "uploading", timeout=60_000)
    # Some progress is visible: at least 10% acknowledged by the kernel.
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=overall-progress]')"
        "?.dataset.percent) >= 10"
    )
    screenshot("uploading", show=page.get_by_test_id("dropzone"))
    page.close(run_before_unload=True)  # the user closes the tab

    parts = list((uploads / "partial").glob("*.part"))
    assert len(parts) == 1, parts
    # The old kernel may still write the chunk in flight: the watcher checks from here on.
    kept = parts[0].stat().st_size
    assert 0 < kept < big_file.stat().st_size

    with PartialWatcher(uploads / "partial") as watcher:
        again = page.context.new_page()
        if frontend == "lab":
            # The same kernel and widget: the row is listed, paused, asking for the file.
            open_lab_notebook(again, server, notebook)
            row = again.locator(f"[data-testid=file-row][data-name='{NAME}']")
            expect(row.get_by_test_id("file-message")).to_contain_text("paused", timeout=90_000)
            screenshot("reopened", show=again.get_by_test_id("dropzone"))
        else:
            open_voila(again, server, notebook)  # a new kernel, an empty list
        again.get_by_test_id("file-input").set_input_files(big_file)
        row = again.locator(f"[data-testid=file-row][data-name='{NAME}']")
        expect(row).to_have_attribute("data-status", "uploading", timeout=90_000)
        resumed_at = again.get_by_test_id("overall-text").text_content()
        screenshot("resumed", show=again.get_by_test_id("dropzone"))
        expect(row).to_have_attribute("data-status", "verified", timeout=180_000)
        screenshot("verified", show=again.get_by_test_id("dropzone"))

    # It went on from what was on disk: one partial, which never shrank below what was kept.
    assert list(watcher.sizes) == [parts[0].name]
    sizes = watcher.sizes[parts[0].name]
    assert min(sizes) >= kept, (kept, sizes[:5])
    # And the page said so: "22.0 of 190.7 MiB · 11%" as soon as it was sending again.
    assert resumed_at is not None
    assert float(resumed_at.split(" of ")[0]) * MIB >= kept - MIB / 20, resumed_at
    print(f"closed at {kept:,} bytes on disk; the reopened page first showed {resumed_at!r}")
    # One verified file, byte for byte; no partial left.
    arrived = sorted((uploads / "done").glob(f"*/{NAME}"))
    assert len(arrived) == 1
    assert sha256_of(arrived[0]) == sha256_of(big_file)
    assert not list(uploads.glob("**/*.part"))
