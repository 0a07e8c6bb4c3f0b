"""/login and /logout: password sign-in with rate limits (`monitor.web.login_limits`),
sessions on the server named by an encrypted cookie."""

from __future__ import annotations

import asyncio
import logging
import secrets

from aiohttp import web
from yarl import URL

from monitor.web.auth import SESSION_ID, session_sha256
from monitor.web.context import request_user, web_context
from monitor.web.executors import PASSWORD_CHECKS, PASSWORD_POOL, run_in
from monitor.web.rendering import render
from monitor.web.sessions import SESSION_MAX_AGE_S, get_session
from storage.users import UserRecord

log = logging.getLogger(__name__)

MAX_FIELD_CHARS = 1024
BUSY_RETRY_S = 5


def landing_page(user: UserRecord) -> str:
    return "/me" if user.role == "artist" else "/queue"


def safe_next(target: str | None) -> str | None:
    """A local path to go to after sign-in, or None (never another site).

    Checked on what a browser would follow: browsers drop tabs and line breaks anywhere in a
    URL and read a backslash as ``/``, so ``/<tab>/evil.example`` is ``//evil.example``. Only
    printable ASCII without spaces or backslashes is taken, and it must parse as a bare path
    (the app's own paths are all ASCII)."""
    if not target or len(target) > MAX_FIELD_CHARS or not target.startswith("/"):
        return None
    if not target.isascii() or any(ch <= " " or ch in "\x7f\\" for ch in target):
        return None
    url = URL(target)
    if url.is_absolute() or url.scheme or url.path.startswith("//") or target.startswith("//"):
        return None
    return target


async def login_form(request: web.Request) -> web.StreamResponse:
    user = request_user(request)
    if user is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next")) or landing_page(user))
    return await render(request, "login.html", {"next": request.query.get("next", "")})


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    email = str(form.get("email", ""))[:MAX_FIELD_CHARS].strip()
    password = str(form.get("password", ""))[:MAX_FIELD_CHARS]
    target = safe_next(str(form.get("next", "")))
    ctx = web_context(request)
    address = request.remote or "unknown"
    wait = ctx.limiter.retry_after(address, email)
    if wait is None and request.app[PASSWORD_CHECKS].full():
        log.warning("web.login.busy", extra={"remote": address})
        return await _busy(request, email, target)
    if wait is None:
        ctx.limiter.attempt(address)
        user, wait = await _check_password(request, email, password)
    if wait is not None:
        log.warning("web.login.limited", extra={"remote": address})
        return await _limited(request, email, target, wait)
    if user is None:
        return await _again(request, email, target, "Wrong email or password.", 401)
    ctx.limiter.succeeded(address, email)
    session = get_session(request)
    session.invalidate()  # a fresh session (and CSRF token) per sign-in
    sid = secrets.token_urlsafe(32)
    await asyncio.to_thread(
        ctx.users.start_session, user.id, session_sha256(sid), SESSION_MAX_AGE_S
    )
    session[SESSION_ID] = sid
    log.info("web.login", extra={"user_id": user.id})
    raise web.HTTPSeeOther(target or landing_page(user))


async def logout(request: web.Request) -> web.StreamResponse:
    session = get_session(request)
    sid = session.get(SESSION_ID)
    if isinstance(sid, str):  # ended on the server: a copy of the cookie opens nothing
        await asyncio.to_thread(web_context(request).users.end_session, session_sha256(sid))
    session.invalidate()
    raise web.HTTPSeeOther("/login")


async def _check_password(
    request: web.Request, email: str, password: str
) -> tuple[UserRecord | None, int | None]:
    """(the user when the password is right, seconds to wait when the account is locked).

    The hash is checked on the password pool, apart from the database's threads; the
    check is counted in the pool's backlog from here, before the first await."""
    with request.app[PASSWORD_CHECKS]:
        return await _check_counted(request, email, password)


async def _check_counted(
    request: web.Request, email: str, password: str
) -> tuple[UserRecord | None, int | None]:
    ctx = web_context(request)
    found = await asyncio.to_thread(ctx.users.credentials, email) if email else None
    if found is not None:
        wait = ctx.limiter.attempt_account(email)
        if wait is not None:
            return None, wait
    stored_hash = found[1] if found else None
    ok = await run_in(request.app, PASSWORD_POOL, ctx.passwords.verify, stored_hash, password)
    return (found[0] if ok and found else None), None


async def _limited(request: web.Request, email: str, target: str | None, wait: int) -> web.Response:
    minutes = max(1, round(wait / 60))
    message = f"Too many failed sign-ins. Try again in {minutes} minute{'s' * (minutes > 1)}."
    page = await _again(request, email, target, message, 429)
    page.headers["Retry-After"] = str(wait)
    return page


async def _busy(request: web.Request, email: str, target: str | None) -> web.Response:
    message = "Sign-in is busy right now. Try again in a few seconds."
    page = await _again(request, email, target, message, 503)
    page.headers["Retry-After"] = str(BUSY_RETRY_S)
    return page


async def _again(
    request: web.Request, email: str, target: str | None, error: str, status: int
) -> web.Response:
    context = {"email": email, "next": target or "", "error": error}
    return await render(request, "login.html", context, status)
