"""The webhook channel: one signed POST per alert to a configured endpoint.

Every body (standard, Slack, Discord) carries Standard Webhooks headers when the endpoint
has a secret; ``webhook-id`` is the alert's stable id, so a resend after a crash can be
dropped by the receiver. 2xx is success; 410 disables the endpoint; a redirect is a
failure and is not followed; anything else is retried on the dispatcher's schedule.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import aiohttp
from yarl import URL

from alerts.base import Alert, DeliveryFailed, DeliveryRejected, EndpointGone
from alerts.destination import (
    DestinationPolicy,
    DestinationRefused,
    check_host,
    destination_policy,
)
from alerts.settings import WebhookSettings
from alerts.webhook_formats import body_for
from alerts.webhook_signature import signed_headers, signing_key

log = logging.getLogger(__name__)
MAX_REPLY_BYTES = 64 * 1024  # a receiver's answer is read this far, then dropped


def utc_now() -> datetime:
    return datetime.now(UTC)


def webhook_id(alert: Alert) -> str:
    return f"msg_{alert.message_id}"


class WebhookChannel:
    """Posts alerts to the configured endpoints; ``Alert.recipient`` is the endpoint URL.

    ``session`` should use a `alerts.destination.GuardedResolver` without a DNS cache.
    """

    def __init__(
        self,
        endpoints: Sequence[WebhookSettings],
        session: aiohttp.ClientSession,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._endpoints = {e.url: e for e in endpoints}
        self._session = session
        self._clock = clock

    async def send(self, alert: Alert) -> None:
        endpoint = self._endpoints.get(alert.recipient)
        if endpoint is None:
            raise DeliveryRejected(f"webhook {alert.recipient} is no longer configured")
        url = URL(endpoint.url)
        policy = DestinationPolicy(endpoint.allow_private, endpoint.allow_loopback)
        body = json.dumps(body_for(endpoint.format, alert), ensure_ascii=False).encode()
        with destination_policy(policy):
            await self._check(url, policy)
            status = await self._post(url, body, self._headers(endpoint, alert, body), endpoint)
        _check_status(status, url)
        log.info("alerts.webhook.sent", extra={"message_id": alert.message_id, "status": status})

    def _headers(self, endpoint: WebhookSettings, alert: Alert, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "stylewatch-webhooks"}
        if endpoint.secret is not None:
            key = signing_key(endpoint.secret.get_secret_value())
            timestamp = int(self._clock().timestamp())
            headers |= signed_headers(key, webhook_id(alert), timestamp, body)
        return headers

    async def _check(self, url: URL, policy: DestinationPolicy) -> None:
        if url.scheme not in ("http", "https") or not url.host:
            raise DeliveryRejected(f"webhook URL {_safe(url)} is not http(s)")
        try:
            await check_host(url.host, url.port or 443, policy)
        except DestinationRefused as exc:
            raise DeliveryRejected(f"webhook {_safe(url)} refused: {exc}") from exc
        except OSError as exc:
            raise DeliveryFailed(f"cannot resolve webhook host {url.host}: {exc}") from exc

    async def _post(
        self, url: URL, body: bytes, headers: dict[str, str], endpoint: WebhookSettings
    ) -> int:
        timeout = aiohttp.ClientTimeout(total=endpoint.timeout_s)
        try:
            async with self._session.post(
                url, data=body, headers=headers, allow_redirects=False, timeout=timeout
            ) as resp:
                await _drain(resp)
                return resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise DeliveryFailed(f"webhook {_safe(url)} failed: {reason}") from exc


async def _drain(resp: aiohttp.ClientResponse) -> None:
    """Read at most :data:`MAX_REPLY_BYTES` of a receiver's answer (only its status counts);
    a longer answer is left unread and its connection closed, never held or buffered."""
    received = 0
    async for chunk in resp.content.iter_any():
        received += len(chunk)
        if received > MAX_REPLY_BYTES:
            resp.close()
            return


def _check_status(status: int, url: URL) -> None:
    if 200 <= status < 300:
        return
    if status == 410:
        raise EndpointGone(f"webhook {_safe(url)} answered 410 Gone: endpoint disabled")
    if 300 <= status < 400:
        raise DeliveryFailed(f"webhook {_safe(url)} answered a redirect ({status}): not followed")
    raise DeliveryFailed(f"webhook {_safe(url)} answered HTTP {status}")


def _safe(url: URL) -> str:
    """The URL without query or credentials (Slack/Discord URLs carry their token in the
    path, so only scheme, host and the first path segment are shown)."""
    first = url.path.strip("/").split("/", 1)[0]
    return f"{url.scheme}://{url.host}{':' + str(url.port) if url.explicit_port else ''}/{first}…"
