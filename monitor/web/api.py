"""The JSON API under /api/v1 for integrations: findings, uploads, artists, decisions.

It takes ``Authorization: Bearer <token>`` (tokens from ``stylewatch user token``) and no
cookies, so it needs no CSRF token. Moderators and admins may use it; errors are
``{"error": "…"}`` with 400, 401, 403, 404 or 409.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any, cast, get_args

from aiohttp import web

from detectors.errors import InputError
from monitor.interface.ids import ROUTE_ID, parse_id
from monitor.interface.json_views import upload_json
from monitor.web.auth import Handler
from monitor.web.context import USER_KEY, request_user, web_context
from monitor.web.openapi import openapi_document
from monitor.web.passwords import token_sha256
from monitor.web.queue_pages import parse_decision
from storage.records import ArtistRecord, FindingRecord, FindingState
from storage.triage import FindingClaimed, FindingNotFound, TriageEventRecord
from storage.web_queries import FindingView

API_ROLES = frozenset({"admin", "moderator"})
DEFAULT_LIMIT = 100
MAX_BODY_BYTES = 64 * 1024


class BodyTooLarge(InputError):
    """A request body over :data:`MAX_BODY_BYTES`."""


async def read_body(request: web.Request, cap: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, however many reads it arrives in (``content.read(n)`` returns what
    has arrived so far, not n bytes), refused past ``cap``."""
    parts: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge(f"the body is over {cap:,} bytes")
        parts.append(chunk)
    return b"".join(parts)


def api_error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def token_auth(handler: Handler) -> Handler:
    """An API handler for bearer tokens of moderators and admins."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return api_error(401, "send Authorization: Bearer <token>", **_challenge())
        users = web_context(request).users
        user = await asyncio.to_thread(users.user_for_token, token_sha256(token.strip()))
        if user is None:
            return api_error(401, "unknown API token", **_challenge())
        if user.role not in API_ROLES:
            return api_error(403, f"the {user.role} role cannot use the API")
        request[USER_KEY] = user
        return await handler(request)

    wrapper.required_roles = API_ROLES  # type: ignore[attr-defined]  # read by the tests
    return wrapper


def _challenge() -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="stylewatch"'}


def finding_json(f: FindingRecord) -> dict[str, Any]:
    return {
        "id": f.id,
        "source": f.source,
        "upload_id": f.upload_id,
        "upload": f.upload_pk,
        "name": f.name,
        "artist_id": f.artist_id,
        "artist": f.artist,
        "score": round(f.score, 4),
        "stage": f.stage,
        "state": f.state,
        "backscan": f.backscan,
        "evidence": [{"source": e.source, "text": e.text} for e in f.evidence],
        "created_at": f.created_at.isoformat(),
        "updated_at": f.updated_at.isoformat(),
        "taken_down_at": f.taken_down_at.isoformat() if f.taken_down_at else None,
    }


def finding_detail_json(view: FindingView, events: list[TriageEventRecord]) -> dict[str, Any]:
    body = finding_json(view.finding)
    body["evidence"] = [
        {"source": e.source, "text": e.text, "blob_sha256": e.blob_sha256} for e in view.evidence
    ]
    body["upload"] = {"id": view.upload.id, **upload_json(view.upload)}
    body["events"] = [
        {"action": e.action, "reason": e.reason, "by": e.user_email, "at": e.created_at.isoformat()}
        for e in events
    ]
    return body


def artist_json(a: ArtistRecord) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "aliases": list(a.aliases),
        "created_at": a.created_at.isoformat(),
    }


def _page(request: web.Request) -> tuple[int, int]:
    limit = parse_id(request.query.get("limit", str(DEFAULT_LIMIT)))
    offset = 0 if "offset" not in request.query else parse_id(request.query["offset"])
    if limit is None or offset is None:
        raise web.HTTPBadRequest(
            text='{"error": "limit and offset are whole numbers (0-9, at most 18 digits)"}',
            content_type="application/json",
        )
    return max(1, min(limit, 500)), offset


@token_auth
async def list_findings(request: web.Request) -> web.StreamResponse:
    state = request.query.get("state")
    if state is not None and state not in get_args(FindingState):
        return api_error(400, f"unknown state {state!r}")
    limit, offset = _page(request)
    queries = web_context(request).queries
    rows = await asyncio.to_thread(
        queries.findings, cast(FindingState | None, state), None, limit, offset
    )
    return web.json_response({"items": [finding_json(f) for f in rows]})


@token_auth
async def get_finding(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    view = await asyncio.to_thread(ctx.queries.finding, int(request.match_info["id"]))
    if view is None:
        return api_error(404, "no such finding")
    events = await asyncio.to_thread(ctx.triage.events, view.finding.id)
    return web.json_response(finding_detail_json(view, events))


@token_auth
async def post_decision(request: web.Request) -> web.StreamResponse:
    user = request_user(request)
    assert user is not None
    fid = int(request.match_info["id"])
    try:
        body = json.loads(await read_body(request))
        if not isinstance(body, dict):
            raise InputError("send a JSON object")
        decision = parse_decision(body.get("decision"))
        reason = str(body.get("reason") or "")
        await asyncio.to_thread(web_context(request).triage.decide, fid, user.id, decision, reason)
    except FindingNotFound:
        return api_error(404, "no such finding")
    except FindingClaimed as exc:
        return api_error(409, str(exc))
    except BodyTooLarge as exc:
        return api_error(413, str(exc))
    except (InputError, ValueError) as exc:
        return api_error(400, str(exc) if isinstance(exc, InputError) else "send valid JSON")
    return await get_finding(request)


@token_auth
async def list_uploads(request: web.Request) -> web.StreamResponse:
    limit, offset = _page(request)
    queries = web_context(request).queries
    rows = await asyncio.to_thread(queries.uploads, request.query.get("source"), limit, offset)
    return web.json_response({"items": [{"id": u.id, **upload_json(u)} for u in rows]})


@token_auth
async def get_upload(request: web.Request) -> web.StreamResponse:
    upload = await asyncio.to_thread(
        web_context(request).queries.upload, int(request.match_info["id"])
    )
    if upload is None:
        return api_error(404, "no such upload")
    return web.json_response({"id": upload.id, **upload_json(upload)})


@token_auth
async def list_artists(request: web.Request) -> web.StreamResponse:
    rows = await asyncio.to_thread(web_context(request).store.list_artists)
    return web.json_response({"items": [artist_json(a) for a in rows]})


@token_auth
async def get_artist(request: web.Request) -> web.StreamResponse:
    artist = await asyncio.to_thread(
        web_context(request).queries.artist, int(request.match_info["id"])
    )
    if artist is None:
        return api_error(404, "no such artist")
    return web.json_response(artist_json(artist))


async def openapi(request: web.Request) -> web.StreamResponse:
    """Public: tools fetch the description anonymously; the data it describes needs a token
    (the document's ``security`` says so)."""
    return web.json_response(openapi_document())


def add_api_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/api/v1/findings", list_findings)
    app.router.add_get(f"/api/v1/findings/{{id:{ROUTE_ID}}}", get_finding)
    app.router.add_post(f"/api/v1/findings/{{id:{ROUTE_ID}}}/decision", post_decision)
    app.router.add_get("/api/v1/uploads", list_uploads)
    app.router.add_get(f"/api/v1/uploads/{{id:{ROUTE_ID}}}", get_upload)
    app.router.add_get("/api/v1/artists", list_artists)
    app.router.add_get(f"/api/v1/artists/{{id:{ROUTE_ID}}}", get_artist)
