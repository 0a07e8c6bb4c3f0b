"""The artist portal: profile, aliases, reference images and the findings about them.

An artist user sees and edits only their own artist; dismissing a finding about them
("this is me", "I licensed this") is written to the audit log like a moderator's decision.
A new alias back-scans the recorded uploads for the artist's names, a new reference image
scores the LoRAs probed earlier against their images (`monitor.backscan.service`, in the
background); the page shows how far that got, and ``/me/backscan`` says it as JSON.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import cast, get_args

from aiohttp import web

from detectors.alias_rules import indistinct
from detectors.errors import InputError, StorageError
from monitor.artists.references import MAX_IMAGE_BYTES, gate_image, store_reference_image
from monitor.backscan.service import Backscans
from monitor.interface.ids import ROUTE_ID
from monitor.runtime import Runtime
from monitor.web.alert_pages import artist_subscriptions
from monitor.web.auth import requires
from monitor.web.context import request_user, web_context
from monitor.web.executors import IMAGE_POOL, run_in
from monitor.web.queue_pages import finding_id
from monitor.web.rendering import error_page, render
from storage.outbox import strongest_first
from storage.triage import ArtistReason, FindingDecided, FindingNotFound
from storage.users import UserRecord

MAX_ALIAS_CHARS = 200
SUBSCRIPTIONS_URL_KEY: web.AppKey[str] = web.AppKey("subscriptions_url", str)
BACKSCANS_KEY: web.AppKey[Backscans] = web.AppKey("backscans", Backscans)


def user_email(request: web.Request) -> str:
    user = request_user(request)
    return user.email if user is not None else ""


def _artist_id(user: UserRecord | None) -> int | None:
    return None if user is None else user.artist_id


@requires("artist")
async def portal_page(request: web.Request) -> web.StreamResponse:
    artist_id = _artist_id(request_user(request))
    if artist_id is None:
        return await error_page(request, 404, "Your account is not linked to an artist.")
    ctx = web_context(request)
    artist = await asyncio.to_thread(ctx.queries.artist, artist_id)
    if artist is None:
        return await error_page(request, 404, "Your artist profile no longer exists.")
    context = {
        "artist": artist,
        "images": await asyncio.to_thread(ctx.queries.reference_images, artist_id),
        "findings": [  # each led by its strongest line, as the alert mails put it
            replace(f, evidence=strongest_first(f))
            for f in await asyncio.to_thread(ctx.queries.findings, None, artist_id)
        ],
        "subscriptions_url": request.app.get(SUBSCRIPTIONS_URL_KEY),
        "subscriptions": await artist_subscriptions(request.app, artist_id),
        "user_email": user_email(request),
        "max_image_mib": MAX_IMAGE_BYTES // 2**20,
        "message": request.query.get("message"),
        "backscan": request.app[BACKSCANS_KEY].progress(artist_id),
    }
    return await render(request, "portal.html", context)


@requires("artist")
async def backscan_status(request: web.Request) -> web.StreamResponse:
    """The artist's latest back-scan as ``{"running": bool, "text": "…"}`` (the page polls it)."""
    artist_id = _artist_id(request_user(request))
    progress = None if artist_id is None else request.app[BACKSCANS_KEY].progress(artist_id)
    if progress is None:
        return web.json_response({"running": False, "text": ""})
    return web.json_response({"running": progress.running, "text": progress.text()})


@requires("artist")
async def add_alias(request: web.Request) -> web.StreamResponse:
    artist_id = _artist_id(request_user(request))
    form = await request.post()
    alias = str(form.get("alias", "")).strip()[:MAX_ALIAS_CHARS]
    if artist_id is None:
        return await error_page(request, 404, "Your account is not linked to an artist.")
    ctx = web_context(request)
    why = indistinct(alias)
    if why is not None:
        return await error_page(request, 400, f"Alias not added: {why}.")
    try:
        before = await asyncio.to_thread(ctx.queries.artist, artist_id)
        after = await asyncio.to_thread(ctx.store.add_alias, artist_id, alias)
    except InputError as exc:
        return await error_page(request, 400, f"Alias not added: {exc}.")
    if before is None or set(after.aliases) != set(before.aliases):
        request.app[BACKSCANS_KEY].start(artist_id, names=True)
    raise web.HTTPSeeOther("/me#aliases")


@requires("artist")
async def remove_alias(request: web.Request) -> web.StreamResponse:
    artist_id = _artist_id(request_user(request))
    form = await request.post()
    if artist_id is not None:
        alias = str(form.get("alias", ""))
        await asyncio.to_thread(web_context(request).queries.remove_alias, artist_id, alias)
    raise web.HTTPSeeOther("/me#aliases")


@requires("artist")
async def add_image(request: web.Request) -> web.StreamResponse:
    artist_id = _artist_id(request_user(request))
    form = await request.post()
    upload = form.get("image")
    if artist_id is None or not isinstance(upload, web.FileField):
        return await error_page(request, 400, "Choose an image file to upload.")
    data = await asyncio.to_thread(upload.file.read, MAX_IMAGE_BYTES + 1)
    try:
        if len(data) > MAX_IMAGE_BYTES:
            raise ValueError(f"larger than {MAX_IMAGE_BYTES // 2**20} MiB")
        image = await run_in(request.app, IMAGE_POOL, gate_image, data)
    except ValueError as exc:
        return await error_page(request, 400, f"Image refused: {exc}.")
    ctx = web_context(request)
    try:
        added = await asyncio.to_thread(
            store_reference_image, ctx.blobs, ctx.store, artist_id, data, image
        )
    except StorageError as exc:
        return await error_page(request, 500, f"Image not stored: {exc}")
    if added:
        request.app[BACKSCANS_KEY].start(artist_id, style=True)
    raise web.HTTPSeeOther("/me#images")


@requires("artist")
async def remove_image(request: web.Request) -> web.StreamResponse:
    artist_id = _artist_id(request_user(request))
    form = await request.post()
    if artist_id is not None:
        sha = str(form.get("sha256", ""))
        await asyncio.to_thread(web_context(request).queries.remove_reference_image, artist_id, sha)
    raise web.HTTPSeeOther("/me#images")


@requires("artist")
async def dismiss_finding(request: web.Request) -> web.StreamResponse:
    user = request_user(request)
    form = await request.post()
    why = form.get("why")
    if user is None or user.artist_id is None or why not in get_args(ArtistReason):
        return await error_page(request, 400, "Choose “this is me” or “I licensed this”.")
    triage = web_context(request).triage
    try:
        await asyncio.to_thread(
            triage.artist_dismiss,
            finding_id(request),
            user.artist_id,
            user.id,
            cast(ArtistReason, why),
            str(form.get("note", "")),
        )
    except FindingNotFound:
        return await error_page(request, 404, "There is no such finding about you.")
    except FindingDecided:
        message = "A moderator has already decided this finding, so it can no longer be dismissed."
        return await error_page(request, 409, message)
    raise web.HTTPSeeOther("/me#findings")


def add_portal_routes(app: web.Application, runtime: Runtime) -> None:
    backscans = app[BACKSCANS_KEY] = Backscans(runtime)

    async def finish_backscans(app: web.Application) -> None:
        await backscans.close()

    app.on_cleanup.append(finish_backscans)
    app.router.add_get("/me", portal_page)
    app.router.add_get("/me/backscan", backscan_status)
    app.router.add_post("/me/aliases", add_alias)
    app.router.add_post("/me/aliases/remove", remove_alias)
    app.router.add_post("/me/images", add_image)
    app.router.add_post("/me/images/remove", remove_image)
    app.router.add_post(f"/me/findings/{{finding_id:{ROUTE_ID}}}/dismiss", dismiss_finding)
