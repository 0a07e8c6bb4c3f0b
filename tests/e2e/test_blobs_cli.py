"""``stylewatch blobs migrate`` in a subprocess: a folder store round-trips through a bucket
on SeaweedFS, a second run copies nothing, and a missing bucket is one ``error:`` line."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.file_blobs import FileBlobStore
from storage.s3_blobs import S3BlobStore, S3Credentials, S3Options
from tests.s3server import ACCESS_KEY, SECRET_KEY, SeaweedServer

BIN = Path(sys.executable).parent / "stylewatch"
pytestmark = [pytest.mark.s3, pytest.mark.timeout(180)]


def run(data: Path, server: SeaweedServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STYLEWATCH_", "AWS_"))}
    env.update(
        STYLEWATCH_DATA_DIR=str(data),
        STYLEWATCH_STORAGE__ENDPOINT_URL=server.endpoint,
        STYLEWATCH_STORAGE__ACCESS_KEY_ID=ACCESS_KEY,
        STYLEWATCH_STORAGE__SECRET_ACCESS_KEY=SECRET_KEY,
    )
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_migrate_round_trips_a_store(tmp_path: Path, s3_server: SeaweedServer, s3_bucket: str):
    local = FileBlobStore(tmp_path / "data" / "blobs")
    blobs = {local.put(hashlib.sha256(bytes([i])).digest() * 100 * i): i for i in range(1, 9)}
    url = f"s3://{s3_bucket}/migrated"
    first = run(tmp_path / "data", s3_server, "blobs", "migrate", "--to", url)
    assert first.returncode == 0, first.stderr
    summary = first.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"migrated {local.root} to {url}: 8 copied (")
    assert summary.endswith(", 0 already there, 0 corrupt")
    assert "blobs: 8/8" in first.stderr  # the progress line
    assert SECRET_KEY not in first.stdout + first.stderr

    bucket = S3BlobStore(
        s3_bucket,
        "migrated/",
        options=S3Options(endpoint_url=s3_server.endpoint),
        credentials=S3Credentials(ACCESS_KEY, SECRET_KEY),
    )
    for key in blobs:
        assert bucket.read(key) == local.read(key)

    again = run(tmp_path / "data", s3_server, "blobs", "migrate", "--to", url, "--verify")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith("0 copied (0 B), 8 already there, 0 corrupt, all verified")

    back = tmp_path / "back"
    home = run(tmp_path / "data", s3_server, "blobs", "migrate", "--to", str(back))
    assert home.returncode == 0, home.stderr
    assert sorted(FileBlobStore(back).keys()) == sorted(blobs)


def test_migrate_to_a_missing_bucket_is_one_error_line(tmp_path: Path, s3_server: SeaweedServer):
    FileBlobStore(tmp_path / "data" / "blobs").put(b"x")
    result = run(tmp_path / "data", s3_server, "blobs", "migrate", "--to", "s3://nowhere-bucket")
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot use the blob store: bucket nowhere-bucket")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_migrate_without_a_store_says_where_it_looked(tmp_path: Path, s3_server: SeaweedServer):
    result = run(tmp_path / "empty", s3_server, "blobs", "migrate", "--to", "s3://x-bucket")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: no blob folder at {tmp_path / 'empty' / 'blobs'}: pass --from PATH"
    )
