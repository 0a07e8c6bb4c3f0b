"""The artist portal's alerts: subscribe an address to one's own findings, list, remove.

An address added here gets a confirmation link (mailed when email is enabled) and receives
nothing until it is confirmed, exactly as with ``stylewatch subscribe``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Literal
from urllib.parse import urlencode

from aiohttp import web

from detectors.errors import DeliveryError, InputError
from monitor.build import alerts as alert_service
from monitor.interface.ids import parse_id
from monitor.runtime import Runtime
from monitor.web.alert_routes import SUBSCRIPTIONS_KEY
from monitor.web.auth import requires
from monitor.web.context import request_user
from monitor.web.mail_limits import MailLimiter
from monitor.web.rendering import error_page
from storage.alert_records import SubscriptionRecord

log = logging.getLogger(__name__)

RUNTIME_KEY: web.AppKey[Runtime] = web.AppKey("alert_pages_runtime", Runtime)
MAIL_LIMITER_KEY: web.AppKey[MailLimiter] = web.AppKey("alert_pages_mail_limiter", MailLimiter)
NOT_SENT = "We could not send the confirmation mail; try again in a few minutes."
MAX_ADDRESS_CHARS = 320


def _back(message: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/me?{urlencode({'message': message})}#alerts")


async def artist_subscriptions(app: web.Application, artist_id: int) -> list[SubscriptionRecord]:
    """The artist's own email and digest subscriptions."""
    records = await asyncio.to_thread(app[SUBSCRIPTIONS_KEY].list_all)
    return [r for r in records if r.artist_id == artist_id and r.channel != "webhook"]


def _min_score(raw: str) -> float:
    try:
        value = float(raw or 0)
    except ValueError as exc:
        raise InputError("the minimum score must be a number from 0 to 1") from exc
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InputError("the minimum score must be a number from 0 to 1")
    return value


@requires("artist")
async def add_subscription(request: web.Request) -> web.StreamResponse:
    user = request_user(request)
    if user is None or user.artist_id is None:
        return await error_page(request, 404, "Your account is not linked to an artist.")
    form = await request.post()
    address = str(form.get("email", "")).strip()[:MAX_ADDRESS_CHARS]
    channel: Literal["email", "digest"] = "digest" if form.get("channel") == "digest" else "email"
    try:
        record = await asyncio.to_thread(
            request.app[SUBSCRIPTIONS_KEY].add,
            channel,
            address,
            artist=user.artist_id,
            min_score=_min_score(str(form.get("min_score", "0"))),
        )
    except InputError as exc:
        return await error_page(request, 400, f"Alert not added: {exc}.")
    if record.confirmed_at is not None:
        raise _back(f"{record.address} already receives these alerts.")
    return await _confirm(request, record)


async def _confirm(request: web.Request, record: SubscriptionRecord) -> web.StreamResponse:
    """Mail the confirmation link, within the limits. The subscription is kept when the
    mail fails: adding it again finds the same row and mails again."""
    runtime = request.app[RUNTIME_KEY]
    if runtime.settings.alerts.email.enabled:
        refusal = request.app[MAIL_LIMITER_KEY].refusal(record.address)
        if refusal is not None:
            return await error_page(request, 429, refusal)
    try:
        mailed = await alert_service.send_confirmation(runtime, record)
    except DeliveryError:
        log.warning("confirmation_mail_failed", extra={"subscription_id": record.id})
        return await error_page(request, 503, NOT_SENT)
    if mailed:
        raise _back(f"We sent a confirmation link to {record.address}.")
    raise _back(f"Added {record.address}; it needs confirming (email is not set up here).")


@requires("artist")
async def remove_subscription(request: web.Request) -> web.StreamResponse:
    user = request_user(request)
    form = await request.post()
    raw = str(form.get("subscription_id", ""))
    store = request.app[SUBSCRIPTIONS_KEY]
    sub_id = parse_id(raw)
    record = await asyncio.to_thread(store.get, sub_id) if sub_id else None
    if user is None or record is None or record.artist_id != user.artist_id:
        return await error_page(request, 404, "There is no such alert.")
    await asyncio.to_thread(store.remove, record.id)
    raise _back(f"{record.address} will get no more alerts.")


def add_alert_pages(app: web.Application, runtime: Runtime) -> None:
    app[RUNTIME_KEY] = runtime
    app[MAIL_LIMITER_KEY] = MailLimiter()
    app.router.add_post("/me/alerts", add_subscription)
    app.router.add_post("/me/alerts/remove", remove_subscription)
