"""What the alert stores hand out: subscriptions, claimed outbox batches, deliveries.

Outbox payloads are JSON snapshots written with the finding (`storage.outbox`), so a
message says what was found when it was found, even after a rescore or a deletion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from storage.records import Channel

DeliveryState = Literal["pending", "sending", "sent", "dead"]


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """Who hears about findings: an artist's subscriber (``artist``) or a team (``team``).

    ``channel`` is "email" (each finding, batched), "digest" (the weekly digest only) or
    "webhook" (``address`` is the URL). Nothing is sent before ``confirmed_at`` is set.
    """

    id: int
    artist_id: int | None
    artist: str | None
    team: str | None
    channel: Channel
    address: str
    min_score: float
    confirmed_at: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    created_at: datetime

    @property
    def active(self) -> bool:
        return self.confirmed_at is not None and self.disabled_at is None


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One outbox row in a batch; ``payload`` is its JSON snapshot."""

    outbox_id: int
    idempotency_key: str
    finding_id: int | None
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxBatch:
    """Outbox rows claimed together: they go out as one message named by ``batch_key``.

    ``attempts`` counts this try. The claim is a lease: the rows stay "sending" until marked
    sent or failed, and are claimed again (same ``batch_key``) only after the lease expires.
    """

    batch_key: str
    channel: Channel
    subscription: SubscriptionRecord
    attempts: int
    items: tuple[BatchItem, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One outbox row as operators see it (`stylewatch deliveries`)."""

    id: int
    idempotency_key: str
    batch_key: str | None
    channel: Channel
    address: str
    artist: str | None
    finding_id: int | None
    status: DeliveryState
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None
