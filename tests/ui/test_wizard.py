"""The batch wizard: each step's gate and reason, the review's figures, submitting, errors."""

from __future__ import annotations

import html
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchnb.services.batches import get_batch
from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace, open_workspace
from batchnb.ui import BatchProgress, BatchWizard
from batchnb.ui.wizard import NO_THROUGHPUT, STEPS, estimate_duration
from tests.conftest import SAMPLES

PROMPT = "invoice number, date, total"
TEXT = "maplewood-print-invoice.txt"
PDF = "bluefin-office-supplies-invoice.pdf"


@pytest.fixture
def immediate(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace whose queue runs each document inside submit (no worker needed)."""
    ws = open_workspace(home=str(tmp_path / "immediate"), queue_url="memory://")
    yield ws
    ws.close()


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with two sample documents (the Dropzone adds paths under it)."""
    folder = tmp_path / "work"
    folder.mkdir()
    for name in (TEXT, PDF):
        shutil.copy(SAMPLES / name, folder / name)
    monkeypatch.chdir(folder)
    return folder


def reason(wizard: BatchWizard) -> str:
    return wizard._reason.value


def at_review(wizard: BatchWizard, prompt: str = PROMPT) -> None:
    assert wizard.dropzone.add_paths("*") == []
    assert wizard.next()
    wizard.editor.prompt = prompt
    assert wizard.next() and wizard.step == 2


def test_files_step_waits_for_a_verified_file_and_says_why(
    immediate: Workspace, files: Path
) -> None:
    wizard = BatchWizard(workspace=immediate)
    assert wizard.step == 0 and "batchnb-wizard" in wizard._dom_classes
    assert wizard._next.disabled and wizard._back.disabled
    assert "add at least one file" in reason(wizard)
    assert wizard.next() is False and wizard.step == 0
    assert "aria-current='step'" in wizard._steps.value and "1 Files" in wizard._steps.value
    wizard.dropzone.files = [
        {"id": "x", "name": "big.pdf", "size": 9, "type": "", "pages": None,
         "status": "uploading", "reason": ""}
    ]  # fmt: skip
    assert "wait for 1 file still being checked" in reason(wizard) and wizard._next.disabled
    wizard.dropzone.files = []
    assert wizard.dropzone.add_paths(TEXT) == []
    assert not wizard._next.disabled and reason(wizard) == ""
    assert wizard.next() and wizard.step == 1
    assert [p.name for p in wizard.editor.files] == [TEXT]  # the editor knows the files


def test_prompts_step_is_gated_by_the_editors_problems(immediate: Workspace, files: Path) -> None:
    wizard = BatchWizard(workspace=immediate)
    wizard.dropzone.add_paths(TEXT)
    wizard.next()
    assert wizard.editor.problems() and wizard._next.disabled
    assert html.escape(wizard.editor.problems()[0]) in reason(wizard)
    assert wizard.next() is False and wizard.step == 1
    wizard.editor.prompt = PROMPT
    assert not wizard._next.disabled and reason(wizard) == ""
    wizard.back()
    assert wizard.step == 0 and wizard.editor.prompt == PROMPT  # nothing is lost going back
    assert wizard.next() and wizard.next() and wizard.step == 2


def test_review_shows_files_size_pages_strategy_extractor_and_estimate(
    immediate: Workspace, files: Path
) -> None:
    wizard = BatchWizard(workspace=immediate)
    at_review(wizard)
    figures = wizard.review()
    sizes = sum((files / name).stat().st_size for name in (TEXT, PDF))
    assert sorted(figures["files"]) == sorted([TEXT, PDF])
    # The PDF's page is counted; a text file has no pages until it is parsed.
    assert figures["size"] == sizes and figures["pages"] == 1 and figures["pages_unknown"] == 1
    assert figures["strategy"] == "global" and figures["extractor"] == "offline"
    assert NO_THROUGHPUT in figures["estimate"]  # a fresh workspace has no history
    shown = wizard._review.value
    assert "batchnb-wizard-review" in wizard._review._dom_classes
    assert TEXT in shown and "offline" in shown and NO_THROUGHPUT in shown
    assert "2.7 KB" in shown and "1 (not counted: 1 file without pages)" in shown
    assert "3 Review" in wizard._steps.value


def test_the_estimate_uses_recent_throughput(immediate: Workspace) -> None:
    assert estimate_duration(4, "offline", immediate).seconds is None
    submit([SAMPLES / TEXT, SAMPLES / PDF], PROMPT, workspace=immediate)
    estimate = estimate_duration(4, "offline", immediate)
    assert estimate.seconds is not None and estimate.seconds > 0
    assert str(estimate).startswith("about ") and "2 recent jobs" in str(estimate)
    assert "no worker running" in str(estimate)


def test_submit_creates_the_batch_and_becomes_its_progress(
    immediate: Workspace, files: Path
) -> None:
    wizard = BatchWizard(workspace=immediate)
    assert wizard.dropzone.add_paths("*") == []
    wizard.next()
    wizard.editor.strategy = "per_document"
    wizard.editor.prompt = PROMPT
    wizard.editor.document_prompts = {TEXT: "invoice number, total"}
    assert wizard.next() and wizard.review()["strategy"] == "per_document"
    assert wizard.next() and wizard.step == 3
    assert wizard._next.layout.display == "none" and wizard._submit.layout.display == ""
    wizard._name.value = "March <invoices>"
    wizard._submit.click()
    assert wizard.batch_id is not None and wizard._error.value == ""
    batch = get_batch(wizard.batch_id, immediate)
    row = batch.info()
    assert row.strategy == "per_document" and row.name == "March <invoices>"
    assert row.extractor == "offline" and batch.progress().total == 2
    assert isinstance(wizard.progress, BatchProgress) and wizard.progress in wizard.children
    assert wizard.dropzone not in wizard.children
    assert wizard.progress.finished and wizard.progress.counts["completed"] == 2
    assert "batchnb-step-done" in wizard._steps.value
    assert repr(wizard) == f"BatchWizard(submitted batch {wizard.batch_id})"


def test_a_service_error_is_a_message_in_place(immediate: Workspace, files: Path) -> None:
    wizard = BatchWizard(workspace=immediate, extractor="no-such-extractor")
    at_review(wizard)
    wizard.next()
    assert wizard.submit() is None
    message = wizard._error.value
    assert "no-such-extractor" in message and "role='alert'" in message
    assert "Traceback" not in message and wizard.step == 3 and wizard.batch_id is None
    assert "batchnb-wizard-error" in wizard._error._dom_classes


def test_files_gone_before_submit_are_an_intake_message(immediate: Workspace, files: Path) -> None:
    wizard = BatchWizard(workspace=immediate)
    at_review(wizard)
    wizard.next()
    for name in (TEXT, PDF):
        (files / name).unlink()
    wizard._submit.click()
    assert "nothing to process" in wizard._error.value and wizard.batch_id is None


def test_the_starter_plan_refuses_files_and_the_files_step_says_so(
    tmp_path: Path, files: Path
) -> None:
    starter = open_workspace(home=str(tmp_path / "starter"), queue_url="memory://", plan="starter")
    try:
        wizard = BatchWizard(workspace=starter)
        refused = wizard.dropzone.add_paths("*")
        assert refused and wizard._next.disabled and "add at least one file" in reason(wizard)
        assert wizard.submit() is None
        assert wizard._error.value.startswith("<div") and "Files: add at least one file" in (
            wizard._error.value
        )
    finally:
        starter.close()


def test_steps_are_named_in_order() -> None:
    assert STEPS == ("Files", "Prompts", "Review", "Submit")
