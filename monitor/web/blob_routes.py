"""Images from the blob store: reference images and evidence sheets, whole or as thumbnails.

Moderators see any blob; an artist sees only their own reference images and the evidence
of findings about them. A blob is streamed from the store in chunks, and one ``Range`` is
honoured (ranged reads on the store: a GET with Range on S3), after the access check.
Only PNG, JPEG and WebP are served inline; anything else is a download (and every response
says ``nosniff``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Literal

from aiohttp import web

from detectors.errors import StorageError
from monitor.artists.references import gate_image
from monitor.web.auth import requires
from monitor.web.context import request_user, web_context
from monitor.web.executors import IMAGE_POOL, run_in
from monitor.web.rendering import error_page
from storage.blobs import CHUNK_BYTES, BlobReader, BlobStore

_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))
CACHE = {"Cache-Control": "private, max-age=86400"}
_RANGES = {"Accept-Ranges": "bytes"}
_RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")
_MAGIC_BYTES = 16
log = logging.getLogger(__name__)


def sniff(data: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def thumbnail(data: bytes) -> bytes:
    """A PNG at most ``THUMB_PX`` on its longer side, through the image gate's caps
    (``ValueError`` if not an image the gate takes)."""
    return gate_image(data).thumbnail


async def _allowed(request: web.Request) -> str | None:
    """The requested blob's key when this user may see it."""
    user = request_user(request)
    assert user is not None
    sha = request.match_info["sha256"]
    if user.role == "artist":
        owner = user.artist_id
        if owner is None or not await asyncio.to_thread(
            web_context(request).queries.blob_belongs_to_artist, owner, sha
        ):
            return None
    return sha


def byte_range(header: str | None, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """One ``Range: bytes=…`` as (start, length); None to send it all (no header, several
    ranges or a malformed one, as RFC 9110 allows); "unsatisfiable" past the end."""
    found = _RANGE.fullmatch(header.strip()) if header else None
    if found is None:
        return None
    first, last = found.group(1), found.group(2)
    if not first:  # a suffix: the last N bytes
        if not last or int(last) == 0:
            return "unsatisfiable"
        length = min(int(last), size)
        return (size - length, length) if length else "unsatisfiable"
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return "unsatisfiable"
    return start, end - start + 1


@requires("moderator", "artist")
async def blob(request: web.Request) -> web.StreamResponse:
    """The blob, streamed from the store in chunks (whole, or the one range asked for)."""
    sha = await _allowed(request)
    if sha is None:
        return await error_page(request, 404, "There is no such image.")
    blobs = web_context(request).blobs
    try:
        with await open_blob(blobs, sha, length=_MAGIC_BYTES) as head:
            magic, size = await asyncio.to_thread(head.read), head.size
    except StorageError:
        return await error_page(request, 404, "There is no such image.")
    span = byte_range(request.headers.get("Range"), size)
    if span == "unsatisfiable":
        return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
    start, length = span if span is not None else (0, size)
    response = web.StreamResponse(status=206 if span else 200, headers=_headers(magic))
    response.content_length = length
    if span is not None:
        response.headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
    return await _stream(request, response, blobs, sha, start, length)


async def open_blob(
    blobs: BlobStore, sha: str, *, start: int = 0, length: int | None = None
) -> BlobReader:
    """``blobs.open`` on a worker thread. A handler cancelled while the open runs (shutdown,
    a client gone) does not stop the thread: the reader it then returns is closed as soon as
    it exists, instead of being dropped with its file or connection open."""
    opening = asyncio.ensure_future(asyncio.to_thread(blobs.open, sha, start=start, length=length))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_unclaimed)
        raise


def _close_unclaimed(opening: asyncio.Future[BlobReader]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


def _headers(magic: bytes) -> dict[str, str]:
    mime = sniff(magic)
    if mime is None:
        return {
            **CACHE,
            **_RANGES,
            "Content-Type": "application/octet-stream",
            "Content-Disposition": "attachment",
        }
    return {**CACHE, **_RANGES, "Content-Type": mime}


async def _stream(
    request: web.Request,
    response: web.StreamResponse,
    blobs: BlobStore,
    sha: str,
    start: int,
    length: int,
) -> web.StreamResponse:
    try:
        reader = await open_blob(blobs, sha, start=start, length=length)
    except StorageError:
        return await error_page(request, 404, "There is no such image.")
    try:
        await response.prepare(request)
        while chunk := await asyncio.to_thread(reader.read, CHUNK_BYTES):
            await response.write(chunk)
    except StorageError as exc:  # the store failed mid-body: the client sees a cut transfer
        log.warning("blob %s: the store failed while serving it: %s", sha, exc)
        if request.transport is not None:
            request.transport.close()
        return response
    finally:
        # Closed here, not on a worker thread: a handler cancelled at shutdown (or by a
        # client gone) must not leave the close queued on an executor that may never run it.
        reader.close()
    await response.write_eof()
    return response


@requires("moderator", "artist")
async def blob_thumbnail(request: web.Request) -> web.StreamResponse:
    """The thumbnail made when the image was taken; one made now, on the bounded image
    pool and through the gate's caps, for an image taken before thumbnails were kept."""
    sha = await _allowed(request)
    ctx = web_context(request)
    kept = None if sha is None else await asyncio.to_thread(ctx.queries.thumbnail_of, sha)
    try:
        data = None if sha is None else await asyncio.to_thread(ctx.blobs.read, kept or sha)
    except StorageError:
        data = None
    if data is None or sniff(data) is None:
        return await error_page(request, 404, "There is no such image.")
    if kept is not None:
        return web.Response(body=data, content_type="image/png", headers=CACHE)
    try:
        small = await run_in(request.app, IMAGE_POOL, thumbnail, data)
    except ValueError:
        return await error_page(request, 404, "There is no such image.")
    return web.Response(body=small, content_type="image/png", headers=CACHE)


def add_blob_routes(app: web.Application) -> None:
    app.router.add_get(r"/blobs/{sha256:[0-9a-f]{64}}", blob)
    app.router.add_get(r"/blobs/{sha256:[0-9a-f]{64}}/thumb", blob_thumbnail)
