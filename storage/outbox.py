"""The outbox: deliveries written with the findings, claimed in batches by the dispatcher.

`enqueue_alerts` runs inside `Store.record_findings`' transaction, so a finding and its
deliveries commit together or not at all. Each row's ``idempotency_key`` is (finding,
subscription, channel): a rescore or a rerun finds the row and adds nothing.

Delivery is at least once, with a stable id per message: `OutboxStore.claim` leases rows
("sending") before the send and `mark_sent` settles them after. A process that dies in
between leaves the rows leased; they are claimed again only when the lease has expired,
with the same ``batch_key``, so the resend carries the same Message-ID / webhook-id and
the receiver can drop it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, and_, or_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from detectors.results import Evidence
from storage.alert_records import BatchItem, DeliveryRecord, DeliveryState, OutboxBatch
from storage.loaders import finding_records
from storage.models import Artist, Finding, Outbox, Subscription, Upload
from storage.records import Channel, FindingRecord
from storage.subscriptions import subscription_record
from storage.transactions import Transactions

INSTANT_CHANNELS = ("email", "webhook")
MAX_SNAPSHOT_EVIDENCE = 5
MAX_ERROR_CHARS = 500


def utc_now() -> datetime:
    return datetime.now(UTC)


def enqueue_alerts(session: Session, findings: Sequence[Finding], now: datetime) -> int:
    """Add one outbox row per (finding, active subscription that wants it); returns how
    many were added. Runs in the caller's transaction."""
    if not findings:
        return 0
    subscriptions = _instant_subscriptions(session, {f.artist_id for f in findings})
    wanted = {
        _alert_key(f, s): (f, s)
        for f in findings
        for s in subscriptions
        if s.artist_id in (None, f.artist_id) and f.score >= s.min_score
    }
    if not wanted:
        return 0
    known = set(
        session.exec(select(Outbox.idempotency_key).where(col(Outbox.idempotency_key).in_(wanted)))
    )
    snapshots = _snapshots(session, findings)
    added = 0
    for key, (finding, subscription) in wanted.items():
        if key in known or subscription.id is None:
            continue
        session.add(
            Outbox(
                idempotency_key=key,
                finding_id=finding.id,
                subscription_id=subscription.id,
                channel=subscription.channel,
                payload=snapshots[finding.id],
                next_attempt_at=now,
                created_at=now,
            )
        )
        added += 1
    session.flush()
    return added


def _alert_key(finding: Finding, subscription: Subscription) -> str:
    return f"finding:{finding.id}:subscription:{subscription.id}:{subscription.channel}"


def _instant_subscriptions(session: Session, artist_ids: set[int]) -> list[Subscription]:
    return list(
        session.exec(
            select(Subscription)
            .where(col(Subscription.channel).in_(INSTANT_CHANNELS))
            .where(col(Subscription.confirmed_at).is_not(None))
            .where(col(Subscription.disabled_at).is_(None))
            .where(
                or_(
                    col(Subscription.artist_id).in_(artist_ids),
                    col(Subscription.artist_id).is_(None),
                )
            )
            .order_by(col(Subscription.id))
        )
    )


def _snapshots(session: Session, findings: Sequence[Finding]) -> dict[int | None, dict[str, Any]]:
    records = finding_records(session, findings)
    urls = dict(
        session.exec(
            select(Upload.id, Upload.url).where(col(Upload.id).in_({r.upload_pk for r in records}))
        ).all()
    )
    return {r.id: finding_snapshot(r, urls.get(r.upload_pk)) for r in records}


def finding_snapshot(record: FindingRecord, upload_url: str | None) -> dict[str, Any]:
    """The JSON a message about this finding is written from: its strongest evidence lines,
    and how many more the evidence page holds."""
    strongest = strongest_first(record)
    return {
        "finding_id": record.id,
        "artist": record.artist,
        "score": round(record.score, 4),
        "stage": record.stage,
        "source": record.source,
        "upload_id": record.upload_id,
        "name": record.name,
        "upload_url": upload_url,
        "evidence": [
            {"source": e.source, "text": e.text} for e in strongest[:MAX_SNAPSHOT_EVIDENCE]
        ],
        "evidence_more": max(0, len(strongest) - MAX_SNAPSHOT_EVIDENCE),
    }


def strongest_first(record: FindingRecord) -> tuple[Evidence, ...]:
    """The finding's evidence, strongest line first (`evidence_strength`)."""
    return tuple(sorted(record.evidence, key=lambda e: evidence_strength(record, e)))


def evidence_strength(record: FindingRecord, evidence: Evidence) -> tuple[int, int]:
    """Sort key, strongest first: the probe's style evidence, then lines that spell the
    artist's whole name, then lines naming them with a style cue ("by", "style"), then the
    rest; ties keep the order the detectors found them in."""
    text = evidence.text.casefold()
    if evidence.source == "style":
        return (0, 0)
    if record.artist.casefold() in text:
        return (1, 0 if ("by " in text or "style" in text) else 1)
    return (2, 0 if ("by " in text or "style" in text) else 1)


class OutboxStore:
    """The dispatcher's side of the outbox over one engine."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self._tx = Transactions(engine)
        self._clock = clock

    def claim(
        self, channels: Iterable[str], *, window_s: float, lease_s: float
    ) -> OutboxBatch | None:
        """Lease the next due batch for ``lease_s`` seconds, or None when nothing is due.

        Fresh rows wait ``window_s`` after their creation, then go out together with every
        other fresh row of their subscription; a retried or expired batch keeps its rows.
        """
        now, wanted = self._clock(), list(channels)

        def work(session: Session) -> OutboxBatch | None:
            first = session.exec(
                select(Outbox)
                .where(col(Outbox.channel).in_(wanted), _due(now, window_s))
                .order_by(col(Outbox.next_attempt_at), col(Outbox.id))
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if first is None:
                return None
            rows = _batch_rows(session, first)
            key = first.batch_key or f"alert-{rows[0].id}"
            for row in rows:
                row.batch_key, row.status = key, "sending"
                row.attempts += 1
                row.next_attempt_at = now + timedelta(seconds=lease_s)
                session.add(row)
            session.flush()
            return _batch(session, key, rows)

        return self._tx.write("claim_deliveries", work)

    def release_leases(self) -> int:
        """Make every leased ("sending") batch due now; returns the rows released.

        Only for a process that knows no other dispatcher can hold a lease: the embedded
        default at start-up, whose previous process died mid-send. The resend keeps its
        message id, so a receiver that got the first send drops the second.
        """
        now = self._clock()

        def work(session: Session) -> int:
            rows = session.exec(select(Outbox).where(Outbox.status == "sending")).all()
            for row in rows:
                row.next_attempt_at = now
                session.add(row)
            return len(rows)

        return self._tx.write("release_leases", work)

    def mark_sent(self, batch_key: str) -> int:
        """Settle a leased batch as sent; returns the rows settled."""
        now = self._clock()
        return self._settle("mark_sent", batch_key, status="sent", sent_at=now, retry_at=now)

    def mark_failed(self, batch_key: str, error: str, retry_at: datetime | None) -> int:
        """Record a failed try: retry at ``retry_at``, or dead-letter when it is None."""
        now = self._clock()
        status = "pending" if retry_at is not None else "dead"
        return self._settle(
            "mark_failed", batch_key, status=status, retry_at=retry_at or now, error=error
        )

    def enqueue_prepared(
        self, subscription_id: int, key: str, channel: Channel, payload: Mapping[str, Any]
    ) -> bool:
        """Add a ready-made message (a digest) under ``key``; False when the key exists, so
        a second run for the same recipient and week sends nothing."""
        now = self._clock()

        def work(session: Session) -> bool:
            if session.exec(select(Outbox.id).where(Outbox.idempotency_key == key)).first():
                return False
            row = Outbox(
                idempotency_key=key,
                subscription_id=subscription_id,
                channel=channel,
                payload=dict(payload),
                next_attempt_at=now,
                created_at=now,
                batch_key=key.replace(":", "-"),
            )
            session.add(row)
            return True

        return self._tx.write("enqueue_prepared", work)

    def deliveries(self, status: DeliveryState | None = None) -> list[DeliveryRecord]:
        """Outbox rows (with one status, when given), newest first."""

        def work(session: Session) -> list[DeliveryRecord]:
            query = (
                select(Outbox, Subscription.address, Artist.name)
                .join(Subscription, col(Subscription.id) == col(Outbox.subscription_id))
                .join(Artist, col(Artist.id) == col(Subscription.artist_id), isouter=True)
                .order_by(col(Outbox.id).desc())
            )
            if status is not None:
                query = query.where(Outbox.status == status)
            return [_delivery(row, address, name) for row, address, name in session.exec(query)]

        return self._tx.read("list_deliveries", work)

    def _settle(
        self,
        op: str,
        batch_key: str,
        *,
        status: str,
        retry_at: datetime,
        sent_at: datetime | None = None,
        error: str | None = None,
    ) -> int:
        def work(session: Session) -> int:
            rows = session.exec(
                select(Outbox).where(Outbox.batch_key == batch_key, Outbox.status == "sending")
            ).all()
            for row in rows:
                row.status, row.next_attempt_at, row.sent_at = status, retry_at, sent_at
                row.last_error = None if error is None else error[:MAX_ERROR_CHARS]
                session.add(row)
            return len(rows)

        return self._tx.write(op, work)


def _due(now: datetime, window_s: float) -> ColumnElement[bool]:
    window_start = now - timedelta(seconds=window_s)
    batch_key = col(Outbox.batch_key)
    status, next_at = col(Outbox.status), col(Outbox.next_attempt_at)
    return or_(
        and_(status == "pending", batch_key.is_(None), col(Outbox.created_at) <= window_start),
        and_(status == "pending", batch_key.is_not(None), next_at <= now),
        and_(status == "sending", next_at <= now),
    )


def _batch_rows(session: Session, first: Outbox) -> list[Outbox]:
    query = select(Outbox).order_by(col(Outbox.id)).with_for_update(skip_locked=True)
    if first.batch_key is not None:
        query = query.where(
            Outbox.batch_key == first.batch_key, col(Outbox.status).in_(("pending", "sending"))
        )
    else:
        query = query.where(
            Outbox.subscription_id == first.subscription_id,
            Outbox.channel == first.channel,
            Outbox.status == "pending",
            col(Outbox.batch_key).is_(None),
        )
    rows = list(session.exec(query))
    return rows if first in rows else [first, *rows]


def _batch(session: Session, key: str, rows: list[Outbox]) -> OutboxBatch:
    subscription = session.get(Subscription, rows[0].subscription_id)
    assert subscription is not None, "the foreign key keeps the subscription"
    artist = session.get(Artist, subscription.artist_id) if subscription.artist_id else None
    return OutboxBatch(
        batch_key=key,
        channel=cast(Channel, rows[0].channel),
        subscription=subscription_record(subscription, artist.name if artist else None),
        attempts=max(r.attempts for r in rows),
        items=tuple(
            BatchItem(
                outbox_id=r.id or 0,
                idempotency_key=r.idempotency_key,
                finding_id=r.finding_id,
                payload=dict(r.payload),
            )
            for r in rows
        ),
        created_at=min(r.created_at for r in rows),
    )


def _delivery(row: Outbox, address: str, artist: str | None) -> DeliveryRecord:
    return DeliveryRecord(
        id=row.id or 0,
        idempotency_key=row.idempotency_key,
        batch_key=row.batch_key,
        channel=cast(Channel, row.channel),
        address=address,
        artist=artist,
        finding_id=row.finding_id,
        status=cast(DeliveryState, row.status),
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )
