"""The S3 blob store against a real server (SeaweedFS) when things go wrong: a missing
bucket, bad credentials, an endpoint that is down, 5xx answers, resets, a server restart."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from detectors.errors import StorageError
from storage.s3_blobs import S3BlobStore, S3Credentials, S3Options
from tests.flakyproxy import FlakyProxy
from tests.s3_fixtures import s3_store
from tests.s3server import ACCESS_KEY, SECRET_KEY, SeaweedServer, _free_ports

pytestmark = pytest.mark.s3


@pytest.fixture
def proxy(s3_server: SeaweedServer) -> Iterator[FlakyProxy]:
    flaky = FlakyProxy(s3_server.ports["s3"])
    yield flaky
    flaky.close()


def _one_line(exc: pytest.ExceptionInfo[StorageError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    assert SECRET_KEY not in message and "wrong-secret" not in message
    return message


def test_missing_bucket_is_one_line_at_check(s3_server: SeaweedServer):
    blobs = s3_store(s3_server, "no-such-bucket-here")
    with pytest.raises(StorageError) as caught:
        blobs.check()
    message = _one_line(caught)
    assert "bucket no-such-bucket-here does not exist at http://127.0.0.1:" in message
    assert "create it" in message


def test_bad_secret_is_one_line_at_check(s3_server: SeaweedServer, s3_bucket: str):
    blobs = S3BlobStore(
        s3_bucket,
        options=S3Options(endpoint_url=s3_server.endpoint, max_attempts=1),
        credentials=S3Credentials(ACCESS_KEY, "wrong-secret"),
    )
    with pytest.raises(StorageError) as caught:
        blobs.check()
    message = _one_line(caught)
    assert f"access to bucket {s3_bucket}" in message and "denied" in message
    assert "access_key_id and secret_access_key" in message
    assert "wrong-secret" not in repr(blobs) and ACCESS_KEY not in repr(blobs)


def test_unreachable_endpoint_is_one_line_and_fast():
    (port,) = _free_ports(1)  # nothing listens there
    blobs = S3BlobStore(
        "stylewatch",
        options=S3Options(endpoint_url=f"http://127.0.0.1:{port}", max_attempts=2, timeout_s=2),
        credentials=S3Credentials("k", "s"),
    )
    began = time.monotonic()
    with pytest.raises(StorageError) as caught:
        blobs.check()
    assert time.monotonic() - began < 10
    assert f"cannot reach the S3 endpoint http://127.0.0.1:{port}" in _one_line(caught)
    with pytest.raises(StorageError, match="cannot reach the S3 endpoint"):
        blobs.put(b"lost?")


@pytest.mark.parametrize("faults", [["503", "503"], ["reset", "reset"], ["503", "reset"]])
def test_5xx_and_resets_are_retried(proxy: FlakyProxy, s3_bucket: str, faults: list[str]):
    blobs = s3_store_via(proxy, s3_bucket, max_attempts=4)
    proxy.faults.extend(faults)
    key = blobs.put(b"evidence sheet")
    assert proxy.spent == faults
    assert blobs.read(key) == b"evidence sheet"


def test_a_server_that_keeps_failing_gives_one_line(proxy: FlakyProxy, s3_bucket: str):
    blobs = s3_store_via(proxy, s3_bucket, max_attempts=2)
    proxy.faults.extend(["503"] * 4)
    with pytest.raises(StorageError) as caught:
        blobs.put(b"never stored")
    assert "503" in _one_line(caught) or "SlowDown" in str(caught.value)
    assert len(proxy.spent) == 2  # max_attempts tries, then the error


def test_blobs_survive_a_server_restart(s3_server: SeaweedServer, s3_bucket: str):
    blobs = s3_store(s3_server, s3_bucket, max_attempts=2, timeout_s=3)
    key = blobs.put(b"written before the restart")
    s3_server.kill()
    try:
        with pytest.raises(StorageError) as caught:
            blobs.put(b"written while it is down")
        assert "cannot reach the S3 endpoint" in _one_line(caught)
        with pytest.raises(StorageError):
            blobs.check()
    finally:
        s3_server.start()
    assert _read_once_ready(blobs, key) == b"written before the restart"
    again = blobs.put(b"written while it is down")
    assert blobs.read(again) == b"written while it is down"
    blobs.check()


def _read_once_ready(blobs: S3BlobStore, key: str) -> bytes:
    """The blob, once the restarted server serves it (its volume server re-registers with
    the master a moment after the S3 gateway answers); what /readyz waits for in a fleet."""
    deadline = time.monotonic() + 20
    while True:
        try:
            blobs.check()
            return blobs.read(key)
        except StorageError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def s3_store_via(proxy: FlakyProxy, bucket: str, **options: object) -> S3BlobStore:
    """A store reaching the server through ``proxy``."""
    store = s3_store_endpoint(proxy.endpoint, bucket, **options)
    return store


def s3_store_endpoint(endpoint: str, bucket: str, **options: object) -> S3BlobStore:
    chosen: dict[str, object] = {"endpoint_url": endpoint, "timeout_s": 5.0, **options}
    return S3BlobStore(
        bucket,
        "retries/",
        options=S3Options(**chosen),  # type: ignore[arg-type]  # keyword values from the test
        credentials=S3Credentials(ACCESS_KEY, SECRET_KEY),
    )
