"""The database, its WAL and the blobs are created for their owner only (#20)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.runtime import open_runtime
from monitor.settings import load_settings


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0o000)  # the worst case: everything created is world-writable
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_wal_blobs_and_folders_are_private(tmp_path: Path, open_umask: None):
    data = tmp_path / "new" / "data"
    runtime = open_runtime(load_settings(None, data_dir=data))
    try:
        runtime.store.add_artist("Mira Okafor")  # a write: the WAL and -shm exist now
        key = runtime.blobs.put(b"evidence bytes")
        db = data / "stylewatch.db"
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            assert path.exists() and mode(path) == 0o600, path
        assert mode(data) == 0o700 and mode(data.parent) == 0o700
        blob_files = [p for p in (data / "blobs").rglob("*") if p.is_file()]
        assert blob_files and {mode(p) for p in blob_files} == {0o600}, key
        assert {mode(p) for p in (data / "blobs").rglob("*") if p.is_dir()} <= {0o700}
    finally:
        runtime.close()


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path):
    db = tmp_path / "stylewatch.db"
    db.touch(mode=0o644)
    os.chmod(db, 0o644)
    runtime = open_runtime(load_settings(None, data_dir=tmp_path))
    runtime.close()
    assert mode(db) == 0o600
