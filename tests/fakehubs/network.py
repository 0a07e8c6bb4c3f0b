"""How the fake hubs deliver their answers: the way a real network does.

A real hub's answer reaches the client in many reads: a 200 KB JSON page arrives as a run of
TCP segments, and a CDN compresses JSON when the client accepts gzip. Every fake app runs
this middleware, so by default each body is written in ``chunk_bytes`` pieces with a pause
between them (a client that takes one ``read(n)`` for the whole body sees only the first
piece), and JSON goes out gzip-encoded to a client that asks for it. A request marked by the
``cut`` fault (`tests.fakehubs.faults`) gets half its body, then a reset connection.
"""

from __future__ import annotations

import asyncio
import gzip
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler

CUT_KEY = web.RequestKey("cut_mid_body", bool)
_DROPPED_HEADERS = frozenset({"content-length", "content-type", "content-encoding"})


@dataclass
class Network:
    """Delivery settings for one fake app. ``bytes_sent`` counts body bytes written (as
    sent: compressed when gzip), ``sent_by_path`` the same by request path."""

    chunk_bytes: int = 8 * 1024
    pause_s: float = 0.0005
    gzip_json: bool = True
    bytes_sent: int = 0
    sent_by_path: Counter[str] = field(default_factory=Counter)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        resp = await handler(request)
        if not isinstance(resp, web.Response) or not isinstance(resp.body, bytes | bytearray):
            return resp
        return await self.deliver(request, resp, cut=request.get(CUT_KEY, False))

    async def deliver(
        self, request: web.Request, resp: web.Response, *, cut: bool = False
    ) -> web.StreamResponse:
        body = bytes(resp.body) if isinstance(resp.body, bytes | bytearray) else b""
        stream = web.StreamResponse(status=resp.status, reason=resp.reason)
        for name, value in resp.headers.items():
            if name.lower() not in _DROPPED_HEADERS:
                stream.headers.add(name, value)
        stream.content_type = resp.content_type
        if resp.charset:
            stream.charset = resp.charset
        if self._compress(request, resp):
            body = gzip.compress(body, compresslevel=5, mtime=0)
            stream.headers["Content-Encoding"] = "gzip"
        stream.content_length = len(body)
        await stream.prepare(request)
        stop = len(body) // 2 if cut else len(body)
        for start in range(0, stop, self.chunk_bytes):
            piece = body[start : min(stop, start + self.chunk_bytes)]
            try:
                await stream.write(piece)
            except ConnectionError:
                return stream  # the client went away (it read what it needed)
            self.bytes_sent += len(piece)
            self.sent_by_path[request.path] += len(piece)
            await asyncio.sleep(self.pause_s)
        if cut:
            assert request.transport is not None
            request.transport.abort()
            return stream
        await stream.write_eof()
        return stream

    def _compress(self, request: web.Request, resp: web.Response) -> bool:
        accepts = "gzip" in request.headers.get("Accept-Encoding", "").lower()
        return self.gzip_json and accepts and resp.content_type == "application/json"
