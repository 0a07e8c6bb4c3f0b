"""Forgotten passwords: a reset link by email, one hour, one use.

``/login/forgot`` takes an address and always answers the same sentence, whether or not an
account uses it (the page tells no one which addresses have accounts); when one does, the
link is mailed in the background, within the same per-address and overall limits as the
portal's confirmation mails. The link signs the user id and a fingerprint of the password
hash it replaces (`alerts.links`), so it stops working once the password changes. Choosing a
new password there ends every session of that user, as ``stylewatch user password`` does.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Coroutine

from aiohttp import web

from alerts.links import Links
from detectors.errors import DeliveryError
from monitor.build import alerts as alert_service
from monitor.runtime import Runtime
from monitor.web.context import request_user, web_context
from monitor.web.executors import PASSWORD_POOL, run_in
from monitor.web.login import MAX_FIELD_CHARS
from monitor.web.mail_limits import MailLimiter
from monitor.web.rendering import render
from storage.users import UserRecord

log = logging.getLogger(__name__)

RUNTIME_KEY: web.AppKey[Runtime] = web.AppKey("password_reset_runtime", Runtime)
LIMITER_KEY: web.AppKey[MailLimiter] = web.AppKey("password_reset_limiter", MailLimiter)


class Mailing:
    """Reset mails on their way (kept referenced; cancelled when the app stops)."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, mail: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(mail)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


MAILING_KEY: web.AppKey[Mailing] = web.AppKey("password_reset_mailing", Mailing)
SENT = (
    "If an account uses {email}, we sent it a link to choose a new password. The link "
    "works for an hour. No mail after a few minutes? Look in the spam folder, or ask "
    "whoever runs this stylewatch."
)
NOT_SET_UP = (
    "Password reset by email is not set up here. Ask whoever runs this stylewatch to set "
    "a new password for you (stylewatch user password YOUR-EMAIL)."
)
EXPIRED = "This link has expired or was already used. Ask for a new one below."
CHANGED = "Your password is changed, and you are signed out everywhere. Sign in with it now."


def fingerprint(password_hash: str) -> str:
    """What a reset link knows of the password it replaces (a new password changes it)."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


def _links(request: web.Request) -> Links:
    return alert_service.build_links(request.app[RUNTIME_KEY].settings)


def reset_link(request: web.Request, user: UserRecord, password_hash: str) -> str:
    """The link that lets ``user`` replace the password whose hash is ``password_hash``."""
    return _links(request).reset(user.id, fingerprint(password_hash))


async def forgot_form(request: web.Request) -> web.StreamResponse:
    if request_user(request) is not None:
        raise web.HTTPSeeOther("/")
    return await render(request, "forgot.html", {"email": ""})


async def forgot(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    email = str(form.get("email", ""))[:MAX_FIELD_CHARS].strip()
    runtime = request.app[RUNTIME_KEY]
    if not runtime.settings.alerts.email.enabled:
        return await render(request, "forgot.html", {"email": email, "error": NOT_SET_UP}, 503)
    if not email:
        return await render(request, "forgot.html", {"email": "", "error": "Enter your email."})
    found = await asyncio.to_thread(web_context(request).users.credentials, email)
    refusal = None if found is None else request.app[LIMITER_KEY].refusal(email)
    if found is not None and refusal is None:
        user, password_hash = found
        url = reset_link(request, user, password_hash)
        request.app[MAILING_KEY].start(_mail(runtime, user, url))
    elif refusal is not None:
        log.warning("web.password_reset.limited", extra={"user_id": found and found[0].id})
    return await render(request, "forgot.html", {"email": "", "notice": SENT.format(email=email)})


async def _mail(runtime: Runtime, user: UserRecord, url: str) -> None:
    try:
        await alert_service.send_password_reset(runtime, user.id, user.email, url)
    except DeliveryError as exc:
        log.warning("web.password_reset.not_sent", extra={"user_id": user.id, "error": str(exc)})
    else:
        log.info("web.password_reset.sent", extra={"user_id": user.id})


async def _holder(request: web.Request) -> tuple[UserRecord, str] | None:
    """The user a valid, unused, unexpired link in the path is for (and their hash)."""
    read = _links(request).read_reset(request.match_info["token"][:MAX_FIELD_CHARS])
    if read is None:
        return None
    user_id, printed = read
    users = web_context(request).users
    user = await asyncio.to_thread(users.get_user, user_id)
    found = None if user is None else await asyncio.to_thread(users.credentials, user.email)
    if found is None or fingerprint(found[1]) != printed:
        return None
    return found


async def reset_form(request: web.Request) -> web.StreamResponse:
    holder = await _holder(request)
    if holder is None:
        return await render(request, "forgot.html", {"email": "", "error": EXPIRED}, 400)
    return await render(request, "reset.html", {"email": holder[0].email})


async def reset(request: web.Request) -> web.StreamResponse:
    holder = await _holder(request)
    if holder is None:
        return await render(request, "forgot.html", {"email": "", "error": EXPIRED}, 400)
    user = holder[0]
    form = await request.post()
    password = str(form.get("password", ""))[:MAX_FIELD_CHARS]
    if password != str(form.get("again", ""))[:MAX_FIELD_CHARS]:
        error = "The two passwords are not the same."
        return await render(request, "reset.html", {"email": user.email, "error": error}, 400)
    ctx = web_context(request)
    try:
        new_hash = await run_in(request.app, PASSWORD_POOL, ctx.passwords.hash, password)
    except ValueError as exc:
        error = f"Not changed: {exc}."
        return await render(request, "reset.html", {"email": user.email, "error": error}, 400)
    await asyncio.to_thread(ctx.users.change_password, user.email, new_hash)
    log.info("web.password_reset.done", extra={"user_id": user.id})
    return await render(request, "login.html", {"next": "", "email": user.email, "notice": CHANGED})


async def _cancel_mails(app: web.Application) -> None:
    tasks = list(app[MAILING_KEY].tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def add_password_reset_routes(app: web.Application, runtime: Runtime) -> None:
    app[RUNTIME_KEY] = runtime
    app[LIMITER_KEY] = MailLimiter()
    app[MAILING_KEY] = Mailing()
    app.on_cleanup.append(_cancel_mails)
    app.router.add_get("/login/forgot", forgot_form)
    app.router.add_post("/login/forgot", forgot)
    app.router.add_get("/login/reset/{token}", reset_form)
    app.router.add_post("/login/reset/{token}", reset)
