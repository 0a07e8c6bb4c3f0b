"""The dispatcher: claims due outbox batches and hands them to their channel.

Semantics, honestly: delivery is *at least once*, with an idempotency key. Each batch is
leased in the database ("sending") before the send and settled after it. If the process
dies, or the settling commit fails, between the two, the rows stay leased and are not
sent again until the lease expires (`DeliveryPolicy.lease_s`, longer than any send's
timeout); then they go out again with the same Message-ID / webhook-id, which receivers
use to drop the duplicate. No row is ever sent twice while its lease holds.

Failures retry with capped exponential backoff and are dead-lettered after
``max_attempts`` tries, with the reason in ``last_error`` (`stylewatch deliveries`).
Database work runs in threads; time and sleep are injected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from alerts.base import Channel, DeliveryFailed, DeliveryRejected, EndpointGone
from alerts.compose import compose
from alerts.links import Links
from detectors.errors import StorageError
from storage.alert_records import OutboxBatch
from storage.outbox import OutboxStore
from storage.subscriptions import SubscriptionStore

log = logging.getLogger(__name__)

MAX_BATCHES_PER_RUN = 1000


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """Seconds, all of them: batching window, lease, backoff; and the tries allowed."""

    window_s: float = 180.0
    lease_s: float = 300.0
    max_attempts: int = 8
    retry_base_s: float = 30.0
    retry_cap_s: float = 3600.0
    poll_interval_s: float = 5.0

    def retry_delay_s(self, attempts: int) -> float:
        """Delay after the ``attempts``-th failed try: base, 2×base, 4×base, … up to cap."""
        return float(min(self.retry_cap_s, self.retry_base_s * 2 ** max(0, attempts - 1)))


@dataclass(slots=True)
class DispatchSummary:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


class Dispatcher:
    """Delivers the outbox through ``channels`` (keyed by outbox channel name)."""

    def __init__(
        self,
        outbox: OutboxStore,
        subscriptions: SubscriptionStore,
        channels: Mapping[str, Channel],
        links: Links,
        policy: DeliveryPolicy,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._outbox = outbox
        self._subscriptions = subscriptions
        self._channels = dict(channels)
        self._links = links
        self._policy = policy
        self._clock = clock
        self._sleep = sleep

    async def run_once(self) -> DispatchSummary:
        """Deliver every batch due now, then return."""
        summary = DispatchSummary()
        for _ in range(MAX_BATCHES_PER_RUN):
            batch = await asyncio.to_thread(
                self._outbox.claim,
                self._channels,
                window_s=self._policy.window_s,
                lease_s=self._policy.lease_s,
            )
            if batch is None:
                break
            await self._deliver(batch, summary)
        return summary

    async def run_forever(self) -> None:
        """`run_once` every ``poll_interval_s`` until cancelled; a storage fault is logged
        and retried on the next round."""
        while True:
            try:
                await self.run_once()
            except StorageError as exc:
                log.warning("alerts.dispatch.storage_error: %s", exc)
            await self._sleep(self._policy.poll_interval_s)

    async def _deliver(self, batch: OutboxBatch, summary: DispatchSummary) -> None:
        alert = compose(batch, self._links)
        try:
            await self._channels[batch.channel].send(alert)
        except (DeliveryFailed, DeliveryRejected) as exc:
            await self._failed(batch, exc, summary)
            return
        except Exception as exc:  # a bug in a channel: log it, keep the loop, retry later
            log.exception("alerts.dispatch.bug", extra={"batch": batch.batch_key})
            await self._failed(batch, DeliveryFailed(f"internal error: {exc!r}"[:200]), summary)
            return
        summary.sent += 1
        try:
            await asyncio.to_thread(self._outbox.mark_sent, batch.batch_key)
        except StorageError as exc:
            # Sent but not settled: the lease keeps it from going out again until it expires.
            log.warning("alerts.dispatch.unsettled %s: %s", batch.batch_key, exc)

    async def _failed(
        self, batch: OutboxBatch, exc: DeliveryFailed | DeliveryRejected, summary: DispatchSummary
    ) -> None:
        reason = str(exc)
        retry_at = None
        if isinstance(exc, DeliveryFailed) and batch.attempts < self._policy.max_attempts:
            delay = self._policy.retry_delay_s(batch.attempts)
            retry_at = self._clock() + timedelta(seconds=delay)
        elif isinstance(exc, DeliveryFailed):
            reason = f"gave up after {batch.attempts} tries: {reason}"
        await asyncio.to_thread(self._outbox.mark_failed, batch.batch_key, reason, retry_at)
        if isinstance(exc, EndpointGone):
            await asyncio.to_thread(self._subscriptions.disable, batch.subscription.id, reason)
        summary.errors.append(reason)
        if retry_at is None:
            summary.dead += 1
        else:
            summary.retried += 1
        log.warning(
            "alerts.dispatch.%s %s: %s",
            "dead" if retry_at is None else "retry",
            batch.batch_key,
            reason,
        )
