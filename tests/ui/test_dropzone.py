"""The Dropzone's kernel side, driven with the messages widgets/dropzone.js sends.

Each test plays the browser: ``add`` the chosen files, ``begin``, send ``chunk`` messages with
the bytes in ``buffers`` (memoryviews, as the comm delivers them), ``finish`` with the sha256.
What the widget sends back is recorded from its ``send``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import batchnb
import batchnb.ui
from batchnb.documents.uploads import upload_key
from batchnb.services.workspace import Workspace, open_workspace
from batchnb.ui.dropzone import IDLE_RELEASE_SECONDS, Dropzone
from tests.conftest import SAMPLES

PDF = SAMPLES / "bluefin-office-supplies-invoice.pdf"
TEXT = SAMPLES / "maplewood-print-invoice.txt"
CHUNK = 500
MODIFIED = 1_733_000_000_000
# The row fields the wizard relies on.
ROW_KEYS = ["id", "name", "size", "type", "pages", "status", "reason", "sent", "thumbnail"]


class Browser:
    """What dropzone.js does, message for message, for one widget."""

    def __init__(self, widget: Dropzone) -> None:
        self.widget = widget
        self.replies: list[dict[str, Any]] = []
        widget.send = self._record  # type: ignore[method-assign]

    def _record(self, content: dict[str, Any], buffers: Any = None) -> None:
        self.replies.append(content)

    def message(
        self, content: dict[str, Any], buffers: list[bytes] | None = None
    ) -> dict[str, Any]:
        before = len(self.replies)
        views = [memoryview(b) for b in buffers or []]
        self.widget._handle_message(self.widget, content, views)
        return self.replies[-1] if len(self.replies) > before else {}

    def add(self, name: str, data: bytes, reason: str = "") -> str:
        key = upload_key(name, len(data), MODIFIED)
        entry = {
            "id": key,
            "name": name,
            "size": len(data),
            "last_modified": MODIFIED,
            "reason": reason,
        }
        self.message({"type": "add", "files": [entry]})
        return key

    def begin(self, key: str) -> dict[str, Any]:
        return self.message({"type": "begin", "id": key, "epoch": 1})

    def chunk(self, key: str, data: bytes, offset: int) -> dict[str, Any]:
        content = {"type": "chunk", "id": key, "offset": offset, "epoch": 1}
        return self.message(content, [data[offset : offset + CHUNK]])

    def send_from(self, key: str, data: bytes, offset: int, stop: int | None = None) -> None:
        for start in range(offset, len(data) if stop is None else stop, CHUNK):
            reply = self.chunk(key, data, start)
            assert reply == {
                "type": "ack",
                "id": key,
                "offset": min(start + CHUNK, len(data)),
                "epoch": 1,
            }

    def finish(self, key: str, data: bytes) -> dict[str, Any]:
        sha256 = hashlib.sha256(data).hexdigest()
        return self.message({"type": "finish", "id": key, "sha256": sha256, "epoch": 1})

    def upload(self, name: str, data: bytes) -> str:
        key = self.add(name, data)
        resume = self.begin(key)
        assert resume["type"] == "resume", resume
        self.send_from(key, data, resume["offset"])
        assert self.finish(key, data) == {"type": "verified", "id": key}
        return key

    def row(self, key: str) -> dict[str, Any]:
        return next(f for f in self.widget.files if f["id"] == key)


@pytest.fixture
def dropzone(workspace: Workspace) -> Iterator[Dropzone]:
    widget = Dropzone(workspace=workspace)
    yield widget
    widget.close()


@pytest.fixture
def browser(dropzone: Dropzone) -> Browser:
    return Browser(dropzone)


@pytest.fixture
def pdf() -> bytes:
    data = PDF.read_bytes()
    assert len(data) > 3 * CHUNK
    return data


def _workspace_with_plan(tmp_path: Path, plan: str) -> Workspace:
    return open_workspace(home=str(tmp_path / plan), plan=plan)


def test_dropzone_is_a_public_widget_of_batchnb_ui() -> None:
    assert "Dropzone" in batchnb.ui.__all__ and batchnb.ui.Dropzone is Dropzone
    assert Dropzone._esm and Dropzone._css


def test_the_browser_gets_the_extensions_and_the_plan(dropzone: Dropzone) -> None:
    assert (
        ".pdf" in dropzone.accept and ".docx" in dropzone.accept and ".exe" not in dropzone.accept
    )
    assert dropzone.plan["name"] == "local" and dropzone.plan["max_files"] == 10_000
    assert dropzone.chunk_bytes == 8 * 1024 * 1024 and dropzone.window == 3


def test_chunks_in_order_give_a_verified_file_that_submit_takes(
    workspace: Workspace, browser: Browser, dropzone: Dropzone, pdf: bytes
) -> None:
    key = browser.upload("Bluefin invoice.pdf", pdf)
    row = browser.row(key)
    assert row["status"] == "verified" and row["reason"] == "" and row["sent"] == len(pdf)
    assert row["type"] == "pdf" and row["pages"] == 1
    assert row["thumbnail"].startswith("data:image/png;base64,")
    assert list(row) == ROW_KEYS
    [path] = dropzone.ready_paths
    assert path.name == "Bluefin invoice.pdf" and path.read_bytes() == pdf
    assert list((workspace.settings.home / "uploads" / "thumbnails").glob("*.png"))
    batch = batchnb.submit(
        dropzone.ready_paths, prompt="invoice number, total", workspace=workspace
    )
    assert batch.progress().total == 1 and batch.refused == []


def test_a_wrong_offset_is_refused_with_the_right_one(browser: Browser, pdf: bytes) -> None:
    key = browser.add("a.pdf", pdf)
    browser.begin(key)
    browser.chunk(key, pdf, 0)
    reply = browser.chunk(key, pdf, 2 * CHUNK)
    assert reply == {"type": "wrong_offset", "id": key, "offset": CHUNK, "epoch": 1}
    assert browser.row(key)["status"] == "uploading"
    browser.send_from(key, pdf, CHUNK)
    assert browser.finish(key, pdf)["type"] == "verified"


def test_a_new_widget_resumes_from_the_partial(workspace: Workspace, pdf: bytes) -> None:
    first = Browser(Dropzone(workspace=workspace))
    key = first.add("a.pdf", pdf)
    first.begin(key)
    first.send_from(key, pdf, 0, stop=2 * CHUNK)
    first.widget.close()  # the page closed / the kernel restarted: the partial stays

    second = Browser(Dropzone(workspace=workspace))
    assert second.add("a.pdf", pdf) == key
    assert second.begin(key) == {"type": "resume", "id": key, "offset": 2 * CHUNK, "epoch": 1}
    second.send_from(key, pdf, 2 * CHUNK)
    assert second.finish(key, pdf)["type"] == "verified"
    assert second.widget.ready_paths[0].read_bytes() == pdf
    second.widget.close()


def test_a_second_widget_is_refused_while_the_first_receives(
    workspace: Workspace, browser: Browser, pdf: bytes
) -> None:
    key = browser.add("a.pdf", pdf)
    browser.begin(key)
    browser.chunk(key, pdf, 0)
    other = Browser(Dropzone(workspace=workspace))
    other.add("a.pdf", pdf)
    reply = other.begin(key)
    assert reply["type"] == "busy" and reply["retry_after"] > 0
    assert "being uploaded elsewhere" in reply["reason"]
    assert other.row(key)["status"] == "queued"
    assert other.row(key)["reason"] == reply["reason"]
    browser.send_from(key, pdf, CHUNK)  # the first one is not disturbed
    assert browser.finish(key, pdf)["type"] == "verified"
    other.widget.close()


def test_an_idle_upload_lets_go_so_another_page_can_resume_it(
    workspace: Workspace, browser: Browser, pdf: bytes
) -> None:
    key = browser.add("a.pdf", pdf)
    browser.begin(key)
    browser.chunk(key, pdf, 0)
    browser.widget._uploads[key].last_activity -= IDLE_RELEASE_SECONDS + 1
    browser.widget._release_idle()
    assert browser.row(key)["status"] == "queued"
    assert "choose the file again" in browser.row(key)["reason"]
    other = Browser(Dropzone(workspace=workspace))
    other.add("a.pdf", pdf)
    assert other.begin(key)["offset"] == CHUNK
    other.widget.close()


def test_a_sha256_mismatch_fails_the_file(browser: Browser, pdf: bytes) -> None:
    key = browser.add("a.pdf", pdf)
    browser.begin(key)
    browser.send_from(key, pdf, 0)
    reply = browser.message({"type": "finish", "id": key, "sha256": "0" * 64, "epoch": 1})
    assert reply["type"] == "failed" and "sha256" in reply["reason"]
    assert browser.row(key)["status"] == "failed" and browser.widget.ready_paths == []
    # Retried, it starts afresh (the damaged partial is gone).
    browser.message({"type": "retry", "id": key})
    assert browser.row(key)["status"] == "queued"
    assert browser.begin(key)["offset"] == 0


def test_wrong_first_bytes_are_refused_after_the_first_chunk(
    browser: Browser, dropzone: Dropzone
) -> None:
    html = b"<!DOCTYPE html><html><body>Session expired</body></html>" + b" " * 20_000
    key = browser.add("invoice.pdf", html)
    browser.begin(key)
    reply = browser.message({"type": "chunk", "id": key, "offset": 0, "epoch": 1}, [html[:10_000]])
    reason = "invoice.pdf is not a PDF: its content is an HTML page"
    assert reply == {"type": "refused", "id": key, "reason": reason}
    assert browser.row(key)["status"] == "refused" and browser.row(key)["reason"] == reason
    assert not list((dropzone._area.partial_dir).glob("*.part"))


def test_the_plan_limits_count_and_size(tmp_path: Path) -> None:
    workspace = _workspace_with_plan(tmp_path, "plus")
    browser = Browser(Dropzone(workspace=workspace))
    entries = [
        {"id": upload_key(f"f{n}.txt", 10, 1), "name": f"f{n}.txt", "size": 10, "last_modified": 1}
        for n in range(51)
    ]
    big = 26 * 1024 * 1024
    entries.append(
        {"id": upload_key("big.pdf", big, 1), "name": "big.pdf", "size": big, "last_modified": 1}
    )
    browser.message({"type": "add", "files": entries})
    statuses = [f["status"] for f in browser.widget.files]
    assert statuses.count("queued") == 50
    assert browser.widget.files[50]["reason"] == "over the plan's limit of 50 files (plan 'plus')"
    assert browser.widget.files[51]["reason"].startswith("too large: 26.0 MiB, plan 'plus'")
    browser.widget.close()
    workspace.close()


def test_the_starter_plan_takes_no_batches(tmp_path: Path, pdf: bytes) -> None:
    workspace = _workspace_with_plan(tmp_path, "starter")
    widget = Dropzone(workspace=workspace)
    assert widget.plan["max_files"] == 0
    browser = Browser(widget)
    key = browser.add("a.pdf", pdf)
    assert browser.row(key)["status"] == "refused"
    assert browser.row(key)["reason"] == "batches are not part of the starter plan"
    widget.close()
    workspace.close()


def test_refusals_made_by_the_browser_and_duplicates_are_listed(
    browser: Browser, pdf: bytes
) -> None:
    refused = browser.add("tool.exe", b"MZ" * 10, reason=".exe files are not accepted")
    assert browser.row(refused)["status"] == "refused"
    first = browser.add("a.pdf", pdf)
    entry = {"id": upload_key("a.pdf", len(pdf), 2), "name": "a.pdf", "size": len(pdf)}
    browser.message({"type": "add", "files": [{**entry, "last_modified": 2}]})
    duplicate = browser.widget.files[-1]
    assert duplicate["id"] != first and duplicate["status"] == "refused"
    assert duplicate["reason"].startswith("already in the list")
    forged = {"id": "0" * 32, "name": "b.pdf", "size": 5, "last_modified": 1}
    browser.message({"type": "add", "files": [forged]})
    assert browser.widget.files[-1]["status"] == "refused"


def test_cancel_deletes_the_partial_and_retry_queues_again(
    browser: Browser, dropzone: Dropzone, pdf: bytes
) -> None:
    key = browser.add("a.pdf", pdf)
    browser.begin(key)
    browser.chunk(key, pdf, 0)
    assert browser.message({"type": "cancel", "id": key}) == {"type": "cancelled", "id": key}
    assert browser.row(key)["status"] == "cancelled"
    assert not list(dropzone._area.partial_dir.glob("*.part"))
    browser.message({"type": "retry", "id": key})
    assert browser.begin(key)["offset"] == 0
    browser.message({"type": "cancel_all"})
    assert browser.row(key)["status"] == "cancelled"
    browser.message({"type": "remove", "id": key})
    assert dropzone.files == []


def test_a_file_verified_before_is_not_sent_again(workspace: Workspace, pdf: bytes) -> None:
    first = Browser(Dropzone(workspace=workspace))
    key = first.upload("a.pdf", pdf)
    first.widget.close()
    second = Browser(Dropzone(workspace=workspace))
    second.add("a.pdf", pdf)
    assert second.row(key)["status"] == "verified" and second.row(key)["pages"] == 1
    assert second.replies == [{"type": "verified", "id": key}]
    second.widget.close()


@pytest.fixture
def notebook_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "notebook"
    (folder / "inbox").mkdir(parents=True)
    shutil.copy(PDF, folder / "inbox" / PDF.name)
    shutil.copy(TEXT, folder / "inbox" / TEXT.name)
    (folder / "inbox" / "notes.py").write_text("print('code')\n")
    monkeypatch.chdir(folder)
    return folder


def test_add_paths_with_a_glob_lists_files_in_place(
    dropzone: Dropzone, notebook_folder: Path
) -> None:
    refused = dropzone.add_paths("inbox/*")
    assert refused == [
        "notes.py: notes.py is not a document: text is read as a document only from "
        ".txt, .text, .csv, .md, .markdown, .html, .htm files (a .py file is code or data)"
    ]
    assert {f["name"]: f["status"] for f in dropzone.files} == {
        PDF.name: "verified",
        TEXT.name: "verified",
    }
    assert sorted(dropzone.ready_paths) == sorted(
        [notebook_folder / "inbox" / PDF.name, notebook_folder / "inbox" / TEXT.name]
    )
    pdf_row = next(f for f in dropzone.files if f["name"] == PDF.name)
    assert pdf_row["pages"] == 1 and pdf_row["thumbnail"].startswith("data:image/png")
    assert dropzone.add_paths("inbox/*.pdf") == [f"{PDF.name}: already in the list"]
    assert dropzone.add_paths("inbox/*.xlsx") == ["inbox/*.xlsx: no files match"]


def test_add_paths_refuses_what_leads_outside_the_notebook_folder(
    browser: Browser, notebook_folder: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the app\n")
    [refusal] = browser.widget.add_paths("../secret.txt")
    assert refusal.startswith("../secret.txt: outside the notebook's folder")
    assert browser.widget.add_paths(str(secret))[0].startswith(f"{secret}: outside")
    os.symlink(secret, notebook_folder / "inbox" / "link.txt")
    assert "link.txt: leads outside the notebook's folder; not added" in browser.widget.add_paths(
        "inbox/*.txt"
    )
    assert [f["name"] for f in browser.widget.files] == [TEXT.name]
    # The text box in the widget sends the same request.
    reply = browser.message({"type": "add_paths", "pattern": "inbox/*.pdf"})
    assert reply == {"type": "picked", "added": [PDF.name], "refused": []}


def test_the_hourly_cleanup_removes_a_stale_partial(
    workspace: Workspace, browser: Browser, pdf: bytes
) -> None:
    key = browser.add("a.pdf", pdf)
    browser.begin(key)
    browser.chunk(key, pdf, 0)
    browser.widget.close()
    [partial] = (workspace.settings.home / "uploads" / "partial").glob("*.part")
    old = time.time() - (workspace.settings.temp_max_age_hours + 1) * 3600
    os.utime(partial, (old, old))
    cleanup = workspace.runtime.huey._registry.string_to_task(
        "batchnb.queue.tasks.batchnb.cleanup_temp_files"
    )
    cleanup().execute()
    assert not partial.exists()


def test_a_closing_page_lets_go_at_once_and_another_view_waits(
    workspace: Workspace, browser: Browser, pdf: bytes
) -> None:
    key = browser.add("a.pdf", pdf)
    browser.message({"type": "begin", "id": key, "epoch": 1, "view": "page-1"})
    chunk = {"type": "chunk", "id": key, "offset": 0, "epoch": 1, "view": "page-1"}
    assert browser.message(chunk, [pdf[:CHUNK]])["type"] == "ack"
    # Another view of the same widget waits while this one sends.
    reply = browser.message({"type": "begin", "id": key, "epoch": 1, "view": "page-2"})
    assert reply["type"] == "busy" and "another view" in reply["reason"]
    browser.message({"type": "pause", "id": key, "view": "page-1"})
    assert browser.row(key)["reason"].startswith("paused")
    other = Browser(Dropzone(workspace=workspace))
    other.add("a.pdf", pdf)
    assert other.begin(key)["offset"] == CHUNK
    other.widget.close()


def test_chunks_after_an_idle_release_resume_where_the_partial_ends(
    browser: Browser, pdf: bytes
) -> None:
    key = browser.add("a.pdf", pdf)
    browser.begin(key)
    browser.chunk(key, pdf, 0)
    browser.widget._uploads[key].last_activity -= IDLE_RELEASE_SECONDS + 1
    # The next chunk comes after a long stall: the kernel takes the file again.
    reply = browser.chunk(key, pdf, CHUNK)
    assert reply == {"type": "resume", "id": key, "offset": CHUNK, "epoch": 1}
    browser.send_from(key, pdf, CHUNK)
    assert browser.finish(key, pdf)["type"] == "verified"
