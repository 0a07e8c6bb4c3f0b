"""Building alert delivery from the settings (the composition side of ``alerts/``): the
links, the channels, the dispatcher, the digest builder, and the sends the CLI and the web
pages make at once (confirmation, password reset, one delivery pass, the digests).

What runs for as long as ``serve`` or a worker does (the dispatcher's loop, the digest's
cron) is `monitor.services.alerts`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aiohttp

from alerts.base import Alert, Channel, PreparedMessage
from alerts.destination import GuardedResolver
from alerts.digest import DigestBuilder
from alerts.dispatcher import DeliveryPolicy, Dispatcher, DispatchSummary
from alerts.email import EmailChannel
from alerts.links import Links
from alerts.render import MessageRenderer
from alerts.webhook import WebhookChannel
from monitor.runtime import Runtime
from monitor.secret_key import web_secret_key
from monitor.settings import Settings
from storage.alert_records import SubscriptionRecord
from storage.digest_data import DigestData
from storage.outbox import OutboxStore
from storage.subscriptions import SubscriptionStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def base_url(settings: Settings) -> str:
    web = settings.web
    return (web.base_url or f"http://{web.host}:{web.port}").rstrip("/")


def build_links(settings: Settings) -> Links:
    return Links(base_url(settings), web_secret_key(settings))


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    alerts = settings.alerts
    timeouts = [alerts.email.timeout_s, *(w.timeout_s for w in alerts.webhooks)]
    return DeliveryPolicy(
        window_s=alerts.batch_window_s,
        lease_s=max(300.0, 4 * max(timeouts)),
        max_attempts=alerts.max_attempts,
        retry_base_s=alerts.retry_base_s,
        retry_cap_s=alerts.retry_cap_s,
        poll_interval_s=alerts.poll_interval_s,
    )


def create_webhook_session() -> aiohttp.ClientSession:
    """The session webhooks go through: its resolver refuses private and loopback
    addresses (per endpoint policy) and it caches no DNS, so every connection is checked."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(), use_dns_cache=False, limit=16)
    return aiohttp.ClientSession(connector=connector)


def build_channels(
    settings: Settings, webhook_session: aiohttp.ClientSession, clock: Clock = utc_now
) -> dict[str, Channel]:
    """The channels the settings enable, keyed by outbox channel name; a channel left out
    keeps its deliveries pending until it is configured."""
    channels: dict[str, Channel] = {}
    if settings.alerts.email.enabled:
        renderer = MessageRenderer(base_url(settings))
        email = EmailChannel(settings.alerts.email, renderer, clock)
        channels |= {"email": email, "digest": email}
    if settings.alerts.webhooks:
        channels["webhook"] = WebhookChannel(settings.alerts.webhooks, webhook_session, clock)
    return channels


def build_dispatcher(
    runtime: Runtime,
    webhook_session: aiohttp.ClientSession,
    *,
    clock: Clock = utc_now,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    policy: DeliveryPolicy | None = None,
) -> Dispatcher:
    settings = runtime.settings
    return Dispatcher(
        OutboxStore(runtime.engine, clock),
        SubscriptionStore(runtime.engine, clock),
        build_channels(settings, webhook_session, clock),
        build_links(settings),
        policy or delivery_policy(settings),
        clock=clock,
        sleep=sleep,
    )


def sync_webhooks(runtime: Runtime) -> list[SubscriptionRecord]:
    """One team subscription per ``[[alerts.webhooks]]`` endpoint (all findings)."""
    endpoints = [(w.url, 0.0) for w in runtime.settings.alerts.webhooks]
    return SubscriptionStore(runtime.engine).ensure_webhooks(endpoints)


def digest_builder(runtime: Runtime) -> DigestBuilder:
    settings = runtime.settings
    return DigestBuilder(
        DigestData(runtime.engine), MessageRenderer(base_url(settings)), build_links(settings)
    )


async def deliver_once(runtime: Runtime, *, clock: Clock = utc_now) -> DispatchSummary:
    """Sync the webhooks and deliver every due batch once (``stylewatch deliver --once``)."""
    await asyncio.to_thread(sync_webhooks, runtime)
    async with create_webhook_session() as session:
        return await build_dispatcher(runtime, session, clock=clock).run_once()


async def send_confirmation(runtime: Runtime, subscription: SubscriptionRecord) -> bool:
    """Mail the confirmation link when email is enabled; False when it is not."""
    settings = runtime.settings
    if not settings.alerts.email.enabled:
        return False
    renderer = MessageRenderer(base_url(settings))
    what = f"alerts about {subscription.artist or subscription.team}"
    prepared = renderer.render(
        "confirm",
        "stylewatch: confirm your subscription",
        what=what,
        address=subscription.address,
        confirm_url=build_links(settings).confirm(subscription.id, subscription.address),
    )
    await _send_now(runtime, renderer, f"confirm-{subscription.id}", subscription, prepared)
    return True


async def send_password_reset(runtime: Runtime, user_id: int, email: str, url: str) -> bool:
    """Mail a password reset link to a user when email is enabled; False when it is not.
    Raises DeliveryError when the mail server refuses or cannot be reached."""
    settings = runtime.settings
    if not settings.alerts.email.enabled:
        return False
    renderer = MessageRenderer(base_url(settings))
    prepared = renderer.render(
        "reset", "stylewatch: reset your password", address=email, reset_url=url
    )
    await _send_now(
        runtime, renderer, f"reset-{user_id}-{int(utc_now().timestamp())}", email, prepared
    )
    return True


async def _send_now(
    runtime: Runtime,
    renderer: MessageRenderer,
    message_id: str,
    to: SubscriptionRecord | str,
    prepared: PreparedMessage,
) -> None:
    """One message sent at once, outside the outbox (a link the reader is waiting for)."""
    subscription = to if isinstance(to, SubscriptionRecord) else None
    alert = Alert(
        message_id=message_id,
        recipient=subscription.address if subscription else str(to),
        subscription_id=subscription.id if subscription else 0,
        artist=subscription.artist if subscription else None,
        findings=(),
        created_at=utc_now(),
        prepared=prepared,
    )
    await EmailChannel(runtime.settings.alerts.email, renderer).send(alert)
