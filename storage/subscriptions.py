"""Subscriptions: who is told about findings, over which channel, from which score.

Sync, like the store: async callers use ``asyncio.to_thread``. Errors leave as
``StorageError`` (``InputError`` for an unknown artist or a bad value).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from detectors.errors import InputError
from storage import artists
from storage.alert_records import SubscriptionRecord
from storage.models import Artist, Subscription
from storage.records import Channel
from storage.transactions import Transactions

CHANNELS: tuple[Channel, ...] = ("email", "digest", "webhook")
WEBHOOK_TEAM = "webhooks"


def utc_now() -> datetime:
    return datetime.now(UTC)


class SubscriptionStore:
    """Adds, confirms, lists, disables and removes subscriptions over one engine."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self._tx = Transactions(engine)
        self._clock = clock

    def add(
        self,
        channel: Channel,
        address: str,
        *,
        artist: str | int | None = None,
        team: str | None = None,
        min_score: float = 0.0,
        confirmed: bool = False,
    ) -> SubscriptionRecord:
        """Subscribe ``address`` for one artist or for a team (exactly one of them).

        A repeat returns the existing subscription with the new ``min_score``. ``confirmed``
        is for addresses the operator vouches for; others wait for their confirmation link.
        """
        _check(channel, address, artist, team, min_score)

        def work(session: Session) -> SubscriptionRecord:
            artist_id = None if artist is None else artists.find_artist(session, artist).id
            row = _find(session, artist_id, team, channel, address.strip())
            if row is None:
                row = Subscription(
                    artist_id=artist_id,
                    team=None if team is None else artists.clean(team, "team"),
                    channel=channel,
                    address=address.strip(),
                    created_at=self._clock(),
                )
            row.min_score = min_score
            if confirmed and row.confirmed_at is None:
                row.confirmed_at = self._clock()
            session.add(row)
            session.flush()
            return _records(session, [row])[0]

        return self._tx.write("add_subscription", work)

    def get(self, subscription_id: int) -> SubscriptionRecord | None:
        def work(session: Session) -> SubscriptionRecord | None:
            row = session.get(Subscription, subscription_id)
            return None if row is None else _records(session, [row])[0]

        return self._tx.read("get_subscription", work)

    def list_all(self) -> list[SubscriptionRecord]:
        def work(session: Session) -> list[SubscriptionRecord]:
            rows = session.exec(select(Subscription).order_by(col(Subscription.id))).all()
            return _records(session, rows)

        return self._tx.read("list_subscriptions", work)

    def confirm(self, subscription_id: int, address: str) -> SubscriptionRecord | None:
        """Mark a subscription confirmed (a repeat is a no-op); None when it is gone or the
        address no longer matches (the signed link names both)."""

        def work(session: Session) -> SubscriptionRecord | None:
            row = session.get(Subscription, subscription_id)
            if row is None or row.address != address:
                return None
            if row.confirmed_at is None:
                row.confirmed_at = self._clock()
                session.add(row)
                session.flush()
            return _records(session, [row])[0]

        return self._tx.write("confirm_subscription", work)

    def remove(self, subscription_id: int, address: str | None = None) -> bool:
        """Delete a subscription and its undelivered outbox rows (the database cascades);
        False when there was none (or the address does not match)."""

        def work(session: Session) -> bool:
            row = session.get(Subscription, subscription_id)
            if row is None or (address is not None and row.address != address):
                return False
            session.delete(row)
            session.flush()
            return True

        return self._tx.write("remove_subscription", work)

    def disable(self, subscription_id: int, reason: str) -> None:
        """Stop enqueueing for a subscription (an endpoint that answered 410 Gone)."""

        def work(session: Session) -> None:
            row = session.get(Subscription, subscription_id)
            if row is not None and row.disabled_at is None:
                row.disabled_at, row.disabled_reason = self._clock(), reason[:500]
                session.add(row)

        self._tx.write("disable_subscription", work)

    def ensure_webhooks(self, endpoints: Sequence[tuple[str, float]]) -> list[SubscriptionRecord]:
        """One confirmed team subscription per configured webhook (url, min_score)."""

        def work(session: Session) -> list[SubscriptionRecord]:
            rows = []
            for url, min_score in endpoints:
                row = _find(session, None, WEBHOOK_TEAM, "webhook", url)
                if row is None:
                    now = self._clock()
                    row = Subscription(
                        team=WEBHOOK_TEAM, channel="webhook", address=url, created_at=now
                    )
                    row.confirmed_at = now
                row.min_score = min_score
                session.add(row)
                rows.append(row)
            session.flush()
            return _records(session, rows)

        return self._tx.write("ensure_webhooks", work)


def _check(
    channel: str, address: str, artist: str | int | None, team: str | None, min_score: float
) -> None:
    if (artist is None) == (team is None):
        raise InputError("a subscription is for one artist or for one team: give exactly one")
    if channel not in CHANNELS:
        raise InputError(f"unknown channel {channel!r}: use email, digest or webhook")
    if not 0.0 <= min_score <= 1.0:
        raise InputError(f"--min-score must be between 0 and 1 (got {min_score})")
    if channel in ("email", "digest") and "@" not in address.strip(" @"):
        raise InputError(f"{address!r} is not an email address")
    if channel == "webhook" and not address.startswith(("https://", "http://")):
        raise InputError(f"{address!r} is not an http(s) URL")


def _find(
    session: Session, artist_id: int | None, team: str | None, channel: str, address: str
) -> Subscription | None:
    query = select(Subscription).where(
        Subscription.channel == channel, Subscription.address == address
    )
    if artist_id is not None:
        query = query.where(Subscription.artist_id == artist_id)
    else:
        query = query.where(col(Subscription.artist_id).is_(None), Subscription.team == team)
    return session.exec(query).first()


def _records(session: Session, rows: Sequence[Subscription]) -> list[SubscriptionRecord]:
    ids = {r.artist_id for r in rows if r.artist_id is not None}
    names = dict(session.exec(select(Artist.id, Artist.name).where(col(Artist.id).in_(ids))).all())
    return [subscription_record(r, names.get(r.artist_id) if r.artist_id else None) for r in rows]


def subscription_record(row: Subscription, artist: str | None) -> SubscriptionRecord:
    if row.id is None:
        raise RuntimeError("subscription row has no id: flush before reading it")
    return SubscriptionRecord(
        id=row.id,
        artist_id=row.artist_id,
        artist=artist,
        team=row.team,
        channel=cast(Channel, row.channel),
        address=row.address,
        min_score=row.min_score,
        confirmed_at=row.confirmed_at,
        disabled_at=row.disabled_at,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
    )
