"""Intake: turn paths, globs, folders and uploaded bytes into stored, validated files.

:func:`collect` checks every file (real type from its bytes, extension against content, size,
the plan's count and size limits, duplicates by content hash) and streams the ones it accepts
into content-addressed storage. A file that fails a check, is missing or cannot be read is
*refused* with a reason a person can act on; it never raises, so one bad file never costs the
rest of the batch. Creating the batch's database rows is the service layer's job.
"""

from __future__ import annotations

import glob
import io
import os
import re
import stat
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from batchnb.documents.filetypes import (
    EMPTY,
    FileType,
    detect_stream_type,
    extension_mismatch,
)
from batchnb.documents.plans import GIB, KIB, MIB, Plan
from batchnb.documents.storage import Storage, StoredObject
from batchnb.errors import IntakeError

#: What ``collect`` accepts: a path, a glob pattern or folder (as ``str``), or ``(name, bytes)``.
Source = str | os.PathLike[str] | tuple[str, bytes]

#: ``IncomingFile.source`` of files given as bytes.
BYTES_SOURCE = "<bytes>"
#: Used when nothing of a file name survives cleaning.
FALLBACK_NAME = "document"
MAX_NAME_BYTES = 255

_GLOB_CHARS = re.compile(r"[*?[]")
_RESERVED_CHARS = re.compile(r'[<>:"/\\|?*]')
# Names Windows reserves for devices, whatever the extension.
_DEVICE_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
# Unicode categories dropped from names: controls, invisible format characters (including
# the right-to-left override that makes "invoice\u202efdp.exe" display as "invoiceexe.pdf"),
# surrogates and line/paragraph separators.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_HINTS = {
    "zip": "unzip it and add the files inside",
    "gzip": "unpack it and add the files inside",
    "7z": "unpack it and add the files inside",
    "rar": "unpack it and add the files inside",
    "ole": "save it as .docx, .xlsx or PDF",
    "rtf": "save it as .docx or PDF",
    "pptx": "save it as PDF",
    "odf": "save it as .docx, .xlsx or PDF",
    "gif": "convert it to PNG",
    "webp": "convert it to PNG or JPEG",
    "heic": "export it as JPEG or PNG",
}


@dataclass(frozen=True)
class IncomingFile:
    """A file accepted at intake and stored.

    Attributes
    ----------
    file_name:
        Cleaned name, safe to display and to use as a file name (see :func:`safe_file_name`).
    source:
        The path it came from, or ``"<bytes>"``.
    content_hash:
        SHA-256 hex digest of the bytes.
    storage_key:
        Key of the bytes in :class:`~batchnb.documents.storage.Storage`.
    size_bytes:
        Size of the file.
    file_type:
        Detected kind (``"pdf"``, ``"png"``, ...), see :mod:`batchnb.documents.filetypes`.
    mime_type:
        MIME type of the detected kind.
    """

    file_name: str
    source: str
    content_hash: str
    storage_key: str
    size_bytes: int
    file_type: str
    mime_type: str


@dataclass(frozen=True)
class Refusal:
    """A file (or a pattern) intake did not accept, and why, in words a user can act on."""

    file_name: str
    source: str
    reason: str


@dataclass(frozen=True)
class IntakeResult:
    """What :func:`collect` accepted and refused, each in the order the files were given."""

    accepted: list[IncomingFile] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        """Total size of the accepted files."""
        return sum(item.size_bytes for item in self.accepted)


def collect(
    sources: Iterable[Source] | str | os.PathLike[str], *, plan: Plan, storage: Storage
) -> IntakeResult:
    """Validate the files in ``sources`` and store the ones accepted.

    Parameters
    ----------
    sources:
        Paths (``str`` or ``os.PathLike``), glob patterns (``"inbox/**/*.pdf"``, expanded
        recursively and sorted), folders (every non-hidden file below, sorted) and
        ``(name, bytes)`` pairs. A single path or pattern may be given without a list.
    plan:
        Limits on the number of files, the size of each and the size of the whole batch.
        Files over the count are refused in order: the first ``plan.max_files`` are kept.
    storage:
        Where accepted bytes go. Storage is content-addressed, so bytes another batch
        already stored are not written again.

    Returns
    -------
    IntakeResult
        Accepted and refused files. Problems with a file (missing, unreadable, empty, wrong
        or unsupported type, too large, over the plan, duplicate) are refusals, not errors.

    Raises
    ------
    IntakeError
        A source is of a type that is none of the above (a programming error at the call).
    """
    if isinstance(sources, str | os.PathLike):
        sources = [sources]
    intake = _Intake(plan, storage)
    for source in sources:
        if isinstance(source, tuple):
            intake.take_bytes(source)
        elif isinstance(source, str | os.PathLike):
            intake.take_path_source(os.fspath(source), pattern=isinstance(source, str))
        else:
            raise IntakeError(
                "sources must be paths, glob patterns, folders or (name, bytes) pairs; "
                f"got {type(source).__name__}"
            )
    return IntakeResult(accepted=intake.accepted, refused=intake.refused)


def safe_file_name(name: str) -> str:
    """A file name that is safe to show and to write anywhere, derived from ``name``.

    Directory parts and traversal are dropped (``"../../etc/passwd"`` → ``"passwd"``), as are
    control and invisible characters; characters reserved on Windows become ``_``; leading
    dots, surrounding spaces and trailing dots go (spaces inside stay as they were); Windows
    device names get a ``_`` prefix; the result fits in 255 UTF-8 bytes, keeping the extension.
    Never empty: ``"document"`` when nothing is left.
    """
    name = unicodedata.normalize("NFC", name)
    parts = [part for part in re.split(r"[/\\]", name) if part.strip() not in ("", ".", "..")]
    name = parts[-1] if parts else ""
    name = "".join(c for c in name if unicodedata.category(c) not in _DROPPED_CATEGORIES)
    name = _RESERVED_CHARS.sub("_", name)
    # Other spaces (no-break, ideographic) become plain ones, one for one: runs of spaces
    # are the user's name ("March  2024.pdf") and joins with their records depend on it.
    name = re.sub(r"\s", " ", name).strip().lstrip(".").rstrip(". ").strip()
    if not name:
        return FALLBACK_NAME
    if name.split(".")[0].upper() in _DEVICE_NAMES:
        name = f"_{name}"
    return _truncate_name(name)


def _truncate_name(name: str) -> str:
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    stem, extension = os.path.splitext(name)
    if len(extension.encode("utf-8")) > 32:
        stem, extension = name, ""
    budget = MAX_NAME_BYTES - len(extension.encode("utf-8"))
    # Cut at a byte budget without splitting a multi-byte character.
    stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip(". ")
    return f"{stem or FALLBACK_NAME}{extension}"


def type_refusal(name: str, size: int, file_type: FileType) -> str | None:
    """Why a file of this name, size and detected type is refused, or ``None``.

    The checks on the file alone (empty, extension against content, unsupported type), worded
    as intake words them; chunked uploads run them on their first bytes.
    """
    if size == 0:
        return "empty file (0 bytes)"
    mismatch = extension_mismatch(name, file_type)
    if mismatch:
        return mismatch
    if not file_type.supported:
        hint = _HINTS.get(file_type.kind)
        return f"unsupported type: {file_type.label}" + (f" ({hint})" if hint else "")
    return None


def plan_refusal(plan: Plan, size: int, accepted_files: int, accepted_bytes: int) -> str | None:
    """Why ``plan`` refuses one more file of ``size`` bytes after those already accepted."""
    if size > plan.max_file_bytes:
        return f"too large: {_compare_sizes(size, plan.max_file_bytes, plan.name)}"
    if accepted_files >= plan.max_files:
        return f"over the plan's limit of {plan.max_files:,} files (plan '{plan.name}')"
    if accepted_bytes + size > plan.max_batch_bytes:
        total = accepted_bytes + size
        return (
            "over the plan's batch size: "
            f"{_compare_sizes(total, plan.max_batch_bytes, plan.name)} per batch"
        )
    return None


def format_size(size: int) -> str:
    """``31457280`` → ``"30.0 MiB"``: sizes as refusal messages show them."""
    for unit, factor in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"


class _SourceReadError(Exception):
    """Reading the source file failed mid-copy (told apart from storage write failures)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _SourceReader:
    """Wraps the source file so that its read errors are not mistaken for storage errors."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._handle.read(size)
        except OSError as exc:
            raise _SourceReadError(exc) from exc


class _Intake:
    """The state of one :func:`collect` call."""

    def __init__(self, plan: Plan, storage: Storage) -> None:
        self.plan = plan
        self.storage = storage
        self.accepted: list[IncomingFile] = []
        self.refused: list[Refusal] = []
        self._first_name_by_hash: dict[str, str] = {}
        self._accepted_bytes = 0

    def take_bytes(self, source: tuple[str, bytes]) -> None:
        if len(source) != 2 or not isinstance(source[0], str):
            raise IntakeError("a bytes source must be a (name, bytes) pair")
        raw_name, data = source
        if not isinstance(data, bytes | bytearray | memoryview):
            raise IntakeError(
                f"a bytes source must be a (name, bytes) pair; for {raw_name!r} the second "
                f"item is a {type(data).__name__}"
            )
        data = bytes(data)
        name = safe_file_name(raw_name)
        file_type = detect_stream_type(io.BytesIO(data), name) if data else EMPTY
        reason = self._check_before_storing(name, len(data), file_type)
        if reason:
            self._refuse(name, BYTES_SOURCE, reason)
            return
        self._admit(name, BYTES_SOURCE, len(data), file_type, self.storage.put(data))

    def take_path_source(self, source: str, *, pattern: bool) -> None:
        """A path, a folder, or (for ``str`` sources) a glob pattern."""
        path = os.path.expanduser(source)
        if os.path.isdir(path):
            files, errors = _walk_visible_files(path)
            for error in errors:
                folder = str(error.filename or path)
                self._refuse(_display_name(folder), folder, f"cannot be read: {_os_reason(error)}")
            if not files and not errors:
                self._refuse(_display_name(path), source, "the folder contains no files")
            for file_path in files:
                self.take_file(file_path)
        elif pattern and not os.path.lexists(path) and _GLOB_CHARS.search(path):
            matches = [m for m in sorted(glob.glob(path, recursive=True)) if os.path.isfile(m)]
            if not matches:
                # The pattern itself is what the user needs to see, not a file name made of it.
                self._refuse(source, source, "no files match this pattern")
            for file_path in matches:
                self.take_file(file_path)
        else:
            self.take_file(path)

    def take_file(self, path: str) -> None:
        name = _display_name(path)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            self._refuse(name, path, "not found")
            return
        except OSError as exc:
            self._refuse(name, path, f"cannot be read: {_os_reason(exc)}")
            return
        except ValueError:  # e.g. a NUL character inside the path
            self._refuse(name, path, "not a valid path")
            return
        if not stat.S_ISREG(info.st_mode):
            self._refuse(name, path, "not a regular file")
            return
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below, after storing
        except FileNotFoundError:
            self._refuse(name, path, "not found (it vanished while being added)")
            return
        except OSError as exc:
            self._refuse(name, path, f"cannot be read: {_os_reason(exc)}")
            return
        with handle:
            self._take_open_file(name, path, handle)

    def _take_open_file(self, name: str, path: str, handle: BinaryIO) -> None:
        try:
            size = os.fstat(handle.fileno()).st_size
            file_type = detect_stream_type(handle, name) if size else EMPTY
        except OSError as exc:
            self._refuse(name, path, f"cannot be read: {_os_reason(exc)}")
            return
        reason = self._check_before_storing(name, size, file_type)
        if reason:
            self._refuse(name, path, reason)
            return
        try:
            stored = self.storage.put_stream(_SourceReader(handle))
        except _SourceReadError as exc:
            self._refuse(name, path, f"cannot be read: {_os_reason(exc.error)}")
            return
        self._admit(name, path, size, file_type, stored)

    def _check_before_storing(self, name: str, size: int, file_type: FileType) -> str | None:
        """Why the file is refused before its bytes are stored, or ``None``."""
        refusal = type_refusal(name, size, file_type)
        if refusal:
            return refusal
        return plan_refusal(self.plan, size, len(self.accepted), self._accepted_bytes)

    def _admit(
        self, name: str, source: str, size: int, file_type: FileType, stored: StoredObject
    ) -> None:
        first = self._first_name_by_hash.get(stored.content_hash)
        if first is not None:
            self._refuse(name, source, f"duplicate of {first} (same content)")
            return
        if stored.size != size:
            self._refuse(name, source, "the file changed while it was being added; add it again")
            return
        self._first_name_by_hash[stored.content_hash] = name
        self._accepted_bytes += size
        self.accepted.append(
            IncomingFile(
                file_name=name,
                source=source,
                content_hash=stored.content_hash,
                storage_key=stored.key,
                size_bytes=size,
                file_type=file_type.kind,
                mime_type=file_type.mime,
            )
        )

    def _refuse(self, name: str, source: str, reason: str) -> None:
        self.refused.append(Refusal(file_name=name, source=source, reason=reason))


def _walk_visible_files(folder: str) -> tuple[list[str], list[OSError]]:
    """Every file below ``folder``, sorted, skipping hidden files and folders.

    Also returns the errors met on sub-folders that could not be listed.
    """
    found: list[str] = []
    errors: list[OSError] = []
    for root, dirs, files in os.walk(folder, onerror=errors.append):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(os.path.join(root, f) for f in files if not f.startswith("."))
    return sorted(found), errors


def _display_name(path: str) -> str:
    return safe_file_name(os.path.basename(path.rstrip("/\\")) or path)


def _compare_sizes(size: int, limit: int, plan_name: str) -> str:
    shown, allowed = format_size(size), format_size(limit)
    if shown == allowed:  # e.g. one byte over: the rounded sizes alone would look equal
        shown, allowed = f"{size:,} bytes", f"{limit:,} bytes"
    return f"{shown}, plan '{plan_name}' allows {allowed}"


def _os_reason(error: OSError) -> str:
    return error.strerror or str(error)
