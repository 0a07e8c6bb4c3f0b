"""monitor.sources.http against a real local server sending what bench/fuzz.py found to crash it: a
JSON body nested past the decoder's recursion limit or holding a 5,000-digit number, and
non-ASCII digits in Content-Range and RateLimit (``str.isdigit`` is true for '²', ``int``
refuses it). Each is a ``SourceRejected`` or read as absent, never another exception."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from detectors.errors import SourceRejected
from monitor.sources.http import retry_after_s
from tests.fakehubs.harness import SleepLog, fast_client

pytestmark = pytest.mark.timeout(30)

BODIES = {
    "/deep": b'{"items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "/long-number": b'{"id": ' + b"9" * 5_000 + b"}",
}


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, list[str]]]:
    served: list[str] = []

    async def body(request: web.Request) -> web.Response:
        return web.Response(body=BODIES[request.path], content_type="application/json")

    async def ranged(request: web.Request) -> web.Response:
        return web.Response(status=206, body=b"\0" * 8, headers={"Content-Range": "bytes 0-7/²"})

    async def limited(request: web.Request) -> web.Response:
        served.append("limited")
        if len(served) == 1:
            return web.Response(status=429, headers={"RateLimit": "limit=100; t=²"})
        return web.json_response({"ok": True})

    app = web.Application()
    for path in BODIES:
        app.router.add_get(path, body)
    app.router.add_get("/ranged", ranged)
    app.router.add_get("/limited", limited)
    srv = TestServer(app, host="127.0.0.1", port=0)
    await srv.start_server()
    yield srv, served
    await srv.close()


@pytest.mark.parametrize("path", sorted(BODIES))
async def test_json_past_the_decoders_limits_is_rejected(server, path) -> None:
    srv, _ = server
    async with aiohttp.ClientSession() as session:
        with pytest.raises(SourceRejected, match="the answer is not JSON"):
            await fast_client(session).get_json(srv.make_url(path))


async def test_a_content_range_total_in_other_digits_is_no_size(server) -> None:
    srv, _ = server
    async with aiohttp.ClientSession() as session:
        fetched = await fast_client(session).get_range(srv.make_url("/ranged"), start=0, length=8)
    assert fetched.data == b"\0" * 8
    assert fetched.total_size is None


async def test_a_rate_limit_in_other_digits_is_an_ordinary_retry(server) -> None:
    srv, served = server
    sleep = SleepLog()
    async with aiohttp.ClientSession() as session:
        reply = await fast_client(session, sleep).get_json(srv.make_url("/limited"))
    assert reply.data == {"ok": True}
    assert served == ["limited", "limited"]
    assert len(sleep.delays) == 1


def test_retry_after_reads_only_ascii_digits() -> None:
    assert retry_after_s({"RateLimit": "t=²"}, 0) is None
    assert retry_after_s({"RateLimit": "t=١٢"}, 0) is None
    assert retry_after_s({"RateLimit": "t=12"}, 0) == 12.0
