"""Images from the blob store: reference images and evidence sheets, whole or as thumbnails.

Moderators see any blob; an artist sees only their own reference images and the evidence
of findings about them. Only PNG, JPEG and WebP are served inline; anything else is a
download (and every response says ``nosniff``).
"""

from __future__ import annotations

import asyncio
import io

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from detectors.errors import StorageError
from monitor.web.auth import requires
from monitor.web.context import request_user, web_context
from monitor.web.rendering import error_page

THUMB_PX = 320
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))
CACHE = {"Cache-Control": "private, max-age=86400"}


def sniff(data: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def thumbnail(data: bytes) -> bytes:
    """A PNG at most ``THUMB_PX`` on its longer side (``ValueError`` if not an image)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.thumbnail((THUMB_PX, THUMB_PX))
            out = io.BytesIO()
            img.convert("RGBA" if img.mode in ("RGBA", "LA", "P") else "RGB").save(out, "PNG")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValueError("not an image") from exc
    return out.getvalue()


async def _read_allowed(request: web.Request) -> bytes | None:
    user = request_user(request)
    assert user is not None
    sha = request.match_info["sha256"]
    ctx = web_context(request)
    if user.role == "artist":
        owner = user.artist_id
        if owner is None or not await asyncio.to_thread(
            ctx.queries.blob_belongs_to_artist, owner, sha
        ):
            return None
    try:
        return await asyncio.to_thread(ctx.blobs.read, sha)
    except StorageError:
        return None


@requires("moderator", "artist")
async def blob(request: web.Request) -> web.StreamResponse:
    data = await _read_allowed(request)
    if data is None:
        return await error_page(request, 404, "There is no such image.")
    mime = sniff(data)
    if mime is None:
        headers = {**CACHE, "Content-Disposition": "attachment"}
        return web.Response(body=data, content_type="application/octet-stream", headers=headers)
    return web.Response(body=data, content_type=mime, headers=CACHE)


@requires("moderator", "artist")
async def blob_thumbnail(request: web.Request) -> web.StreamResponse:
    data = await _read_allowed(request)
    if data is None or sniff(data) is None:
        return await error_page(request, 404, "There is no such image.")
    try:
        small = await asyncio.to_thread(thumbnail, data)
    except ValueError:
        return await error_page(request, 404, "There is no such image.")
    return web.Response(body=small, content_type="image/png", headers=CACHE)


def add_blob_routes(app: web.Application) -> None:
    app.router.add_get(r"/blobs/{sha256:[0-9a-f]{64}}", blob)
    app.router.add_get(r"/blobs/{sha256:[0-9a-f]{64}}/thumb", blob_thumbnail)
