"""A fake presigned-URL storage host: answers 400 to any Authorization header (as R2/B2
do), records every request it received, honours Range unless told to ignore it (some CDNs
and mirrors answer 200 with the whole file), and writes bodies in small pieces with pauses
(`tests.fakehubs.network`). ``bytes_sent`` counts every body byte it wrote."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from tests.fakehubs.network import CUT_KEY, Network

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Blob:
    """A file: its first bytes (the header) followed by zeros up to ``size``."""

    prefix: bytes
    size: int

    @classmethod
    def whole(cls, data: bytes) -> Blob:
        return cls(data, len(data))

    @property
    def sha256(self) -> str:
        """The real SHA-256 of a whole blob; of its prefix and size for a virtual one (the
        zeros of a multi-GB checkpoint are never materialised)."""
        import hashlib

        if len(self.prefix) == self.size:
            return hashlib.sha256(self.prefix).hexdigest()
        return hashlib.sha256(self.prefix + str(self.size).encode()).hexdigest()

    def read(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        head = self.prefix[start:end]
        return head + b"\0" * max(0, end - max(start, len(self.prefix)))


@dataclass(frozen=True)
class Received:
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]

    @classmethod
    def of(cls, request: web.Request) -> Received:
        return cls(request.path, dict(request.headers), dict(request.query))


def recording(received: list[Received]) -> Middleware:
    """A middleware that appends every request the app gets to ``received``."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        received.append(Received.of(request))
        return await handler(request)

    return record


@dataclass
class FakeStorage:
    blobs: dict[str, Blob] = field(default_factory=dict)
    ignore_range: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    origin: str = ""
    network: Network = field(default_factory=Network)
    streamed_bytes: int = 0  # what Range-ignoring answers wrote before the client hung up
    cut: set[str] = field(default_factory=set)  # keys whose next answer resets mid-body

    @property
    def bytes_sent(self) -> int:
        return self.network.bytes_sent + self.streamed_bytes

    def put(self, key: str, blob: Blob) -> str:
        self.blobs[key] = blob
        return key

    def url_for(self, key: str) -> str:
        signature = secrets.token_hex(8)
        return f"{self.origin}/obj/{key}?X-Amz-Expires=86400&X-Amz-Signature={signature}"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.network.middleware])
        app.router.add_get("/obj/{key}", self._get)
        return app

    async def _get(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        self.received.append(Received.of(request))
        if "Authorization" in request.headers:
            return web.Response(status=400, text="<Error>Only one auth mechanism allowed</Error>")
        blob = self.blobs.get(key)
        if blob is None:
            return web.Response(status=404)
        wanted = _range(request.headers.get("Range", ""), blob.size)
        cut = key in self.cut
        self.cut.discard(key)
        if wanted is None or key in self.ignore_range:
            return await self._stream(request, blob, cut=cut)
        request[CUT_KEY] = cut  # tests.fakehubs.network: half the body, then a reset
        start, end = wanted
        if start >= blob.size:
            return web.Response(status=416, headers={"Content-Range": f"bytes */{blob.size}"})
        body = blob.read(start, end + 1)
        headers = {
            "Content-Range": f"bytes {start}-{start + len(body) - 1}/{blob.size}",
            "Accept-Ranges": "bytes",
        }
        return web.Response(
            status=206, body=body, headers=headers, content_type="application/octet-stream"
        )

    async def _stream(
        self, request: web.Request, blob: Blob, *, cut: bool = False
    ) -> web.StreamResponse:
        """The whole file, as a CDN that ignores Range sends it: piece by piece until the
        client hangs up (``cut``: the connection resets half way)."""
        resp = web.StreamResponse(status=200, headers={"Content-Length": str(blob.size)})
        resp.content_type = "application/octet-stream"
        await resp.prepare(request)
        step = self.network.chunk_bytes
        try:
            for start in range(0, blob.size, step):
                if cut and start >= blob.size // 2:
                    assert request.transport is not None
                    request.transport.abort()
                    return resp
                piece = blob.read(start, start + step)
                await resp.write(piece)
                self.streamed_bytes += len(piece)
                await asyncio.sleep(self.network.pause_s)
        except (ConnectionResetError, ConnectionError):
            return resp  # the client read what it needed and closed: expected
        await resp.write_eof()
        return resp


def _range(header: str, size: int) -> tuple[int, int] | None:
    if not header.startswith("bytes="):
        return None
    first, _, last = header[6:].partition("-")
    if not first.isdigit():
        return None
    end = int(last) if last.isdigit() else size - 1
    return int(first), min(end, size - 1)
