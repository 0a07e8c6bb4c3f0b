"""The alert stage: findings become messages to the people who asked for them.

record -> alert happens inside `storage.store.Store.record_findings`: in the same transaction
as the findings it writes one outbox delivery per subscriber for each finding that is new or
whose score rose (`storage.outbox.enqueue_alerts`), so a crash between the two can neither
lose an alert nor send one for a finding rolled back. From the outbox a dispatcher
(`alerts.dispatcher.Dispatcher`, built by `monitor.build.alerts`) batches and sends them by
email and webhook, each delivery idempotent; once a week the digests join them
(`send_digests`).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import Engine

from alerts.digest import DigestBuilder, enqueue_digests
from alerts.dispatcher import Dispatcher, DispatchSummary
from storage.outbox import OutboxStore
from storage.subscriptions import SubscriptionStore

__all__ = ["send_digests"]


async def send_digests(
    builder: DigestBuilder, engine: Engine, dispatcher: Dispatcher | None, now: datetime
) -> tuple[int, DispatchSummary | None]:
    """Enqueue this week's digests (once per recipient and week) and deliver what is due
    (without a dispatcher, the outbox's own deliverers send them). Returns how many were
    enqueued and, with a dispatcher, what its delivery run did."""
    added = await asyncio.to_thread(
        enqueue_digests, builder, SubscriptionStore(engine), OutboxStore(engine), now
    )
    summary = await dispatcher.run_once() if dispatcher is not None else None
    return added, summary
