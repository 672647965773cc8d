"""Chunked, resumable uploads: bytes from a browser land in a partial file until verified.

A browser sends a file in chunks (see :mod:`batchnb.ui.dropzone`). Each upload is keyed by
:func:`upload_key` of the file's name, size and modification time, so choosing the same file
again after the page closed or the kernel restarted continues from what is already on disk::

    <home>/uploads/partial/<key>.part   bytes received so far (never a document)
    <home>/uploads/partial/<key>.lock   held by the one session receiving them
    <home>/uploads/done/<key>/<name>    verified: complete, sha256 checked, usable

Only a verified file is handed on, as a path, to the normal intake (:func:`batchnb.submit`);
nothing here registers documents. The first bytes are checked as intake checks them (type from
the content, extension against it) so a wrong file is refused before the rest is sent. Stale
partial and verified uploads are removed by the workspace's hourly cleanup
(:meth:`UploadArea.remove_stale`).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock, Timeout

from batchnb.config import Settings
from batchnb.documents.filetypes import (
    DOCUMENT_EXTENSIONS,
    HEAD_BYTES,
    FileType,
    detect_file_type,
    detect_stream_type,
)
from batchnb.documents.intake import plan_refusal, safe_file_name, type_refusal
from batchnb.documents.plans import Plan
from batchnb.errors import IntakeError

_READ_BLOCK = 8 * 1024 * 1024
# A ZIP's first bytes may not name its main part; the whole file (central directory) decides.
_ZIP_EXTENSIONS = frozenset({".docx", ".xlsx"})


class UploadError(IntakeError):
    """An upload step failed; the message says what the user can do.

    ``status`` is how the file is listed afterwards: ``"failed"`` (try again) or ``"refused"``
    (the file itself is not accepted).
    """

    kind = "upload"
    status = "failed"


class UploadBusyError(UploadError):
    """Another session (another kernel, page or notebook) is receiving this file."""


class UploadRefusedError(UploadError):
    """The file's content is refused (wrong or unsupported type); its partial is deleted."""

    status = "refused"


class OffsetMismatchError(UploadError):
    """A chunk did not start where the partial file ends; ``expected`` is where it does."""

    def __init__(self, message: str, expected: int) -> None:
        super().__init__(message)
        self.expected = expected


def upload_key(name: str, size: int, last_modified: int) -> str:
    """The stable key of a browser file: 32 hex digits of sha256("name\\0size\\0lastModified").

    The browser computes the same key (``widgets/dropzone.js``), and it is safe as a file name
    whatever the user's file is called.
    """
    text = f"{name}\0{int(size)}\0{int(last_modified)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def extension_refusal(name: str) -> str | None:
    """Why a file is refused by its name alone (checked before any byte moves), or ``None``."""
    extension = posixpath.splitext(name)[1].lower()
    if not extension or extension in DOCUMENT_EXTENSIONS:
        return None
    return f"{extension} files are not accepted (accepted: {', '.join(DOCUMENT_EXTENSIONS)})"


def selection_refusal(
    plan: Plan, size: int, accepted_files: int, accepted_bytes: int
) -> str | None:
    """Why ``plan`` refuses one more file in a selection, worded for a widget's file list."""
    if plan.max_files == 0:
        return f"batches are not part of the {plan.name} plan"
    return plan_refusal(plan, size, accepted_files, accepted_bytes)


@dataclass(frozen=True)
class CompletedUpload:
    """A verified upload: the file at ``path`` (keeping the user's name) is complete."""

    key: str
    path: Path
    size: int
    sha256: str | None
    file_type: FileType


class UploadArea:
    """The uploads folder of one workspace (``<home>/uploads``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.partial_dir = root / "partial"
        self.done_dir = root / "done"
        self.thumbnail_dir = root / "thumbnails"

    @classmethod
    def for_settings(cls, settings: Settings) -> UploadArea:
        """The area under the workspace folder of ``settings``."""
        return cls(settings.home / "uploads")

    def completed(self, key: str) -> CompletedUpload | None:
        """The verified upload with this key, if one is on disk."""
        folder = self.done_dir / key
        try:
            files = sorted(p for p in folder.iterdir() if p.is_file())
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not files:
            return None
        path = files[0]
        with path.open("rb") as handle:
            file_type = detect_stream_type(handle, path.name)
        return CompletedUpload(key, path, path.stat().st_size, None, file_type)

    def begin(self, key: str, name: str, size: int) -> Upload:
        """Start or resume receiving the file ``key``; ``Upload.offset`` is where to go on.

        Raises
        ------
        UploadBusyError
            Another session holds the file's lock.
        UploadRefusedError
            The bytes already received are of a refused type (the partial is deleted).
        """
        if not _is_key(key):
            raise UploadError(f"not an upload key: {key!r}")
        if size <= 0:
            raise UploadRefusedError("empty file (0 bytes)")
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.partial_dir / f"{key}.lock", timeout=0, thread_local=False)
        display = safe_file_name(name)
        try:
            lock.acquire()
        except Timeout:
            raise UploadBusyError(
                f"{display} is being uploaded elsewhere (another page, notebook or kernel); "
                "it can continue here once that upload stops (a stalled one lets go by itself)"
            ) from None
        try:
            return Upload(self, key, display, size, lock)
        except BaseException:
            lock.release()
            raise

    def remove_stale(self, max_age_hours: float) -> int:
        """Delete partial and verified uploads and thumbnails older than ``max_age_hours``.

        A partial whose lock is held (it is being received right now) is kept. Returns how
        many files were removed.
        """
        cutoff = time.time() - max_age_hours * 3600
        removed = 0
        if self.partial_dir.is_dir():
            for part in sorted(self.partial_dir.glob("*.part")):
                removed += _remove_stale_partial(part, cutoff)
            for lock_path in sorted(self.partial_dir.glob("*.lock")):
                if not lock_path.with_suffix(".part").exists():
                    removed += _remove_stale_partial(lock_path, cutoff)
        if self.done_dir.is_dir():
            for folder in sorted(self.done_dir.iterdir()):
                files = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
                if all(_older(p, cutoff) for p in files) and _older(folder, cutoff):
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += len(files)
        if self.thumbnail_dir.is_dir():
            for thumbnail in self.thumbnail_dir.iterdir():
                if _older(thumbnail, cutoff):
                    thumbnail.unlink(missing_ok=True)
                    removed += 1
        return removed


class Upload:
    """One session receiving one file; it holds the file's lock until finished or released.

    Made by :meth:`UploadArea.begin`. The sha256 runs incrementally over the bytes as they
    arrive (on resume, first over the partial already on disk).
    """

    def __init__(self, area: UploadArea, key: str, name: str, size: int, lock: FileLock) -> None:
        self.area = area
        self.key = key
        self.name = name
        self.size = size
        self._lock = lock
        self.path = area.partial_dir / f"{key}.part"
        self.file_type: FileType | None = None
        self._head_checked = False
        self.last_activity = time.monotonic()
        self._hash = hashlib.sha256()
        if self.path.exists() and self.path.stat().st_size > size:
            self.path.unlink()  # more bytes than the file has: not this file's partial
        self._file: BinaryIO | None = self.path.open("ab")
        self.offset = self._file.tell()
        if self.offset:
            with self.path.open("rb") as handle:
                while block := handle.read(_READ_BLOCK):
                    self._hash.update(block)
            if self.offset >= HEAD_BYTES or self.offset == self.size:
                self._check_head()

    @property
    def active(self) -> bool:
        """Whether this session still holds the file (not finished, cancelled or released)."""
        return self._file is not None

    def append(self, offset: int, data: bytes | bytearray | memoryview) -> int:
        """Write ``data`` at ``offset`` (which must be where the partial ends); returns the
        new end.

        Raises
        ------
        OffsetMismatchError
            ``offset`` is not the end of the partial; ``expected`` says where it is.
        UploadRefusedError
            The first bytes show a refused type; the partial is deleted.
        """
        file = self._require_open()
        self.last_activity = time.monotonic()
        if offset != self.offset:
            raise OffsetMismatchError(
                f"chunk at byte {offset:,}, but {self.name} continues at byte {self.offset:,}",
                expected=self.offset,
            )
        if self.offset + len(data) > self.size:
            self.cancel()
            raise UploadError(
                f"{self.name}: more bytes arrived than its size of {self.size:,}; add it again"
            )
        file.write(data)
        self._hash.update(data)
        self.offset += len(data)
        if not self._head_checked and (self.offset >= HEAD_BYTES or self.offset == self.size):
            file.flush()
            self._check_head()
        return self.offset

    def finish(self, sha256: str) -> CompletedUpload:
        """Compare the browser's sha256 with the kernel's and move the file to ``done``.

        Raises
        ------
        OffsetMismatchError
            Bytes are still missing.
        UploadError
            The hashes differ; the partial is deleted, so a retry starts afresh.
        UploadRefusedError
            The complete file is of a refused type (a ZIP that is no Office file).
        """
        file = self._require_open()
        if self.offset != self.size:
            raise OffsetMismatchError(
                f"{self.name} is incomplete: {self.offset:,} of {self.size:,} bytes arrived",
                expected=self.offset,
            )
        digest = self._hash.hexdigest()
        if digest != sha256.strip().lower():
            self.cancel()
            raise UploadError(
                f"{self.name} arrived damaged (its sha256 differs from the browser's); retry it"
            )
        file.close()
        with self.path.open("rb") as handle:
            file_type = detect_stream_type(handle, self.name)
        refusal = type_refusal(self.name, self.size, file_type)
        if refusal:
            self.cancel()
            raise UploadRefusedError(refusal)
        folder = self.area.done_dir / self.key
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / self.name
        os.replace(self.path, target)
        self._file = None
        self._lock.release()
        return CompletedUpload(self.key, target, self.size, digest, file_type)

    def cancel(self) -> None:
        """Stop receiving and delete the partial."""
        if self._file is not None:
            self._file.close()
            self._file = None
            self.path.unlink(missing_ok=True)
            self._lock.release()

    def release(self) -> None:
        """Stop receiving but keep the partial, so this or another session can resume it."""
        if self._file is not None:
            self._file.close()
            self._file = None
            self._lock.release()

    def _require_open(self) -> BinaryIO:
        if self._file is None:
            raise UploadError(f"{self.name} is no longer being received here; start it again")
        return self._file

    def _check_head(self) -> None:
        self._head_checked = True
        with self.path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
        file_type = detect_file_type(head, self.name)
        extension = posixpath.splitext(self.name)[1].lower()
        if file_type.kind == "zip" and extension in _ZIP_EXTENSIONS and self.offset < self.size:
            return  # decided by finish(), from the central directory
        refusal = type_refusal(self.name, self.size, file_type)
        if refusal:
            self.cancel()
            raise UploadRefusedError(refusal)
        self.file_type = file_type


def _is_key(key: str) -> bool:
    return len(key) == 32 and all(c in "0123456789abcdef" for c in key)


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def _remove_stale_partial(path: Path, cutoff: float) -> int:
    """Delete a stale partial (and its lock) unless a session holds the lock."""
    if not _older(path, cutoff):
        return 0
    lock_path = path.with_suffix(".lock")
    lock = FileLock(lock_path, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        return 0
    try:
        removed = 0
        for stale in (path.with_suffix(".part"), lock_path):
            try:
                stale.unlink()
            except FileNotFoundError:
                continue
            except OSError:  # Windows keeps a held lock file; it goes with the next sweep
                continue
            removed += stale.suffix == ".part"
        return removed
    finally:
        lock.release()
