"""Content-addressed storage: one contract, run on a local folder, file:// and memory://."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from batchnb.documents import Storage
from batchnb.documents.storage import CHUNK_BYTES, key_for_hash, validate_key
from batchnb.errors import ConfigurationError, NotFoundError


@pytest.fixture(params=["folder", "file-url", "memory"])
def any_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """The same tests against each kind of storage URL."""
    if request.param == "folder":
        yield Storage(str(tmp_path / "store"))
    elif request.param == "file-url":
        yield Storage((tmp_path / "store").as_uri())
    else:
        name = f"batchnb-test-{uuid.uuid4().hex}"
        yield Storage(f"memory://{name}")
        fsspec.filesystem("memory").rm(f"/{name}", recursive=True)


def _all_files(storage: Storage) -> list[str]:
    """Every file under the storage root, relative to it."""
    fs, root = fsspec.core.url_to_fs(storage.url)
    root = root.rstrip("/")
    return sorted(path[len(root) + 1 :] for path in fs.find(root))


def test_put_stores_under_the_sha256_key(any_storage: Storage) -> None:
    data = b"%PDF-1.7 invoice 42"
    digest = hashlib.sha256(data).hexdigest()
    stored = any_storage.put(data)
    assert stored.content_hash == digest
    assert stored.key == f"sha256/{digest[:2]}/{digest}"
    assert stored.size == len(data)
    assert any_storage.exists(stored.key)
    assert any_storage.read(stored.key) == data
    assert any_storage.size(stored.key) == len(data)
    with any_storage.open(stored.key) as handle:
        assert handle.read(4) == b"%PDF"
    assert _all_files(any_storage) == [stored.key]  # no temporary file left behind


def test_same_bytes_share_one_object(any_storage: Storage) -> None:
    first = any_storage.put(b"same bytes")
    second = any_storage.put(b"same bytes")
    third = any_storage.put_stream(io.BytesIO(b"same bytes"))
    assert first == second == third
    other = any_storage.put(b"other bytes")
    assert other.key != first.key
    assert _all_files(any_storage) == sorted([first.key, other.key])


def test_put_stream_hashes_while_copying_in_chunks(any_storage: Storage) -> None:
    data = bytes(range(256)) * (CHUNK_BYTES // 256 * 2 + 3)  # a little over two chunks
    reads: list[int] = []

    class CountingStream(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            reads.append(-1 if size is None else size)
            return super().read(size)

    stored = any_storage.put_stream(CountingStream(data))
    assert stored.content_hash == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data)
    assert any_storage.read(stored.key) == data
    assert reads and all(0 < size <= CHUNK_BYTES for size in reads)  # never "read everything"


def test_failed_stream_leaves_nothing_behind(any_storage: Storage) -> None:
    class BrokenStream:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, size: int = -1, /) -> bytes:
            self.calls += 1
            if self.calls > 1:
                raise OSError("disk vanished")
            return b"partial"

    with pytest.raises(OSError, match="disk vanished"):
        any_storage.put_stream(BrokenStream())
    assert _all_files(any_storage) == []


def test_delete_and_missing_objects(any_storage: Storage) -> None:
    stored = any_storage.put(b"to delete")
    any_storage.delete(stored.key)
    assert not any_storage.exists(stored.key)
    any_storage.delete(stored.key)  # deleting twice is fine
    with pytest.raises(NotFoundError, match="no stored object"):
        any_storage.read(stored.key)
    with pytest.raises(NotFoundError):
        any_storage.size(stored.key)


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "sha256/ab/../../../etc/passwd",
        "sha256/ab/" + "0" * 64,  # prefix does not match the digest
        "sha256/00/" + "0" * 63,
        "SHA256/00/" + "0" * 64,
        "",
    ],
)
def test_malformed_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError, match="invalid storage key"):
        storage.read(key)
    with pytest.raises(ValueError, match="invalid storage key"):
        storage.exists(key)


def test_valid_key_round_trip() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    validate_key(key_for_hash(digest))


def test_existing_object_is_not_rewritten(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path / "store"))
    stored = storage.put(b"original")
    object_path = tmp_path / "store" / stored.key
    object_path.write_bytes(b"tampered")  # same size, different bytes
    assert storage.put(b"original") == stored
    assert storage.put_file(_write(tmp_path / "again.bin", b"original")) == stored
    assert object_path.read_bytes() == b"tampered"  # proof that nothing was written again


def test_put_file_streams_a_local_file(storage: Storage, tmp_path: Path) -> None:
    data = b"line\n" * 100_000
    stored = storage.put_file(_write(tmp_path / "big.txt", data))
    assert stored.size == len(data)
    assert storage.read(stored.key) == data


def test_local_folder_is_created_lazily_and_tilde_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    storage = Storage("~/deep/store")
    stored = storage.put(b"abc")
    assert (tmp_path / "deep" / "store" / stored.key).read_bytes() == b"abc"


def test_unusable_urls_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="nosuchproto"):
        Storage("nosuchproto://bucket/prefix")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_deferred_sync_stores_everything_and_syncs_once_at_the_end(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path / "store"))
    with storage.deferred_sync():
        stored = [storage.put(f"document {n}".encode()) for n in range(20)]
        with storage.deferred_sync():  # nested blocks join the outer one
            stored.append(storage.put(b"nested"))
    assert [storage.read(s.key) for s in stored[:2]] == [b"document 0", b"document 1"]
    assert storage.read(stored[-1].key) == b"nested"
    assert not any((tmp_path / "store" / "tmp").iterdir())


def test_local_temp_dir_only_for_local_storage(tmp_path: Path) -> None:
    assert Storage(str(tmp_path / "s")).local_temp_dir == tmp_path / "s" / "tmp"
    assert Storage("memory://batchnb-temp-test").local_temp_dir is None
