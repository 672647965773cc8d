"""Intake: paths, globs, folders and bytes in; accepted files stored, the rest refused."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from batchnb.documents import (
    IntakeResult,
    Plan,
    Refusal,
    Storage,
    collect,
    get_plan,
    safe_file_name,
)
from batchnb.documents import intake as intake_module
from batchnb.documents.plans import MIB
from batchnb.errors import ConfigurationError, IntakeError


def _reasons(result: IntakeResult) -> dict[str, str]:
    return {refusal.file_name: refusal.reason for refusal in result.refused}


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_accepted_files_are_stored_and_described(
    tmp_path: Path, storage: Storage, roomy_plan: Plan, make_pdf: Callable[..., bytes]
) -> None:
    pdf = make_pdf("Invoice 1")
    path = _write(tmp_path / "in" / "invoice-1.pdf", pdf)
    result = collect(
        [path, ("notes.md", b"# Notes\nTotal 5"), str(tmp_path / "in" / "invoice-1.pdf")],
        plan=roomy_plan,
        storage=storage,
    )
    first, second = result.accepted
    digest = hashlib.sha256(pdf).hexdigest()
    assert first.file_name == "invoice-1.pdf"
    assert first.source == str(path)
    assert first.content_hash == digest
    assert first.storage_key == f"sha256/{digest[:2]}/{digest}"
    assert (first.size_bytes, first.file_type, first.mime_type) == (
        len(pdf),
        "pdf",
        "application/pdf",
    )
    assert storage.read(first.storage_key) == pdf
    assert (second.file_name, second.source, second.file_type) == (
        "notes.md",
        "<bytes>",
        "markdown",
    )
    assert storage.read(second.storage_key) == b"# Notes\nTotal 5"
    # The same path given twice is a duplicate of the first.
    assert result.refused == [
        Refusal("invoice-1.pdf", str(path), "duplicate of invoice-1.pdf (same content)")
    ]
    assert result.total_bytes == len(pdf) + len(b"# Notes\nTotal 5")


def test_png_named_pdf_is_refused(
    tmp_path: Path, storage: Storage, roomy_plan: Plan, png_bytes: bytes
) -> None:
    path = _write(tmp_path / "report.pdf", png_bytes)
    result = collect([path], plan=roomy_plan, storage=storage)
    assert result.accepted == []
    assert _reasons(result) == {"report.pdf": "report.pdf is not a PDF: its content is a PNG image"}
    assert not (tmp_path / "store" / "sha256").exists()  # refused before anything is stored


def test_html_saved_as_pdf_is_refused(storage: Storage, roomy_plan: Plan) -> None:
    page = b"<!DOCTYPE html><html><body>404 Not Found</body></html>"
    result = collect([("invoice.pdf", page)], plan=roomy_plan, storage=storage)
    assert _reasons(result) == {
        "invoice.pdf": "invoice.pdf is not a PDF: its content is an HTML page"
    }


def test_correctly_named_images_and_office_files_are_accepted(
    storage: Storage, roomy_plan: Plan, png_bytes: bytes, docx_bytes: bytes, xlsx_bytes: bytes
) -> None:
    result = collect(
        [("scan.png", png_bytes), ("letter.docx", docx_bytes), ("book.xlsx", xlsx_bytes)],
        plan=roomy_plan,
        storage=storage,
    )
    assert [(f.file_name, f.file_type) for f in result.accepted] == [
        ("scan.png", "png"),
        ("letter.docx", "docx"),
        ("book.xlsx", "xlsx"),
    ]
    assert result.refused == []


def test_unsupported_types_are_refused_with_a_hint(
    storage: Storage, roomy_plan: Plan, make_zip: Callable[..., bytes]
) -> None:
    archive = make_zip({"a.pdf": b"%PDF-1.4"})
    result = collect(
        [("bundle.zip", archive), ("blob", os.urandom(2000) + b"\x00")],
        plan=roomy_plan,
        storage=storage,
    )
    assert _reasons(result) == {
        "bundle.zip": "unsupported type: ZIP archive (unzip it and add the files inside)",
        "blob": "unsupported type: unrecognised binary data",
    }


def test_oversize_file_is_refused_with_sizes(tmp_path: Path, storage: Storage) -> None:
    path = tmp_path / "huge.pdf"
    with path.open("wb") as handle:  # sparse: 30 MiB on paper, a few bytes on disk
        handle.write(b"%PDF-1.7\n")
        handle.truncate(30 * MIB)
    result = collect([path], plan=get_plan("plus"), storage=storage)
    assert _reasons(result) == {"huge.pdf": "too large: 30.0 MiB, plan 'plus' allows 25.0 MiB"}


def test_one_byte_over_shows_exact_sizes(storage: Storage) -> None:
    plan = Plan("tiny", max_files=5, max_file_bytes=1024, max_batch_bytes=10_000)
    result = collect([("a.txt", b"x" * 1025)], plan=plan, storage=storage)
    assert _reasons(result) == {"a.txt": "too large: 1,025 bytes, plan 'tiny' allows 1,024 bytes"}


def test_plus_plan_keeps_the_first_50_files(storage: Storage) -> None:
    sources = [(f"note-{i:02}.txt", f"note number {i}".encode()) for i in range(53)]
    result = collect(sources, plan=get_plan("plus"), storage=storage)
    assert [f.file_name for f in result.accepted] == [f"note-{i:02}.txt" for i in range(50)]
    assert [r.file_name for r in result.refused] == ["note-50.txt", "note-51.txt", "note-52.txt"]
    assert {r.reason for r in result.refused} == {"over the plan's limit of 50 files (plan 'plus')"}


def test_starter_plan_accepts_no_files(storage: Storage) -> None:
    result = collect([("a.txt", b"hello")], plan=get_plan("starter"), storage=storage)
    assert result.accepted == []
    assert _reasons(result) == {"a.txt": "over the plan's limit of 0 files (plan 'starter')"}


def test_refused_duplicates_do_not_use_up_the_count(storage: Storage) -> None:
    plan = Plan("two", max_files=2, max_file_bytes=100, max_batch_bytes=1000)
    result = collect(
        [("a.txt", b"same"), ("b.txt", b"same"), ("c.txt", b"other")], plan=plan, storage=storage
    )
    assert [f.file_name for f in result.accepted] == ["a.txt", "c.txt"]
    assert _reasons(result) == {"b.txt": "duplicate of a.txt (same content)"}


def test_batch_size_limit(storage: Storage) -> None:
    plan = Plan("small", max_files=10, max_file_bytes=2 * MIB, max_batch_bytes=3 * MIB)
    sources = [(f"{name}.txt", name.encode() * (MIB // len(name))) for name in ("aa", "bb")]
    sources += [("cc.txt", b"c" * (MIB + 1)), ("dd.txt", b"d" * 100)]
    result = collect(sources, plan=plan, storage=storage)
    assert [f.file_name for f in result.accepted] == ["aa.txt", "bb.txt", "dd.txt"]
    assert _reasons(result) == {
        "cc.txt": "over the plan's batch size: 3,145,729 bytes, plan 'small' allows "
        "3,145,728 bytes per batch"
    }


def test_duplicates_by_content_keep_the_first(
    tmp_path: Path, storage: Storage, roomy_plan: Plan, make_pdf: Callable[..., bytes]
) -> None:
    pdf = make_pdf("Invoice")
    first = _write(tmp_path / "invoice-1.pdf", pdf)
    copy = _write(tmp_path / "copy of invoice.pdf", pdf)
    result = collect([first, copy, ("upload.pdf", pdf)], plan=roomy_plan, storage=storage)
    assert [f.file_name for f in result.accepted] == ["invoice-1.pdf"]
    assert _reasons(result) == {
        "copy of invoice.pdf": "duplicate of invoice-1.pdf (same content)",
        "upload.pdf": "duplicate of invoice-1.pdf (same content)",
    }


def test_zero_byte_files_are_refused(tmp_path: Path, storage: Storage, roomy_plan: Plan) -> None:
    empty = _write(tmp_path / "empty.pdf", b"")
    result = collect([empty, ("blank.txt", b"")], plan=roomy_plan, storage=storage)
    assert result.accepted == []
    assert _reasons(result) == {
        "empty.pdf": "empty file (0 bytes)",
        "blank.txt": "empty file (0 bytes)",
    }


def test_source_code_and_data_files_are_not_documents(
    tmp_path: Path, storage: Storage, roomy_plan: Plan
) -> None:
    script = _write(tmp_path / "extract.py", b"import batchnb\nprint(batchnb.__version__)\n")
    data = _write(tmp_path / "settings.json", b'{"total": 12}')
    notes = _write(tmp_path / "invoice.txt", b"Invoice 7\nTotal 12.00\n")
    bare = _write(tmp_path / "INVOICE", b"Invoice 8\nTotal 13.00\n")
    result = collect([script, data, notes, bare], plan=roomy_plan, storage=storage)
    assert [f.file_name for f in result.accepted] == ["invoice.txt", "INVOICE"]
    assert _reasons(result) == {
        "extract.py": "extract.py is not a document: text is read as a document only from "
        ".txt, .text, .csv, .md, .markdown, .html, .htm files (a .py file is code or data)",
        "settings.json": "settings.json is not a document: text is read as a document only "
        "from .txt, .text, .csv, .md, .markdown, .html, .htm files (a .json file is code or data)",
    }


def test_traversal_names_are_made_safe(storage: Storage, roomy_plan: Plan) -> None:
    result = collect(
        [("../../etc/passwd", b"root:x:0:0"), ("..\\..\\boot.txt", b"[boot]")],
        plan=roomy_plan,
        storage=storage,
    )
    assert [f.file_name for f in result.accepted] == ["passwd", "boot.txt"]


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("/abs/path/invoice.pdf", "invoice.pdf"),
        ("C:\\Users\\me\\scan.PNG", "scan.PNG"),
        ("..", "document"),
        ("", "document"),
        ("///", "document"),
        (".hidden.pdf", "hidden.pdf"),
        ("...", "document"),
        ("in\x00voice\n\t.pdf", "invoice.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ('a<b>c:d"e|f?g*h.txt', "a_b_c_d_e_f_g_h.txt"),
        ("  spaced    out  .pdf", "spaced    out  .pdf"),
        ("March\u00a02024  (copy).pdf", "March 2024  (copy).pdf"),
        ("trailing dots...", "trailing dots"),
        ("CON.txt", "_CON.txt"),
        ("nul", "_nul"),
        ("e\u0301te.pdf", "\u00e9te.pdf"),
    ],
)
def test_safe_file_name(raw: str, safe: str) -> None:
    assert safe_file_name(raw) == safe


def test_long_names_are_cut_to_255_bytes_keeping_the_extension() -> None:
    name = safe_file_name("é" * 300 + ".pdf")
    assert name.endswith(".pdf")
    assert len(name.encode("utf-8")) <= 255
    assert set(name[:-4]) == {"é"}  # no broken character at the cut
    assert len(safe_file_name("x" * 1000).encode()) == 255


def test_globs_and_folders(tmp_path: Path, storage: Storage, roomy_plan: Plan) -> None:
    inbox = tmp_path / "inbox"
    _write(inbox / "b.txt", b"bee")
    _write(inbox / "a.txt", b"ay")
    _write(inbox / "sub" / "c.txt", b"sea")
    _write(inbox / "sub" / "d.md", b"# dee")
    _write(inbox / ".secret.txt", b"hidden")
    _write(inbox / ".git" / "config.txt", b"hidden too")

    by_folder = collect([inbox], plan=roomy_plan, storage=storage)
    assert [Path(f.source).relative_to(inbox).as_posix() for f in by_folder.accepted] == [
        "a.txt",
        "b.txt",
        "sub/c.txt",
        "sub/d.md",
    ]
    assert by_folder.refused == []

    by_glob = collect(str(inbox / "**" / "*.txt"), plan=roomy_plan, storage=storage)
    assert [f.file_name for f in by_glob.accepted] == ["a.txt", "b.txt", "c.txt"]

    nothing = str(inbox / "*.pdf")
    missed = collect([nothing], plan=roomy_plan, storage=storage)
    assert missed.accepted == []
    assert missed.refused == [Refusal(nothing, nothing, "no files match this pattern")]


def test_empty_folder_is_a_refusal(tmp_path: Path, storage: Storage, roomy_plan: Plan) -> None:
    (tmp_path / "empty").mkdir()
    result = collect([tmp_path / "empty"], plan=roomy_plan, storage=storage)
    assert _reasons(result) == {"empty": "the folder contains no files"}


def test_literal_path_with_glob_characters(
    tmp_path: Path, storage: Storage, roomy_plan: Plan
) -> None:
    path = _write(tmp_path / "report[1].txt", b"first report")
    result = collect([str(path)], plan=roomy_plan, storage=storage)
    assert [f.file_name for f in result.accepted] == ["report[1].txt"]


def test_missing_path_is_refused(tmp_path: Path, storage: Storage, roomy_plan: Plan) -> None:
    missing = tmp_path / "nope" / "gone.pdf"
    result = collect([missing], plan=roomy_plan, storage=storage)
    assert result.refused == [Refusal("gone.pdf", str(missing), "not found")]


def test_invalid_path_is_refused(storage: Storage, roomy_plan: Plan) -> None:
    result = collect(["bad\x00name.pdf"], plan=roomy_plan, storage=storage)
    assert result.refused == [Refusal("badname.pdf", "bad\x00name.pdf", "not a valid path")]


def test_plans() -> None:
    assert get_plan("local") == Plan(
        "local", max_files=10_000, max_file_bytes=512 * MIB, max_batch_bytes=50 * 1024 * MIB
    )
    assert get_plan(" Plus ").max_files == 50
    assert get_plan("growth").max_files == 200
    assert get_plan("starter").max_files == 0
    with pytest.raises(ConfigurationError, match="starter, plus, growth, local"):
        get_plan("enterprise")
    with pytest.raises(ConfigurationError, match="max_files must be 0 or more"):
        Plan("broken", max_files=-1, max_file_bytes=1, max_batch_bytes=1)


def test_special_files_are_refused(tmp_path: Path, storage: Storage, roomy_plan: Plan) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)  # opening it would block forever
    result = collect([fifo], plan=roomy_plan, storage=storage)
    assert _reasons(result) == {"pipe.txt": "not a regular file"}


def test_file_vanishing_between_stat_and_open(
    tmp_path: Path, storage: Storage, roomy_plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "a.txt", b"here")

    def vanished(*args: Any, **kwargs: Any) -> Any:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(intake_module, "open", vanished, raising=False)
    result = collect([path, ("b.txt", b"still fine")], plan=roomy_plan, storage=storage)
    assert _reasons(result) == {"a.txt": "not found (it vanished while being added)"}
    assert [f.file_name for f in result.accepted] == ["b.txt"]


def test_read_error_while_streaming_is_a_refusal(
    tmp_path: Path, storage: Storage, roomy_plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "flaky.txt", b"x" * 100_000)
    real_open = open

    class FailingAfterHead(io.FileIO):
        reads = 0

        def read(self, size: int | None = -1, /) -> bytes:
            FailingAfterHead.reads += 1
            if FailingAfterHead.reads > 1:
                raise OSError(5, "Input/output error")
            return super().read(size)

    def flaky_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if str(file) == str(path):
            return FailingAfterHead(file, "rb")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(intake_module, "open", flaky_open, raising=False)
    result = collect([path], plan=roomy_plan, storage=storage)
    assert _reasons(result) == {"flaky.txt": "cannot be read: Input/output error"}
    assert not (tmp_path / "store" / "sha256").exists()


def test_storage_failures_are_not_turned_into_refusals(tmp_path: Path, roomy_plan: Plan) -> None:
    class FullDisk(Storage):
        def put_stream(self, stream: Any) -> Any:
            raise OSError(28, "No space left on device")

    path = _write(tmp_path / "a.txt", b"content")
    with pytest.raises(OSError, match="No space left"):
        collect([path], plan=roomy_plan, storage=FullDisk(str(tmp_path / "store")))


def test_bad_source_types_are_intake_errors(storage: Storage, roomy_plan: Plan) -> None:
    with pytest.raises(IntakeError, match="got int"):
        collect([42], plan=roomy_plan, storage=storage)  # type: ignore[list-item]
    with pytest.raises(IntakeError, match="the second item is a str"):
        collect([("a.txt", "not bytes")], plan=roomy_plan, storage=storage)  # type: ignore[list-item]


@pytest.fixture
def memory_storage() -> Iterator[Storage]:
    name = f"batchnb-intake-{uuid.uuid4().hex}"
    yield Storage(f"memory://{name}")
    fsspec.filesystem("memory").rm(f"/{name}", recursive=True)


def test_two_batches_share_stored_bytes_on_memory_storage(
    tmp_path: Path, memory_storage: Storage, roomy_plan: Plan, make_pdf: Callable[..., bytes]
) -> None:
    pdf = make_pdf("shared invoice")
    path = _write(tmp_path / "invoice.pdf", pdf)
    first = collect([path], plan=roomy_plan, storage=memory_storage)
    second = collect([("invoice-again.pdf", pdf)], plan=roomy_plan, storage=memory_storage)
    assert first.accepted[0].storage_key == second.accepted[0].storage_key
    fs = fsspec.filesystem("memory")
    stored = [p for p in fs.find(memory_storage.url.removeprefix("memory:/")) if "/sha256/" in p]
    assert len(stored) == 1
    assert memory_storage.read(first.accepted[0].storage_key) == pdf
