"""Who is asking: sessions, roles, CSRF and the security headers.

Pages need a signed-in user of the right role: anonymous visitors are sent to /login,
users of another role get 403. Every state-changing request to a page route carries the
session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``); the JSON API
takes bearer tokens only (no cookies), so it needs none. Handlers marked `csrf_exempt`
(the one-click unsubscribe that mail clients POST) skip the check.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web

from monitor.web.context import USER_KEY, request_user, web_context
from monitor.web.rendering import CSRF_FIELD, CSRF_HEADER, csrf_valid, error_page
from monitor.web.sessions import get_session
from storage.records import Role

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)

SESSION_ID = "sid"  # the server-side session (storage.models.WebSession) the cookie opens
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/api/"
# Reached without a page, so without a token: the API (bearer tokens, no cookies) and
# RFC 8058 one-click unsubscribe (`monitor.web.alert_routes`: the signed URL authenticates).
CSRF_EXEMPT_PREFIXES = (API_PREFIX, "/unsubscribe/")
CSP = (
    "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


HSTS = "max-age=31536000"


def csrf_exempt(handler: H) -> H:
    """Mark a POST handler that is reached without a page (one-click unsubscribe)."""
    handler.csrf_exempt = True  # type: ignore[attr-defined]  # a marker read by the middleware
    return handler


def requires(*roles: Role) -> Callable[[Handler], Handler]:
    """A page handler for signed-in users of these roles (admin is always allowed)."""
    allowed = {*roles, "admin"}

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            user = request_user(request)
            if user is None:
                raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='/')}")
            if user.role not in allowed:
                return await error_page(request, 403, "Your account cannot open this page.")
            return await handler(request)

        wrapper.required_roles = frozenset(allowed)  # type: ignore[attr-defined]  # for tests
        return wrapper

    return decorate


def session_sha256(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


@web.middleware
async def session_user_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Load the signed-in user (fresh from the database, so role changes apply at once)."""
    if not request.path.startswith(API_PREFIX) and request.cookies:
        session = get_session(request)
        sid = session.get(SESSION_ID)
        if isinstance(sid, str):
            users = web_context(request).users
            user = await asyncio.to_thread(users.session_user, session_sha256(sid))
            if user is None:  # signed out, expired, or the user is gone
                session.invalidate()
            else:
                request[USER_KEY] = user
    return await handler(request)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in UNSAFE_METHODS or request.path.startswith(CSRF_EXEMPT_PREFIXES):
        return await handler(request)
    route_handler: Any = request.match_info.handler
    if getattr(route_handler, "csrf_exempt", False):
        return await handler(request)
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        field = (await request.post()).get(CSRF_FIELD)
        given = field if isinstance(field, str) else None
    if not csrf_valid(request, given):
        return await error_page(
            request, 403, "This form has expired or did not come from stylewatch. Reload the page."
        )
    return await handler(request)


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    https = web_context(request).secure_cookies  # served at an https:// base_url
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _secure(exc, https)
        raise
    _secure(response, https)
    return response


def _secure(response: web.StreamResponse, https: bool) -> None:
    if https:  # browsers that have seen the site once never try plain http again
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if response.content_type == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
