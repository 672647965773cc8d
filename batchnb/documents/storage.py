"""Content-addressed storage of document bytes over fsspec.

Every object is stored under the SHA-256 of its bytes (``sha256/ab/abcdef...``), so a file is
written once however many batches include it, and a key always names the same bytes. The
storage location is a local folder by default and any fsspec URL at scale (``s3://...``,
``gcs://...``, ``memory://...`` in tests).

Writes go to a temporary name under ``tmp/`` and are moved into place only once complete, so
a crash never leaves a half-written object under its final key (on local disks the rename is
atomic and the data is fsynced first). Temporary files a crash leaves behind are never read;
they can be removed by age.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import posixpath
import re
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from batchnb.errors import ConfigurationError, DocumentError, NotFoundError

#: Bytes read and written per step when streaming into storage.
CHUNK_BYTES = 1024 * 1024
#: Folder (under the storage root) for writes in progress.
TEMP_PREFIX = "tmp"
#: Threads that fsync the files of a deferred-sync block together (fsync waits on the disk,
#: not the CPU, so several in flight finish far sooner than one after another).
SYNC_THREADS = 8

_KEY = re.compile(r"sha256/([0-9a-f]{2})/(\1[0-9a-f]{62})")


class ReadableStream(Protocol):
    """Anything with a binary ``read(size)``: an open file, ``io.BytesIO``, an upload."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end."""
        ...


@dataclass(frozen=True)
class StoredObject:
    """Where some bytes were stored and what they are."""

    key: str
    content_hash: str
    size: int


def key_for_hash(content_hash: str) -> str:
    """The storage key of bytes whose SHA-256 hex digest is ``content_hash``."""
    key = f"sha256/{content_hash[:2]}/{content_hash}"
    validate_key(key)
    return key


def validate_key(key: str) -> None:
    """Refuse anything that is not a key this storage produces.

    Keys come back from the database and from users' code; only the exact
    ``sha256/xx/<64 hex>`` shape is allowed, which rules out ``..``, absolute paths and any
    other escape from the storage root.

    Raises
    ------
    ValueError
        The key is malformed (a bug or tampered data, not a user error).
    """
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        raise ValueError(
            f"invalid storage key {key!r}: expected 'sha256/<2 hex>/<64 hex sha256 digest>'"
        )


class Storage:
    """Content-addressed object store at ``url``.

    Parameters
    ----------
    url:
        A local folder (``~`` expanded), ``file://...``, or any fsspec URL such as
        ``memory://name`` or ``s3://bucket/prefix`` (the latter needs its fsspec driver, e.g.
        ``pip install s3fs``).
    """

    def __init__(self, url: str) -> None:
        from fsspec.core import url_to_fs

        if "://" not in url:
            url = os.path.expanduser(url)
        try:
            fs, root = url_to_fs(url)
        except ImportError as exc:
            raise ConfigurationError(
                f"storage URL {url!r} needs an fsspec driver that is not installed: {exc}"
            ) from None
        except ValueError as exc:
            raise ConfigurationError(
                f"storage URL {url!r} is not usable: {exc}; set BATCHNB_STORAGE_URL to a "
                "folder or an fsspec URL"
            ) from None
        self.url = url
        self._fs: Any = fs
        self._root = str(root).rstrip("/")
        self._local = "file" in _protocols(fs)
        self._made_dirs: set[str] = set()
        self._deferred = threading.local()

    @property
    def local_temp_dir(self) -> Path | None:
        """Folder of writes in progress on a local disk (a crash can leave files there)."""
        return Path(self._root) / TEMP_PREFIX if self._local else None

    def __repr__(self) -> str:
        return f"Storage({self.url!r})"

    def put(self, data: bytes) -> StoredObject:
        """Store ``data`` (once: an object already stored under its hash is not rewritten)."""
        content_hash = hashlib.sha256(data).hexdigest()
        stored = StoredObject(key_for_hash(content_hash), content_hash, len(data))
        if self.exists(stored.key):
            return stored
        temp = self._temp_path()
        try:
            with self._open_for_write(temp) as handle:
                handle.write(data)
            self._commit(temp, stored.key)
        finally:
            self._discard(temp)
        return stored

    def put_stream(self, stream: ReadableStream) -> StoredObject:
        """Store everything ``stream`` yields from its current position, in chunks.

        The hash is computed while copying, so memory use stays at one chunk whatever the
        size. If reading ``stream`` fails, the partial copy is removed and the error
        propagates.
        """
        digest = hashlib.sha256()
        size = 0
        temp = self._temp_path()
        try:
            with self._open_for_write(temp) as handle:
                while chunk := stream.read(CHUNK_BYTES):
                    digest.update(chunk)
                    handle.write(chunk)
                    size += len(chunk)
            content_hash = digest.hexdigest()
            key = key_for_hash(content_hash)
            if not self.exists(key):
                self._commit(temp, key)
        finally:
            self._discard(temp)
        return StoredObject(key, content_hash, size)

    def put_file(self, path: str | os.PathLike[str]) -> StoredObject:
        """Stream the file at ``path`` into storage (never read whole into memory)."""
        with Path(path).open("rb") as source:
            return self.put_stream(source)

    def read(self, key: str) -> bytes:
        """All bytes stored under ``key``."""
        with self.open(key) as handle:
            data: bytes = handle.read()
        return data

    def open(self, key: str) -> BinaryIO:
        """A binary file object reading the object under ``key``; close it (use ``with``)."""
        path = self._path(key)
        try:
            handle: BinaryIO = self._fs.open(path, "rb")
        except FileNotFoundError:
            raise self._missing(key) from None
        return handle

    def open_verified(self, key: str, content_hash: str) -> BinaryIO:
        """:meth:`open`, after checking that the object's SHA-256 is still ``content_hash``.

        The object is read once in chunks to hash it, then opened again for the caller.

        Raises
        ------
        DocumentError
            (kind ``changed``) The stored bytes are not those that were taken in: the object
            was overwritten or damaged on disk or in the bucket after intake.
        """
        digest = hashlib.sha256()
        with self.open(key) as handle:
            while chunk := handle.read(CHUNK_BYTES):
                digest.update(chunk)
        found = digest.hexdigest()
        if found != content_hash:
            raise DocumentError(
                f"the stored file {key} changed after it was taken in (SHA-256 {found[:12]}…, "
                f"expected {content_hash[:12]}…): it was overwritten or damaged in storage; "
                "submit the original file again",
                kind="changed",
            )
        return self.open(key)

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        path = self._path(key)
        return os.path.exists(path) if self._local else bool(self._fs.exists(path))

    def size(self, key: str) -> int:
        """Size in bytes of the object under ``key``."""
        try:
            return int(self._fs.size(self._path(key)))
        except FileNotFoundError:
            raise self._missing(key) from None

    def delete(self, key: str) -> None:
        """Remove the object under ``key``; deleting a missing object is not an error.

        Objects are shared by every batch that holds the same bytes: the caller must know
        that no document refers to ``key`` any more.
        """
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm(path)

    def _path(self, key: str) -> str:
        validate_key(key)
        return f"{self._root}/{key}"

    @contextlib.contextmanager
    def deferred_sync(self) -> Iterator[None]:
        """Write many objects, then make them durable together when the block ends.

        On local disks every new object is fsynced before its rename, one file at a time,
        which dominates the cost of storing thousands of small files. Inside this block (in
        the calling thread) the renames happen at once and the fsyncs of the files and their
        folders run together, in a thread pool, when the block exits. Callers commit the
        database rows that point at the objects only after the block, so no row ever names an
        object that a crash could lose.
        """
        if getattr(self._deferred, "paths", None) is not None:
            yield
            return
        self._deferred.paths = []
        try:
            yield
            self._sync_paths(self._deferred.paths)
        finally:
            self._deferred.paths = None

    def _open_for_write(self, path: str) -> Any:
        # Plain files on local disks: fsspec's wrapper costs more than a small write.
        return open(path, "wb") if self._local else self._fs.open(path, "wb")

    def _makedirs(self, folder: str) -> None:
        if folder not in self._made_dirs:
            self._fs.makedirs(folder, exist_ok=True)
            self._made_dirs.add(folder)

    def _temp_path(self) -> str:
        folder = f"{self._root}/{TEMP_PREFIX}"
        self._makedirs(folder)
        return f"{folder}/{uuid.uuid4().hex}.part"

    def _commit(self, temp: str, key: str) -> None:
        final = self._path(key)
        self._makedirs(posixpath.dirname(final))
        if not self._local:
            self._fs.mv(temp, final)
            return
        deferred = getattr(self._deferred, "paths", None)
        if deferred is None:
            _fsync_path(temp)
        # os.replace is atomic on one filesystem; a concurrent writer of the same key wrote
        # identical bytes, so whichever rename wins is correct.
        os.replace(temp, final)
        if deferred is None:
            _fsync_path(posixpath.dirname(final))
        else:
            deferred.append(final)

    def _sync_paths(self, paths: list[str]) -> None:
        if not paths:
            return
        # One syncfs() flushes the whole filesystem at once; thousands of fsyncs each wait
        # for a journal commit. Where syncfs is missing, fsync every file and folder.
        if len(paths) > 1 and _syncfs(self._root):
            return
        if len(paths) > 1:
            with ThreadPoolExecutor(max_workers=SYNC_THREADS) as pool:
                list(pool.map(_fsync_path, paths))
        else:
            _fsync_path(paths[0])
        for folder in sorted({posixpath.dirname(path) for path in paths}):
            _fsync_path(folder)

    def _discard(self, temp: str) -> None:
        try:
            if self._local:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
            elif self._fs.exists(temp):
                self._fs.rm(temp)
        except OSError:
            pass  # a leftover temp file is harmless and is never read

    def _missing(self, key: str) -> NotFoundError:
        return NotFoundError(f"no stored object {key} in storage {self.url!r}")


def _syncfs(path: str) -> bool:
    """Flush the filesystem holding ``path`` with Linux's syncfs(2); False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    syncfs = getattr(libc, "syncfs", None)
    if syncfs is None:
        return False
    descriptor = os.open(path, os.O_RDONLY)
    try:
        return bool(syncfs(descriptor) == 0)
    finally:
        os.close(descriptor)


def _fsync_path(path: str) -> None:
    """Flush a file's or a folder's contents to disk (a folder: the names in it)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
