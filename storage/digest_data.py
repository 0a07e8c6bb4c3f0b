"""What the weekly digest reads: an artist's week, the moderators' queue figures, and the
digest subscriptions. Read-only; errors leave as ``StorageError``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from storage import artists
from storage.loaders import finding_records
from storage.models import Finding
from storage.records import FindingRecord
from storage.transactions import Transactions

TOP_FINDINGS = 5


@dataclass(frozen=True, slots=True)
class ArtistWeek:
    """``new``: findings created in the week, highest score first; ``earlier``: how many
    older findings are in each triage state; ``taken_down``: findings whose upload was seen
    gone from its hub in the week."""

    artist_id: int
    artist: str
    new: tuple[FindingRecord, ...]
    earlier: Mapping[str, int]
    taken_down: tuple[FindingRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueFigures:
    by_state: Mapping[str, int]
    new_this_week: int
    oldest_open_at: datetime | None
    top: tuple[FindingRecord, ...]
    taken_down_this_week: int = 0


class DigestData:
    def __init__(self, engine: Engine) -> None:
        self._tx = Transactions(engine)

    def artist_week(self, artist: str | int, since: datetime, until: datetime) -> ArtistWeek:
        """Raises ``InputError`` for an unknown artist."""

        def work(session: Session) -> ArtistWeek:
            row = artists.find_artist(session, artist)
            mine = col(Finding.artist_id) == row.id
            new = session.exec(
                select(Finding)
                .where(mine, col(Finding.created_at) >= since, col(Finding.created_at) <= until)
                .order_by(col(Finding.score).desc(), col(Finding.id))
            ).all()
            earlier = session.exec(
                select(Finding.state, func.count())
                .where(mine, col(Finding.created_at) < since)
                .group_by(col(Finding.state))
            ).all()
            gone = session.exec(
                select(Finding)
                .where(mine, *_taken_down_between(since, until))
                .order_by(col(Finding.taken_down_at), col(Finding.id))
            ).all()
            return ArtistWeek(
                artist_id=row.id or 0,
                artist=row.name,
                new=tuple(finding_records(session, new)),
                earlier=dict(sorted(earlier)),
                taken_down=tuple(finding_records(session, gone)),
            )

        return self._tx.read("artist_week", work)

    def queue(self, since: datetime, until: datetime) -> QueueFigures:
        def work(session: Session) -> QueueFigures:
            by_state = session.exec(
                select(Finding.state, func.count()).group_by(col(Finding.state))
            ).all()
            week = (col(Finding.created_at) >= since, col(Finding.created_at) <= until)
            top = session.exec(
                select(Finding)
                .where(*week)
                .order_by(col(Finding.score).desc(), col(Finding.id))
                .limit(TOP_FINDINGS)
            ).all()
            return QueueFigures(
                by_state=dict(sorted(by_state)),
                new_this_week=session.exec(select(func.count()).where(*week)).one(),
                oldest_open_at=session.exec(
                    select(func.min(Finding.created_at)).where(Finding.state == "needs_review")
                ).one(),
                top=tuple(finding_records(session, top)),
                taken_down_this_week=session.exec(
                    select(func.count()).where(*_taken_down_between(since, until))
                ).one(),
            )

        return self._tx.read("queue_figures", work)


def _taken_down_between(since: datetime, until: datetime) -> tuple[Any, ...]:
    when = col(Finding.taken_down_at)
    return (Finding.state == "taken_down", when >= since, when <= until)
