"""Copying a folder of blobs into a bucket (and into another folder): resumable, verified."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from detectors.errors import StorageError
from storage.blob_migration import MigrationProgress, migrate_blobs
from storage.blobs import BlobStore
from storage.file_blobs import FileBlobStore
from tests.s3_fixtures import s3_store
from tests.s3server import SeaweedServer


def _filled(root: Path, count: int) -> tuple[FileBlobStore, dict[str, bytes]]:
    source = FileBlobStore(root)
    blobs = {}
    for i in range(count):
        data = hashlib.sha256(str(i).encode()).digest() * (i + 1)
        blobs[source.put(data)] = data
    return source, blobs


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "file":
        return FileBlobStore(tmp_path / "target")
    server: SeaweedServer = request.getfixturevalue("s3_server")
    return s3_store(server, request.getfixturevalue("s3_bucket"))


def test_migration_copies_every_blob_and_resumes(tmp_path: Path, target: BlobStore):
    source, blobs = _filled(tmp_path / "source", 12)
    some = sorted(blobs)[:5]
    for key in some:  # a first run that stopped after five blobs
        target.put(blobs[key])
    seen: list[MigrationProgress] = []
    counts = migrate_blobs(source, target, progress=seen.append)
    assert (counts.total, counts.copied, counts.skipped, counts.corrupt) == (12, 7, 5, [])
    assert counts.bytes_copied == sum(len(blobs[k]) for k in blobs if k not in some)
    assert seen[-1].done == 12
    for key, data in blobs.items():
        assert target.read(key) == data
    again = migrate_blobs(source, target, verify=True)
    assert (again.copied, again.skipped, again.corrupt) == (0, 12, [])


def test_a_file_that_no_longer_matches_its_name_is_reported(tmp_path: Path, target: BlobStore):
    source, blobs = _filled(tmp_path / "source", 3)
    bad = sorted(blobs)[1]
    source.path(bad).write_bytes(b"bit rot")
    counts = migrate_blobs(source, target)
    assert counts.corrupt == [bad]
    assert counts.copied == 2
    assert not target.exists(bad)


def test_verify_finds_a_corrupt_copy_at_a_folder_target(tmp_path: Path):
    source, blobs = _filled(tmp_path / "source", 2)
    target = FileBlobStore(tmp_path / "target")
    migrate_blobs(source, target)
    broken = sorted(blobs)[0]
    target.path(broken).write_bytes(b"damaged at the target")
    counts = migrate_blobs(source, target, verify=True)
    assert counts.corrupt == [broken]


@pytest.mark.s3
def test_a_target_that_goes_down_stops_with_one_line_and_rerun_finishes(
    tmp_path: Path, s3_server: SeaweedServer, s3_bucket: str
):
    source, blobs = _filled(tmp_path / "source", 6)
    target = s3_store(s3_server, s3_bucket, max_attempts=1, timeout_s=3)
    for key in sorted(blobs)[:3]:  # copied before the server went down
        target.put(blobs[key])
    s3_server.kill()
    try:
        with pytest.raises(StorageError) as caught:
            migrate_blobs(source, target)
        assert "\n" not in str(caught.value) and "cannot reach" in str(caught.value)
    finally:
        s3_server.start()
    counts = _once_ready(source, target)
    assert (counts.copied, counts.skipped) == (3, 3)
    assert all(target.read(key) == data for key, data in blobs.items())


def _once_ready(source: FileBlobStore, target: BlobStore) -> MigrationProgress:
    """Run the migration again once the restarted server takes writes."""
    deadline = time.monotonic() + 20
    while True:
        try:
            target.check()
            return migrate_blobs(source, target)
        except StorageError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
