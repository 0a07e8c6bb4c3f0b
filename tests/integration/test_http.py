"""monitor.sources.http against a real local server: retries, error translation, redirects,
Range."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from detectors.errors import SourceRejected, SourceUnavailable
from monitor.sources.http import Credential, HttpClient, redact, retry_after_s
from tests.fakehubs.faults import Faults
from tests.fakehubs.harness import FAST, SleepLog, fast_client
from tests.fakehubs.storage import Blob, FakeStorage

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, Faults]]:
    faults = Faults(slow_s=0.5)

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "auth": request.headers.get("Authorization")})

    async def missing(request: web.Request) -> web.Response:
        return web.json_response({"error": "Model not found"}, status=404)

    app = web.Application(middlewares=[faults.middleware])
    app.router.add_get("/ok", ok)
    app.router.add_get("/missing", missing)
    srv = TestServer(app, host="127.0.0.1", port=0)
    await srv.start_server()
    yield srv, faults
    await srv.close()


async def test_retry_after_is_honoured_then_the_answer_comes(server) -> None:
    srv, faults = server
    faults.add("/ok", "429")
    faults.add("/ok", "503")
    sleep = SleepLog()
    async with aiohttp.ClientSession() as session:
        reply = await fast_client(session, sleep).get_json(srv.make_url("/ok"))
    assert reply.data["ok"] is True
    # Retry-After: 1, capped by the test policy; the host stays held for the next try too
    assert len(sleep.delays) >= 2
    assert all(0 < d <= 0.01 for d in sleep.delays)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("503", SourceUnavailable),
        ("500", SourceUnavailable),
        ("reset", SourceUnavailable),
        ("slow", SourceUnavailable),
        ("garbage", SourceRejected),
    ],
)
async def test_faults_leave_as_source_errors_only(server, fault, error) -> None:
    srv, faults = server
    faults.add("/ok", fault, times=8)  # aiohttp itself retries a reset keep-alive once
    policy = replace(FAST, timeout_s=0.2, max_attempts=2)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(error) as caught:
            await HttpClient(session, policy, sleep=SleepLog()).get_json(srv.make_url("/ok"))
    assert not isinstance(caught.value, aiohttp.ClientError)


async def test_a_4xx_is_rejected_without_retry(server) -> None:
    srv, _ = server
    sleep = SleepLog()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(SourceRejected, match="HTTP 404"):
            await fast_client(session, sleep).get_json(srv.make_url("/missing"))
    assert sleep.delays == []


async def test_refused_connection_is_unavailable() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(SourceUnavailable):
            await fast_client(session).get_json("http://127.0.0.1:9/nothing")


async def test_credential_goes_to_its_origin_only_and_logs_are_redacted(server, caplog) -> None:
    srv, faults = server
    faults.add("/ok", "503")
    origin = str(srv.make_url("")).rstrip("/")
    credential = Credential.for_base(origin, "s3cret-token")
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as session:
        client = fast_client(session)
        mine = await client.get_json(srv.make_url("/ok?token=s3cret-token"), credential=credential)
        other = Credential.for_base("http://127.0.0.2:1", "s3cret-token")
        theirs = await client.get_json(srv.make_url("/ok"), credential=other)
    assert mine.data["auth"] == "Bearer s3cret-token"
    assert theirs.data["auth"] is None
    ours = [r for r in caplog.records if r.name.startswith("monitor")]
    assert ours
    assert all("s3cret" not in str(vars(r)) for r in ours)
    assert "s3cret" not in repr(credential)


async def test_range_ignored_reads_only_what_was_asked_and_closes() -> None:
    storage = FakeStorage()
    storage.put("big", Blob(b"H" * 1000, 8 * 1024 * 1024))
    storage.ignore_range.add("big")
    srv = TestServer(storage.app(), host="127.0.0.1", port=0)
    await srv.start_server()
    storage.origin = str(srv.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as session:
            got = await fast_client(session).get_range(storage.url_for("big"), start=0, length=600)
            later = await fast_client(session).get_range(
                storage.url_for("big"), start=900, length=200
            )
    finally:
        await srv.close()
    assert got.data == b"H" * 600
    assert got.bytes_read == 600
    assert later.data == b"H" * 100 + b"\0" * 100
    assert later.bytes_read == 1100
    assert got.total_size == 8 * 1024 * 1024


def test_redact_and_retry_after_parsing() -> None:
    assert "abc" not in redact("https://h/x?token=abc&X-Amz-Signature=abc&q=1")
    assert "q=1" in redact("https://h/x?token=abc&q=1")
    assert retry_after_s({"Retry-After": "2"}, 0) == 2.0
    assert retry_after_s({"RateLimit": '"api";r=0;t=211'}, 0) == 211.0
    assert retry_after_s({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 1445412470) == 10.0
    assert retry_after_s({}, 0) is None
