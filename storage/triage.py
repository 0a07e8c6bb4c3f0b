"""Triage of findings: leases (claims), decisions, and the append-only audit log.

A moderator's claim is a lease of ``LEASE_S`` seconds on a finding. While it runs no one
else can claim or decide that finding; deciding ends it. Every action writes one
``triage_event`` row, which is never updated or deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from detectors.errors import InputError
from storage.models import Artist, Finding, FindingLease, TriageEvent, Upload, User
from storage.records import FindingState
from storage.transactions import Transactions, utc_now

LEASE_S = 600
MAX_REASON_CHARS = 2000

Decision = Literal["confirm", "dismiss", "escalate"]
ArtistReason = Literal["this_is_me", "licensed"]
DECISION_STATES: dict[Decision, FindingState] = {
    "confirm": "confirmed",
    "dismiss": "dismissed",
    "escalate": "escalated",
}
ARTIST_REASONS: dict[ArtistReason, str] = {
    "this_is_me": "this is me",
    "licensed": "I licensed this",
}


class FindingNotFound(InputError):
    def __init__(self, finding_id: int) -> None:
        super().__init__(f"no finding {finding_id}")
        self.finding_id = finding_id


class FindingClaimed(InputError):
    """Another user holds an unexpired lease on the finding."""

    def __init__(self, finding_id: int, holder: str, expires_at: datetime) -> None:
        until = f"{expires_at:%H:%M} UTC"
        super().__init__(f"finding {finding_id} is claimed by {holder} until {until}")
        self.finding_id = finding_id
        self.holder = holder
        self.expires_at = expires_at


class FindingDecided(InputError):
    """A moderator already decided the finding: the artist can no longer dismiss it."""

    def __init__(self, finding_id: int, state: str) -> None:
        shown = state.replace("_", " ")
        super().__init__(f"finding {finding_id} is already {shown} by a moderator")
        self.finding_id = finding_id
        self.state = state


# The states an artist may still dismiss: undecided, or dismissed already (a repeat changes
# nothing but the audit note). Confirmed and taken-down findings are a moderator's decision.
ARTIST_DISMISSABLE = frozenset({"needs_review", "escalated", "dismissed"})


@dataclass(frozen=True, slots=True)
class Lease:
    finding_id: int
    user_id: int
    email: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TriageEventRecord:
    id: int
    finding_id: int
    user_email: str | None
    action: str
    reason: str | None
    created_at: datetime
    upload_name: str | None = None  # what the finding is about, for the audit page
    artist: str | None = None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What the audit page narrowed to (every field optional; text matched in any case)."""

    who: str = ""  # a user's email, "system" for actions of no user
    action: str = ""
    artist: str = ""
    upload: str = ""  # part of the upload's name


@dataclass(frozen=True, slots=True)
class BulkResult:
    decided: tuple[int, ...]
    skipped: tuple[int, ...]  # claimed by someone else, or unknown


class TriageStore:
    """Claims, decisions and the audit log over one engine."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self._tx = Transactions(engine, clock)

    def claim(self, finding_id: int, user_id: int) -> Lease:
        """Take (or renew) the lease on a finding. Raises ``FindingClaimed`` or
        ``FindingNotFound``."""

        def work(session: Session) -> Lease:
            _finding(session, finding_id)
            lease = self._take_lease(session, finding_id, user_id)
            return _lease(session, lease)

        return self._tx.write("claim", work)

    def release(self, finding_id: int, user_id: int) -> None:
        def work(session: Session) -> None:
            lease = session.get(FindingLease, finding_id)
            if lease is not None and lease.user_id == user_id:
                session.delete(lease)
                self._event(session, finding_id, user_id, "release", None)

        self._tx.write("release", work)

    def decide(self, finding_id: int, user_id: int, decision: Decision, reason: str) -> None:
        """Confirm, dismiss or escalate one finding. Raises ``FindingClaimed`` when another
        user holds it, ``FindingNotFound``, or ``InputError`` for an empty reason."""
        reason = _reason(reason)

        def work(session: Session) -> None:
            finding = _finding(session, finding_id)
            self._take_lease(session, finding_id, user_id, audit=False)
            self._apply(session, finding, user_id, decision, reason)

        self._tx.write("decide", work)

    def decide_many(
        self, finding_ids: Sequence[int], user_id: int, decision: Decision, reason: str
    ) -> BulkResult:
        """Decide several findings at once; those claimed by others (or unknown) are skipped."""
        reason = _reason(reason)

        def work(session: Session) -> BulkResult:
            decided, skipped = [], []
            for finding_id in dict.fromkeys(finding_ids):
                finding = session.get(Finding, finding_id)
                if finding is None or self._held_by_other(session, finding_id, user_id):
                    skipped.append(finding_id)
                    continue
                self._apply(session, finding, user_id, decision, f"bulk: {reason}")
                decided.append(finding_id)
            return BulkResult(tuple(decided), tuple(skipped))

        return self._tx.write("decide_many", work)

    def artist_dismiss(
        self, finding_id: int, artist_id: int, user_id: int, why: ArtistReason, note: str = ""
    ) -> None:
        """The artist themself dismisses a finding about them ("this is me", "I licensed
        this"). ``FindingNotFound`` when the finding is not about this artist,
        ``FindingDecided`` when a moderator confirmed it (or it was taken down)."""
        reason = ARTIST_REASONS[why] + (f": {note.strip()}" if note.strip() else "")

        def work(session: Session) -> None:
            finding = session.get(Finding, finding_id)
            if finding is None or finding.artist_id != artist_id:
                raise FindingNotFound(finding_id)
            if finding.state not in ARTIST_DISMISSABLE:
                raise FindingDecided(finding_id, finding.state)
            self._set_state(session, finding, "dismissed")
            self._event(session, finding_id, user_id, "artist_dismiss", _reason(reason))

        self._tx.write("artist_dismiss", work)

    def record_action(self, finding_id: int, user_id: int, action: str, note: str = "") -> None:
        """Audit an action that changes nothing else (a report export, for instance)."""

        def work(session: Session) -> None:
            _finding(session, finding_id)
            self._event(session, finding_id, user_id, action, note or None)

        self._tx.write("record_action", work)

    def leases(self, finding_ids: Sequence[int]) -> dict[int, Lease]:
        """The unexpired leases on these findings."""

        def work(session: Session) -> dict[int, Lease]:
            rows = session.exec(
                select(FindingLease).where(
                    col(FindingLease.finding_id).in_(finding_ids),
                    col(FindingLease.expires_at) > self._tx.clock(),
                )
            ).all()
            return {row.finding_id: _lease(session, row) for row in rows}

        return self._tx.read("leases", work)

    def events(
        self,
        finding_id: int | None = None,
        limit: int = 200,
        *,
        where: AuditFilter | None = None,
        before: int | None = None,
    ) -> list[TriageEventRecord]:
        """Audit entries, newest first (of one finding, when given), each naming its upload
        and artist; ``before`` (an entry id) pages back by keyset."""

        def work(session: Session) -> list[TriageEventRecord]:
            query = (
                select(TriageEvent, User.email, Upload.name, Artist.name)
                .join(User, col(User.id) == col(TriageEvent.user_id), isouter=True)
                .join(Finding, col(Finding.id) == col(TriageEvent.finding_id))
                .join(Upload, col(Upload.id) == col(Finding.upload_pk))
                .join(Artist, col(Artist.id) == col(Finding.artist_id))
                .order_by(col(TriageEvent.id).desc())
                .limit(limit)
            )
            if finding_id is not None:
                query = query.where(TriageEvent.finding_id == finding_id)
            if before is not None:
                query = query.where(col(TriageEvent.id) < before)
            if where is not None:
                query = _audit_filtered(query, where)
            return [
                _event_record(e, email, upload, artist)
                for e, email, upload, artist in session.exec(query).all()
            ]

        return self._tx.read("events", work)

    def actions(self) -> list[str]:
        """The kinds of action the audit log holds (for the audit page's filter)."""

        def work(session: Session) -> list[str]:
            rows = session.exec(select(TriageEvent.action).distinct()).all()
            return sorted(rows)

        return self._tx.read("actions", work)

    # -- steps -----------------------------------------------------------------------

    def _take_lease(
        self, session: Session, finding_id: int, user_id: int, *, audit: bool = True
    ) -> FindingLease:
        now = self._tx.clock()
        lease = session.get(FindingLease, finding_id)
        if lease is not None and lease.user_id != user_id and lease.expires_at > now:
            holder = _lease(session, lease)
            raise FindingClaimed(finding_id, holder.email, holder.expires_at)
        is_new = lease is None or lease.user_id != user_id or lease.expires_at <= now
        if lease is None:
            lease = FindingLease(finding_id=finding_id, user_id=user_id)
        lease.user_id, lease.expires_at = user_id, now + timedelta(seconds=LEASE_S)
        session.add(lease)
        session.flush()
        if audit and is_new:
            self._event(session, finding_id, user_id, "claim", None)
        return lease

    def _held_by_other(self, session: Session, finding_id: int, user_id: int) -> bool:
        lease = session.get(FindingLease, finding_id)
        if lease is None or lease.user_id == user_id:
            return False
        return lease.expires_at > self._tx.clock()

    def _apply(
        self, session: Session, finding: Finding, user_id: int, decision: Decision, reason: str
    ) -> None:
        assert finding.id is not None
        self._set_state(session, finding, DECISION_STATES[decision])
        lease = session.get(FindingLease, finding.id)
        if lease is not None:
            session.delete(lease)
        self._event(session, finding.id, user_id, decision, reason)

    def _set_state(self, session: Session, finding: Finding, state: FindingState) -> None:
        finding.state, finding.updated_at = state, self._tx.clock()
        session.add(finding)

    def _event(
        self, session: Session, finding_id: int, user_id: int, action: str, reason: str | None
    ) -> None:
        session.add(
            TriageEvent(
                finding_id=finding_id,
                user_id=user_id,
                action=action,
                reason=reason,
                created_at=self._tx.clock(),
            )
        )
        session.flush()


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InputError("give a reason for the decision")
    return reason[:MAX_REASON_CHARS]


def _finding(session: Session, finding_id: int) -> Finding:
    finding = session.get(Finding, finding_id)
    if finding is None:
        raise FindingNotFound(finding_id)
    return finding


def _lease(session: Session, lease: FindingLease) -> Lease:
    user = session.get(User, lease.user_id)
    email = user.email if user is not None else "a deleted user"
    return Lease(lease.finding_id, lease.user_id, email, lease.expires_at)


def _audit_filtered(query: Any, where: AuditFilter) -> Any:
    who = where.who.strip().lower()
    if who == "system":
        query = query.where(col(TriageEvent.user_id).is_(None))
    elif who:
        query = query.where(func.lower(col(User.email)) == who)
    if where.action:
        query = query.where(TriageEvent.action == where.action)
    if where.artist:
        query = query.where(func.lower(col(Artist.name)) == where.artist.strip().lower())
    if where.upload:
        needle = where.upload.strip().lower()
        query = query.where(func.lower(col(Upload.name)).contains(needle, autoescape=True))
    return query


def _event_record(
    event: TriageEvent,
    email: str | None,
    upload_name: str | None = None,
    artist: str | None = None,
) -> TriageEventRecord:
    assert event.id is not None
    return TriageEventRecord(
        id=event.id,
        finding_id=event.finding_id,
        user_email=email,
        action=event.action,
        reason=event.reason,
        created_at=event.created_at,
        upload_name=upload_name,
        artist=artist,
    )
