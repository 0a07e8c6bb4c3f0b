"""Where each hub history search stands: one row per (artist, hub, query), holding the
position of the next page to read. A page's position is saved only after its uploads are
recorded, so an interrupted search reads that page again (its recorded uploads are skipped)
and a finished one (``done_at`` set) is not run again unless asked.

Sync, like the store: async callers use ``asyncio.to_thread``. Errors leave as
``StorageError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from detectors.errors import StorageError
from storage.models import HubSearch
from storage.transactions import Transactions, utc_now

MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class SearchKey:
    """One search: an artist's name (or alias) as one hub's query."""

    artist_id: int
    source: str
    query: str


@dataclass(frozen=True, slots=True)
class HubSearchRecord:
    """``cursor``: where the next page starts (None: at the first, or nothing left when
    ``done_at`` is set); ``pages``/``listed``: read so far; ``error``: why it last stopped."""

    key: SearchKey
    cursor: str | None
    pages: int
    listed: int
    error: str | None
    done_at: datetime | None
    updated_at: datetime

    @property
    def done(self) -> bool:
        return self.done_at is not None


class HubSearches:
    """The hub history searches' positions over one engine."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self._tx = Transactions(engine, clock)

    def start(self, key: SearchKey, *, again: bool = False) -> HubSearchRecord:
        """The search's row, created at the first page; ``again`` starts a finished search
        over from its first page (an unfinished one keeps its place)."""

        def work(session: Session) -> HubSearchRecord:
            row = _row(session, key)
            if row is None:
                row = HubSearch(
                    artist_id=key.artist_id,
                    source=key.source,
                    query=key.query,
                    updated_at=self._tx.clock(),
                )
            elif again and row.done_at is not None:
                row.cursor, row.done_at, row.pages, row.listed = None, None, 0, 0
                row.updated_at = self._tx.clock()
            session.add(row)
            session.flush()
            return _record(row)

        return self._tx.write("start_hub_search", work)

    def page_done(self, key: SearchKey, *, cursor: str | None, listed: int) -> HubSearchRecord:
        """A page's uploads are recorded: move to ``cursor`` (None: the search is done)."""

        def work(session: Session) -> HubSearchRecord:
            row = _existing(session, key)
            now = self._tx.clock()
            row.cursor, row.error, row.updated_at = cursor, None, now
            row.pages, row.listed = row.pages + 1, row.listed + listed
            row.done_at = now if cursor is None else None
            session.add(row)
            return _record(row)

        return self._tx.write("hub_search_page", work)

    def stopped(
        self, key: SearchKey, error: str, *, restart: bool = False, give_up: bool = False
    ) -> None:
        """The search stopped on a fault; it keeps its place for the next run, goes back to
        its first page when ``restart`` (the hub refused the saved position), or counts as
        finished when ``give_up`` (the hub refuses the query itself: asking again will not
        help; ``start(again=True)`` still can)."""

        def work(session: Session) -> None:
            row = _existing(session, key)
            row.error, row.updated_at = error[:MAX_ERROR_CHARS], self._tx.clock()
            if restart or give_up:
                row.cursor = None
            if give_up:
                row.done_at = row.updated_at
            session.add(row)

        self._tx.write("hub_search_stopped", work)

    def unfinished(self, keys: Iterable[SearchKey]) -> list[SearchKey]:
        """Those of ``keys`` never started or not finished, in the order given."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return []

        def work(session: Session) -> set[tuple[int, str, str]]:
            artist_ids = {k.artist_id for k in wanted}
            rows = session.exec(
                select(HubSearch.artist_id, HubSearch.source, HubSearch.query)
                .where(col(HubSearch.artist_id).in_(artist_ids))
                .where(col(HubSearch.done_at).is_not(None))
            ).all()
            return {(a, s, q) for a, s, q in rows}

        done = self._tx.read("unfinished_hub_searches", work)
        return [k for k in wanted if (k.artist_id, k.source, k.query) not in done]

    def of_artist(self, artist_id: int) -> list[HubSearchRecord]:
        def work(session: Session) -> list[HubSearchRecord]:
            rows = session.exec(
                select(HubSearch)
                .where(HubSearch.artist_id == artist_id)
                .order_by(col(HubSearch.source), col(HubSearch.id))
            ).all()
            return [_record(r) for r in rows]

        return self._tx.read("hub_searches_of_artist", work)


def _row(session: Session, key: SearchKey) -> HubSearch | None:
    return session.exec(
        select(HubSearch).where(
            HubSearch.artist_id == key.artist_id,
            HubSearch.source == key.source,
            HubSearch.query == key.query,
        )
    ).first()


def _existing(session: Session, key: SearchKey) -> HubSearch:
    row = _row(session, key)
    if row is None:  # the artist was removed while its search ran
        raise StorageError(f"no hub search for artist #{key.artist_id} on {key.source}")
    return row


def _record(row: HubSearch) -> HubSearchRecord:
    return HubSearchRecord(
        key=SearchKey(row.artist_id, row.source, row.query),
        cursor=row.cursor,
        pages=row.pages,
        listed=row.listed,
        error=row.error,
        done_at=row.done_at,
        updated_at=row.updated_at,
    )
