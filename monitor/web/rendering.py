"""Rendering pages: every template gets the signed-in user and the session's CSRF token."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from monitor.web.context import request_user
from monitor.web.sessions import get_session

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_CSRF_SESSION_KEY = "csrf"


def csrf_token(request: web.Request) -> str:
    """The session's CSRF token, created on first use."""
    session = get_session(request)
    token = session.get(_CSRF_SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[_CSRF_SESSION_KEY] = token
    return token


def csrf_valid(request: web.Request, given: str | None) -> bool:
    session = get_session(request)
    expected = session.get(_CSRF_SESSION_KEY)
    if not isinstance(expected, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


async def render(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    status: int = 200,
    *,
    forms: bool = True,
) -> web.Response:
    """Render a page; ``forms=False`` for a public page without forms (no session cookie)."""
    user = request_user(request)
    context = {
        **context,
        "user": user,
        "csrf_token": csrf_token(request) if forms or user is not None else "",
        "path": request.path_qs,
    }
    return aiohttp_jinja2.render_template(template, request, context, status=status)


async def error_page(request: web.Request, status: int, message: str) -> web.Response:
    return await render(request, "error.html", {"status": status, "message": message}, status)
