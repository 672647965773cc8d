"""Chunked uploads on disk: offsets, resume, one receiver per file, hashes, first bytes, cleanup."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from batchnb.documents.filetypes import HEAD_BYTES
from batchnb.documents.intake import collect
from batchnb.documents.plans import Plan
from batchnb.documents.storage import Storage
from batchnb.documents.uploads import (
    OffsetMismatchError,
    UploadArea,
    UploadBusyError,
    UploadError,
    UploadRefusedError,
    extension_refusal,
    selection_refusal,
    upload_key,
)

CHUNK = 1000


@pytest.fixture
def area(tmp_path: Path) -> UploadArea:
    return UploadArea(tmp_path / "uploads")


@pytest.fixture
def pdf(make_pdf: Callable[..., bytes]) -> bytes:
    # Long enough to need several chunks, and past HEAD_BYTES.
    return make_pdf(*(f"page {n}\n" + "total 12.50 EUR\n" * 30 for n in range(12)))


def _send(upload_area: UploadArea, name: str, data: bytes, chunk: int = CHUNK) -> Path:
    key = upload_key(name, len(data), 1)
    upload = upload_area.begin(key, name, len(data))
    for start in range(upload.offset, len(data), chunk):
        upload.append(start, data[start : start + chunk])
    return upload.finish(hashlib.sha256(data).hexdigest()).path


def test_the_key_is_stable_hex_and_the_same_the_browser_computes() -> None:
    key = upload_key("März invoice.pdf", 1234, 1700000000123)
    # The value widgets/dropzone.js's fileKey() gives for the same file (checked with node).
    assert key == "b1fda23fabe2f2f2b87fd7d8fbc6f350"
    assert upload_key("../../x.pdf", 1, 1) != upload_key("x.pdf", 1, 1)


def test_chunks_in_order_become_a_verified_file_with_the_users_name(
    area: UploadArea, pdf: bytes
) -> None:
    assert len(pdf) > 3 * CHUNK
    path = _send(area, "Invoice März.pdf", pdf)
    assert path.name == "Invoice März.pdf"
    assert path.read_bytes() == pdf
    assert path.parent.parent == area.done_dir
    assert list(area.partial_dir.glob("*.part")) == []
    completed = area.completed(path.parent.name)
    assert completed is not None and completed.path == path and completed.file_type.kind == "pdf"


def test_a_wrong_offset_is_refused_with_the_right_one(area: UploadArea, pdf: bytes) -> None:
    upload = area.begin(upload_key("a.pdf", len(pdf), 1), "a.pdf", len(pdf))
    upload.append(0, pdf[:CHUNK])
    with pytest.raises(OffsetMismatchError) as refused:
        upload.append(2 * CHUNK, pdf[2 * CHUNK : 3 * CHUNK])
    assert refused.value.expected == CHUNK
    assert upload.offset == CHUNK  # nothing was written
    with pytest.raises(OffsetMismatchError, match="incomplete"):
        upload.finish(hashlib.sha256(pdf).hexdigest())


def test_a_released_upload_resumes_from_the_partial_and_its_hash_still_matches(
    area: UploadArea, pdf: bytes
) -> None:
    key = upload_key("a.pdf", len(pdf), 1)
    first = area.begin(key, "a.pdf", len(pdf))
    first.append(0, pdf[: 2 * CHUNK])
    first.release()  # the page closed; the partial stays
    second = area.begin(key, "a.pdf", len(pdf))
    assert second.offset == 2 * CHUNK
    for start in range(second.offset, len(pdf), CHUNK):
        second.append(start, pdf[start : start + CHUNK])
    assert second.finish(hashlib.sha256(pdf).hexdigest()).path.read_bytes() == pdf


def test_a_second_session_is_refused_while_the_first_holds_the_file(
    area: UploadArea, pdf: bytes
) -> None:
    key = upload_key("a.pdf", len(pdf), 1)
    first = area.begin(key, "a.pdf", len(pdf))
    first.append(0, pdf[:CHUNK])
    with pytest.raises(UploadBusyError, match="being uploaded elsewhere"):
        area.begin(key, "a.pdf", len(pdf))
    first.release()
    assert area.begin(key, "a.pdf", len(pdf)).offset == CHUNK


def test_a_hash_mismatch_fails_and_deletes_the_partial(area: UploadArea, pdf: bytes) -> None:
    upload = area.begin(upload_key("a.pdf", len(pdf), 1), "a.pdf", len(pdf))
    upload.append(0, pdf)
    with pytest.raises(UploadError, match="sha256") as failed:
        upload.finish("0" * 64)
    assert failed.value.status == "failed"
    assert not upload.path.exists() and not area.done_dir.exists()


def test_wrong_first_bytes_are_refused_as_intake_refuses_them(
    area: UploadArea, png_bytes: bytes, storage: Storage, roomy_plan: Plan
) -> None:
    png = png_bytes + bytes(2 * HEAD_BYTES)
    assert len(png) > HEAD_BYTES  # the check runs on the first chunk, not at the end
    upload = area.begin(upload_key("invoice.pdf", len(png), 1), "invoice.pdf", len(png))
    with pytest.raises(UploadRefusedError) as refused:
        upload.append(0, png[:HEAD_BYTES])
    intake = collect([("invoice.pdf", png)], plan=roomy_plan, storage=storage)
    assert str(refused.value) == intake.refused[0].reason
    assert str(refused.value) == "invoice.pdf is not a PDF: its content is a PNG image"
    assert refused.value.status == "refused"
    assert not upload.path.exists() and not upload.active


def test_an_unsupported_type_is_refused_with_intakes_hint(area: UploadArea) -> None:
    gif = b"GIF89a" + bytes(HEAD_BYTES)
    upload = area.begin(upload_key("scan", len(gif), 1), "scan", len(gif))
    with pytest.raises(UploadRefusedError, match=r"unsupported type: GIF image \(convert it"):
        upload.append(0, gif)


def test_a_docx_is_judged_from_its_central_directory_at_the_end(
    area: UploadArea, make_zip: Callable[..., bytes]
) -> None:
    from tests.documents.conftest import CONTENT_TYPES_DOCX

    # The main part lies beyond the first bytes: only the whole file says it is a docx.
    docx = make_zip(
        {"word/document.xml": b"<w:document/>", "[Content_Types].xml": CONTENT_TYPES_DOCX},
        padding_first=3 * HEAD_BYTES,
    )
    assert _send(area, "letter.docx", docx).read_bytes() == docx


def test_more_bytes_than_announced_fail(area: UploadArea) -> None:
    upload = area.begin(upload_key("a.txt", 5, 1), "a.txt", 5)
    with pytest.raises(UploadError, match="more bytes"):
        upload.append(0, b"hello world")


def test_stale_partials_and_uploads_are_removed_unless_being_received(
    area: UploadArea, pdf: bytes
) -> None:
    done = _send(area, "old.pdf", pdf)
    stale = area.begin(upload_key("stale.pdf", len(pdf), 1), "stale.pdf", len(pdf))
    stale.append(0, pdf[:CHUNK])
    stale.release()
    held = area.begin(upload_key("held.pdf", len(pdf), 1), "held.pdf", len(pdf))
    held.append(0, pdf[:CHUNK])
    fresh = area.begin(upload_key("fresh.pdf", len(pdf), 1), "fresh.pdf", len(pdf))
    fresh.append(0, pdf[:CHUNK])
    fresh.release()
    old = time.time() - 3 * 3600
    for path in (done, done.parent, stale.path, held.path):
        os.utime(path, (old, old))
    assert area.remove_stale(max_age_hours=2) == 2
    assert not done.exists() and not stale.path.exists()
    assert held.path.exists() and fresh.path.exists()
    held.append(CHUNK, pdf[CHUNK : 2 * CHUNK])  # still receiving


def test_selection_checks_word_the_plan() -> None:
    starter = Plan("starter", max_files=0, max_file_bytes=10, max_batch_bytes=0)
    assert selection_refusal(starter, 1, 0, 0) == "batches are not part of the starter plan"
    plus = Plan("plus", max_files=2, max_file_bytes=100, max_batch_bytes=150)
    assert selection_refusal(plus, 50, 1, 50) is None
    assert selection_refusal(plus, 50, 2, 100) == "over the plan's limit of 2 files (plan 'plus')"
    assert "too large" in (selection_refusal(plus, 101, 0, 0) or "")
    assert "batch size" in (selection_refusal(plus, 60, 1, 100) or "")
    assert extension_refusal("notes.PDF") is None and extension_refusal("README") is None
    assert (extension_refusal("tool.exe") or "").startswith(".exe files are not accepted")
