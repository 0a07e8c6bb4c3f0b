"""The blob store contract: every adapter (a folder, an S3 bucket on SeaweedFS) passes it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from detectors.errors import StorageError
from storage.blobs import CHUNK_BYTES, BlobNotFound, BlobStore, BlobTooLarge
from storage.file_blobs import FileBlobStore
from storage.s3_blobs import S3BlobStore
from tests.s3_fixtures import s3_store
from tests.s3server import SeaweedServer


def stored(blobs: BlobStore) -> list[str]:
    """Every file or object the store holds (not only blobs: leftovers count)."""
    if isinstance(blobs, FileBlobStore):
        if not blobs.root.exists():
            return []
        return sorted(str(p.relative_to(blobs.root)) for p in blobs.root.rglob("*") if p.is_file())
    assert isinstance(blobs, S3BlobStore)
    client = blobs._client
    listed = client.list_objects_v2(Bucket=blobs.bucket, Prefix=blobs.prefix)
    names = [o["Key"].removeprefix(blobs.prefix) for o in listed.get("Contents", [])]
    return sorted(name for name in names if name != _EMPTY_PATH)  # check()'s probe blob


_EMPTY = hashlib.sha256(b"").hexdigest()
_EMPTY_PATH = f"{_EMPTY[:2]}/{_EMPTY[2:4]}/{_EMPTY}"


def _layout(key: str) -> str:
    return f"{key[:2]}/{key[2:4]}/{key}"


def test_put_then_read_by_sha256(blob_store: BlobStore):
    key = blob_store.put(b"hello")
    assert key == hashlib.sha256(b"hello").hexdigest()
    assert blob_store.read(key) == b"hello"
    assert blob_store.exists(key)
    assert stored(blob_store) == [_layout(key)]
    with blob_store.open(key) as reader:
        assert reader.size == 5
        assert reader.read(2) == b"he"
        assert reader.read() == b"llo"
        assert reader.read() == b""


def test_put_is_idempotent(blob_store: BlobStore):
    first = blob_store.put(b"same bytes")
    second = blob_store.put(b"same bytes")
    assert first == second
    assert stored(blob_store) == [_layout(first)]


def test_put_file_streams_and_matches_put(blob_store: BlobStore, tmp_path: Path):
    source = tmp_path / "ref.png"
    source.write_bytes(b"\x89PNG" + bytes(range(256)) * 3)
    key = blob_store.put_file(source)
    assert blob_store.read(key) == source.read_bytes()
    assert blob_store.put(source.read_bytes()) == key
    assert stored(blob_store) == [_layout(key)]


def test_ranges_read_part_of_a_blob(blob_store: BlobStore):
    data = bytes(range(200))
    key = blob_store.put(data)
    with blob_store.open(key, start=10, length=5) as reader:
        assert (reader.size, reader.read()) == (200, data[10:15])
    with blob_store.open(key, start=190) as reader:
        assert reader.read() == data[190:]
    with blob_store.open(key, start=195, length=50) as reader:  # clamped at the end
        assert reader.read() == data[195:]
    with blob_store.open(key, start=200) as reader:
        assert (reader.size, reader.read()) == (200, b"")
    with blob_store.open(key, start=3, length=0) as reader:
        assert reader.read() == b""
    with pytest.raises(StorageError, match="invalid blob range"):
        blob_store.open(key, start=-1)


def test_uppercase_key_names_the_same_blob(blob_store: BlobStore):
    key = blob_store.put(b"x")
    assert blob_store.read(key.upper()) == b"x"
    assert blob_store.exists(key.upper())


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
def test_keys_that_are_not_sha256_hex_are_refused(blob_store: BlobStore, key: str):
    with pytest.raises(StorageError, match="64 hex digits"):
        blob_store.read(key)
    with pytest.raises(StorageError, match="64 hex digits"):
        blob_store.exists(key)
    with pytest.raises(StorageError, match="64 hex digits"):
        blob_store.open(key, start=1)


def test_missing_blob_raises_blob_not_found(blob_store: BlobStore):
    with pytest.raises(BlobNotFound):
        blob_store.read("0" * 64)
    with pytest.raises(BlobNotFound):
        blob_store.open("0" * 64, start=5, length=0)
    assert not blob_store.exists("0" * 64)


def test_oversized_put_leaves_nothing(blob_store: BlobStore):
    with pytest.raises(BlobTooLarge):
        blob_store.put(b"x" * 1025)
    assert stored(blob_store) == []


def test_missing_source_file_raises_storage_error(blob_store: BlobStore, tmp_path: Path):
    with pytest.raises(StorageError, match="cannot store"):
        blob_store.put_file(tmp_path / "absent.png")
    assert stored(blob_store) == []


def test_check_passes_on_a_usable_store(blob_store: BlobStore):
    blob_store.check()
    blob_store.check()  # twice: the probe is idempotent
    assert stored(blob_store) == []


# Adapter-specific: what only a folder or only a bucket can get wrong.


def test_failed_streaming_put_leaves_no_partial_file(tmp_path: Path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"y" * (CHUNK_BYTES * 2))
    root = tmp_path / "blobs"
    capped = FileBlobStore(root, max_bytes=CHUNK_BYTES + CHUNK_BYTES // 2)
    with pytest.raises(BlobTooLarge):
        capped.put_file(big)
    assert stored(capped) == []
    assert FileBlobStore(root).path(hashlib.sha256(big.read_bytes()).hexdigest()).parent
    assert list(FileBlobStore(root).keys()) == []


def test_file_store_keys_lists_blobs_only(tmp_path: Path):
    blobs = FileBlobStore(tmp_path / "blobs")
    keys = {blobs.put(b"a"), blobs.put(b"b")}
    (blobs.root / ".tmp-leftover").write_bytes(b"partial")
    (blobs.root / "ab").mkdir(exist_ok=True)
    (blobs.root / "ab" / "notes.txt").write_text("not a blob")
    assert set(blobs.keys()) == keys


def test_file_store_check_names_an_unwritable_folder(tmp_path: Path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder should be")
    with pytest.raises(StorageError, match="cannot create the blob store"):
        FileBlobStore(blocked / "blobs").check()


@pytest.mark.s3
def test_large_s3_put_goes_up_in_parts(s3_server: SeaweedServer, s3_bucket: str, tmp_path: Path):
    part = 5 * 1024 * 1024
    blobs = s3_store(s3_server, s3_bucket, part_bytes=part)
    data = hashlib.sha256(b"seed").digest() * (part * 2 // 32 + 1000)  # 2 parts and a bit
    key = blobs.put(data)
    head = blobs._client.head_object(Bucket=s3_bucket, Key=blobs.object_key(key))
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object's ETag counts its parts
    assert blobs.read(key) == data
    source = tmp_path / "big.bin"
    source.write_bytes(data[::-1])
    other = blobs.put_file(source)
    assert other == hashlib.sha256(data[::-1]).hexdigest()
    with blobs.open(other, start=part - 3, length=6) as reader:
        assert reader.read() == data[::-1][part - 3 : part + 3]
    assert stored(blobs) == sorted([_layout(key), _layout(other)])
