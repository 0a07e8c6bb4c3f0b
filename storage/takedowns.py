"""Takedown tracking: which confirmed uploads are due a check on their hub, what the last
check saw (``hub_check``), and the findings whose upload is still up long after they were
confirmed.

When a check sees an upload gone, its confirmed findings move to "taken_down" with the
date, and each gets a triage event without a user (the system did it), so the moderators'
history shows it. A check that sees it up again changes no finding: it was taken down once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, or_
from sqlmodel import Session, col, select

from storage.loaders import finding_records
from storage.models import Finding, HubCheck, ModelFile, Source, TriageEvent, Upload
from storage.records import FindingRecord
from storage.transactions import Transactions, utc_now

TAKEDOWN_ACTION = "taken_down"
CONFIRM_ACTION = "confirm"


@dataclass(frozen=True, slots=True)
class HubCheckRecord:
    """The last check of an upload: ``status`` is ``up`` or why it is gone; ``gone_at``
    when a check first saw it gone."""

    upload_pk: int
    up: bool
    status: str
    reason: str | None
    checked_at: datetime
    gone_at: datetime | None


@dataclass(frozen=True, slots=True)
class DueUpload:
    """A recorded upload with a confirmed finding, due a check on its hub."""

    upload_pk: int
    source: str
    upload_id: str
    url: str | None
    filenames: tuple[str, ...]
    size: int | None


@dataclass(frozen=True, slots=True)
class StillUp:
    """A confirmed finding whose upload has not been seen gone since ``confirmed_at``."""

    finding: FindingRecord
    confirmed_at: datetime
    check: HubCheckRecord | None
    upload_url: str | None = None


class Takedowns:
    """Takedown checks over one engine."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self._tx = Transactions(engine, clock)

    def now(self) -> datetime:
        """The time the checks see (the injected clock)."""
        return self._tx.clock()

    def due(self, every_s: float, *, sources: Collection[str], limit: int = 500) -> list[DueUpload]:
        """Uploads of ``sources`` with a confirmed finding and no check in the last
        ``every_s`` seconds, never-checked ones first."""
        cutoff = self._tx.clock() - timedelta(seconds=every_s)

        def work(session: Session) -> list[DueUpload]:
            confirmed = select(Finding.upload_pk).where(Finding.state == "confirmed")
            rows = session.exec(
                select(Upload, Source.name)
                .join(Source, col(Source.id) == col(Upload.source_id))
                .join(HubCheck, col(HubCheck.upload_pk) == col(Upload.id), isouter=True)
                .where(col(Upload.id).in_(confirmed), col(Source.name).in_(list(sources)))
                .where(or_(col(HubCheck.checked_at).is_(None), col(HubCheck.checked_at) <= cutoff))
                .order_by(col(HubCheck.checked_at).is_not(None), col(HubCheck.checked_at))
                .order_by(col(Upload.id))
                .limit(limit)
            ).all()
            files = _files(session, [u.id for u, _ in rows if u.id is not None])
            return [
                DueUpload(
                    upload_pk=u.id,
                    source=name,
                    upload_id=u.upload_id,
                    url=u.url,
                    filenames=tuple(n for n, _ in files[u.id]),
                    size=next((size for _, size in files[u.id] if size is not None), None),
                )
                for u, name in rows
                if u.id is not None
            ]

        return self._tx.read("takedowns_due", work)

    def record(self, upload_pk: int, *, status: str, reason: str | None) -> list[int]:
        """Store a check's result (``status`` ``up`` or why it is gone); when gone, take
        the upload's confirmed findings down. Returns the ids of the findings taken down."""

        def work(session: Session) -> list[int]:
            now = self._tx.clock()
            check = session.get(HubCheck, upload_pk)
            if check is None:
                check = HubCheck(upload_pk=upload_pk, up=True, status=status, checked_at=now)
            check.up, check.status, check.reason = status == "up", status, reason
            check.checked_at = now
            if not check.up and check.gone_at is None:
                check.gone_at = now
            session.add(check)
            return [] if check.up else _take_down(session, upload_pk, status, reason, now)

        return self._tx.write("record_hub_check", work)

    def checks(self, upload_pks: Sequence[int]) -> dict[int, HubCheckRecord]:
        """The last check of each of these uploads that has one."""
        wanted = sorted(set(upload_pks))
        if not wanted:
            return {}

        def work(session: Session) -> dict[int, HubCheckRecord]:
            rows = session.exec(select(HubCheck).where(col(HubCheck.upload_pk).in_(wanted)))
            return {r.upload_pk: _check(r) for r in rows.all()}

        return self._tx.read("hub_checks", work)

    def still_up(self, days: float, limit: int = 500) -> list[StillUp]:
        """Confirmed findings confirmed at least ``days`` ago (their last "confirm" event,
        else their last change), oldest first: their uploads were not seen gone since."""
        cutoff = self._tx.clock() - timedelta(days=days)

        def work(session: Session) -> list[StillUp]:
            confirmed_at = (
                select(TriageEvent.finding_id, func.max(TriageEvent.created_at).label("at"))
                .where(TriageEvent.action == CONFIRM_ACTION)
                .group_by(col(TriageEvent.finding_id))
                .subquery()
            )
            since = func.coalesce(confirmed_at.c.at, Finding.updated_at)
            rows = session.exec(
                select(Finding, since)
                .join(confirmed_at, confirmed_at.c.finding_id == Finding.id, isouter=True)
                .where(Finding.state == "confirmed", since <= cutoff)
                .order_by(since, col(Finding.id))
                .limit(limit)
            ).all()
            records = finding_records(session, [f for f, _ in rows])
            urls, checks = _upload_facts(session, {f.upload_pk for f in records})
            return [
                StillUp(
                    record, _aware(when), checks.get(record.upload_pk), urls.get(record.upload_pk)
                )
                for record, (_, when) in zip(records, rows, strict=True)
            ]

        return self._tx.read("still_up", work)


def _take_down(
    session: Session, upload_pk: int, status: str, reason: str | None, now: datetime
) -> list[int]:
    findings = session.exec(
        select(Finding).where(Finding.upload_pk == upload_pk, Finding.state == "confirmed")
    ).all()
    why = f"the hub shows the upload {status}" + (f": {reason}" if reason else "")
    for finding in findings:
        finding.state, finding.taken_down_at, finding.updated_at = "taken_down", now, now
        session.add(finding)
        assert finding.id is not None
        session.add(
            TriageEvent(finding_id=finding.id, action=TAKEDOWN_ACTION, reason=why, created_at=now)
        )
    session.flush()
    return [f.id for f in findings if f.id is not None]


def _upload_facts(
    session: Session, upload_pks: set[int]
) -> tuple[dict[int, str | None], dict[int, HubCheckRecord]]:
    """The hub URL and the last check of each of these uploads."""
    urls = session.exec(select(Upload.id, Upload.url).where(col(Upload.id).in_(upload_pks)))
    checks = session.exec(select(HubCheck).where(col(HubCheck.upload_pk).in_(upload_pks)))
    return (
        {pk: url for pk, url in urls.all() if pk is not None},
        {row.upload_pk: _check(row) for row in checks.all()},
    )


def _files(session: Session, upload_pks: list[int]) -> dict[int, list[tuple[str, int | None]]]:
    files: dict[int, list[tuple[str, int | None]]] = defaultdict(list)
    rows = session.exec(
        select(ModelFile.upload_pk, ModelFile.filename, ModelFile.size)
        .where(col(ModelFile.upload_pk).in_(upload_pks))
        .order_by(col(ModelFile.id))
    ).all()
    for upload_pk, filename, size in rows:
        files[upload_pk].append((filename, size))
    return files


def _check(row: HubCheck) -> HubCheckRecord:
    return HubCheckRecord(
        upload_pk=row.upload_pk,
        up=row.up,
        status=row.status,
        reason=row.reason,
        checked_at=row.checked_at,
        gone_at=row.gone_at,
    )


def _aware(when: datetime) -> datetime:
    """A time from a SQL aggregate (SQLite may hand those back naive, in UTC)."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)
