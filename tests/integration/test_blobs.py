"""The content-addressed blob store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from detectors.errors import StorageError
from storage.blobs import CHUNK_BYTES, BlobNotFound, BlobStore, BlobTooLarge


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs", max_bytes=1024)


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_then_read_by_sha256(blobs: BlobStore):
    key = blobs.put(b"hello")
    assert key == hashlib.sha256(b"hello").hexdigest()
    assert blobs.read(key) == b"hello"
    assert blobs.exists(key)
    assert blobs.path(key) == blobs.root / key[:2] / key[2:4] / key
    with blobs.open(key) as reader:
        assert reader.read() == b"hello"


def test_put_is_idempotent(blobs: BlobStore):
    first = blobs.put(b"same bytes")
    second = blobs.put(b"same bytes")
    assert first == second
    assert _files_under(blobs.root) == [blobs.path(first)]


def test_put_file_streams_and_matches_put(blobs: BlobStore, tmp_path: Path):
    source = tmp_path / "image.png"
    source.write_bytes(b"\x89PNG" + bytes(range(256)) * 3)
    key = blobs.put_file(source)
    assert key == hashlib.sha256(source.read_bytes()).hexdigest()
    assert blobs.read(key) == source.read_bytes()
    assert blobs.put(source.read_bytes()) == key
    assert _files_under(blobs.root) == [blobs.path(key)]


def test_uppercase_key_names_the_same_blob(blobs: BlobStore):
    key = blobs.put(b"x")
    assert blobs.read(key.upper()) == b"x"


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "ab/" + "0" * 61,
        "g" * 64,
        "0" * 63,
        "0" * 65,
        "",
        "0" * 64 + "\n",
    ],
)
def test_keys_that_are_not_sha256_hex_are_refused(blobs: BlobStore, key: str):
    with pytest.raises(StorageError, match="64 hex digits"):
        blobs.path(key)
    with pytest.raises(StorageError):
        blobs.read(key)
    with pytest.raises(StorageError):
        blobs.exists(key)


def test_missing_blob_raises_blob_not_found(blobs: BlobStore):
    with pytest.raises(BlobNotFound):
        blobs.read("0" * 64)
    assert not blobs.exists("0" * 64)


def test_oversized_put_leaves_nothing(blobs: BlobStore):
    with pytest.raises(BlobTooLarge):
        blobs.put(b"x" * 1025)
    assert _files_under(blobs.root) == []


def test_failed_streaming_put_leaves_no_partial_file(blobs: BlobStore, tmp_path: Path):
    # The cap trips after a whole chunk was already written to the temporary file.
    big = tmp_path / "big.bin"
    big.write_bytes(b"y" * (3 * CHUNK_BYTES))
    capped = BlobStore(blobs.root, max_bytes=CHUNK_BYTES + CHUNK_BYTES // 2)
    with pytest.raises(BlobTooLarge):
        capped.put_file(big)
    assert _files_under(blobs.root) == []
    assert not blobs.exists(hashlib.sha256(big.read_bytes()).hexdigest())


def test_missing_source_file_raises_storage_error(blobs: BlobStore, tmp_path: Path):
    with pytest.raises(StorageError, match="cannot store"):
        blobs.put_file(tmp_path / "absent.png")
    assert _files_under(blobs.root) == []
