"""The composition root with ``[storage] blobs = "s3://…"``: start-up checks the bucket, and
serve's /readyz says when the blob store cannot be used."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from detectors.errors import ConfigError, StorageError
from monitor.runtime import open_runtime
from monitor.services.serve import _blobs_problem
from monitor.settings import Settings, load_settings
from monitor.web.app import ServiceStatus, create_app
from storage.blobs import BlobStoreUnavailable
from storage.file_blobs import FileBlobStore
from storage.s3_blobs import S3BlobStore
from tests.s3server import ACCESS_KEY, SECRET_KEY, SeaweedServer

pytestmark = pytest.mark.s3


def _settings(
    tmp_path: Path, server: SeaweedServer, url: str, secret: str = SECRET_KEY
) -> Settings:
    storage = {
        "blobs": url,
        "endpoint_url": server.endpoint,
        "access_key_id": ACCESS_KEY,
        "secret_access_key": secret,
        "max_attempts": 2,
    }
    return load_settings(None, data_dir=tmp_path / "data", storage=storage)


def test_runtime_stores_blobs_in_the_bucket(
    tmp_path: Path, s3_server: SeaweedServer, s3_bucket: str
):
    runtime = open_runtime(_settings(tmp_path, s3_server, f"s3://{s3_bucket}/fleet/a"))
    try:
        assert isinstance(runtime.blobs, S3BlobStore)
        assert runtime.blobs.prefix == "fleet/a/"
        key = runtime.blobs.put(b"sheet")
        names = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="fleet/a/")
        assert f"fleet/a/{key[:2]}/{key[2:4]}/{key}" in [o["Key"] for o in names["Contents"]]
        assert not (tmp_path / "data" / "blobs").exists()
    finally:
        runtime.close()


def test_start_up_fails_in_one_line_on_a_missing_bucket(tmp_path: Path, s3_server: SeaweedServer):
    with pytest.raises(StorageError, match="bucket not-made-yet does not exist") as caught:
        open_runtime(_settings(tmp_path, s3_server, "s3://not-made-yet"))
    assert "\n" not in str(caught.value)


def test_serve_and_workers_wait_for_a_restarting_server_but_not_for_a_missing_bucket(
    tmp_path: Path, s3_server: SeaweedServer, s3_bucket: str
):
    began = time.monotonic()
    with pytest.raises(StorageError) as caught:
        open_runtime(_settings(tmp_path, s3_server, "s3://not-made-yet"), wait_for_blobs_s=30)
    assert not isinstance(caught.value, BlobStoreUnavailable)  # a fix is needed: no wait
    assert time.monotonic() - began < 10
    back = threading.Timer(1.0, s3_server.start)
    s3_server.kill()
    try:
        with pytest.raises(BlobStoreUnavailable, match="cannot reach the S3 endpoint"):
            open_runtime(_settings(tmp_path, s3_server, f"s3://{s3_bucket}"))
        back.start()
        runtime = open_runtime(
            _settings(tmp_path, s3_server, f"s3://{s3_bucket}"), wait_for_blobs_s=40
        )
        runtime.close()
    finally:
        if back.is_alive():
            back.join()
        if s3_server.process is None:
            s3_server.start()


def test_start_up_fails_in_one_line_on_a_bad_secret(
    tmp_path: Path, s3_server: SeaweedServer, s3_bucket: str
):
    settings = _settings(tmp_path, s3_server, f"s3://{s3_bucket}", secret="not-the-secret")
    with pytest.raises(StorageError, match="denied") as caught:
        open_runtime(settings)
    assert "not-the-secret" not in str(caught.value)
    assert "not-the-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("storage", "problem"),
    [
        ({"blobs": "s3://UPPER"}, "storage.blobs: 's3://UPPER' is not s3://bucket/prefix"),
        ({"blobs": "s3://"}, "storage.blobs: .* is not s3://bucket/prefix"),
        ({"blobs": "s3://bucket/x", "access_key_id": "only-half"}, "storage: set both"),
        ({"endpoint_url": "127.0.0.1:9000"}, "storage.endpoint_url: must start with http://"),
        ({"addressing_style": "sideways"}, "storage.addressing_style"),
    ],
)
def test_bad_storage_settings_name_the_key(tmp_path: Path, storage: dict[str, str], problem: str):
    with pytest.raises(ConfigError, match=problem) as caught:
        load_settings(None, data_dir=tmp_path, storage=storage)
    assert "only-half" not in str(caught.value)


def test_a_folder_path_is_a_file_store(tmp_path: Path):
    settings = load_settings(
        None, data_dir=tmp_path / "data", storage={"blobs": str(tmp_path / "nfs")}
    )
    runtime = open_runtime(settings)
    try:
        assert isinstance(runtime.blobs, FileBlobStore)
        assert runtime.blobs.root == tmp_path / "nfs"
    finally:
        runtime.close()


async def test_readyz_says_when_the_bucket_is_gone(tmp_path: Path, s3_server: SeaweedServer):
    bucket = s3_server.create_bucket()
    runtime = open_runtime(_settings(tmp_path, s3_server, f"s3://{bucket}"))
    status = ServiceStatus(
        version="test",
        database="sqlite",
        sources=(),
        store=runtime.store,
        ready=lambda: True,
        runtime=runtime,
        blobs_problem=lambda: _blobs_problem(runtime),
    )
    client = TestClient(TestServer(create_app(status)))
    await client.start_server()
    try:
        ok = await client.get("/readyz")
        assert (ok.status, await ok.json()) == (200, {"status": "ok"})
        admin = s3_server.client()
        for listed in admin.list_objects_v2(Bucket=bucket).get("Contents", []):
            admin.delete_object(Bucket=bucket, Key=listed["Key"])
        admin.delete_bucket(Bucket=bucket)
        gone = await client.get("/readyz")
        body = await gone.json()
        assert gone.status == 503 and body["status"] == "unavailable"
        assert f"bucket {bucket} does not exist" in body["blobs"]
        assert SECRET_KEY not in body["blobs"]
    finally:
        await client.close()
        runtime.close()
