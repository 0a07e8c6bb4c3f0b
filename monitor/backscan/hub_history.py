"""Hub history: what the hubs already hold for an artist, found by searching them for the
artist's names and aliases, and recorded like any polled upload.

Each (artist, hub, query) search reads every page, through the hub's ``HttpClient`` (its
spacing, backoff and ``Retry-After``), and hands each page to a history ``Poller``
(hydrate, screen, record; findings marked back-scan). A page's position is saved only once
its uploads are recorded (`storage.hub_searches`), so a search interrupted by a fault or a
killed process goes on from that page next time, and a finished one is not repeated. A hub
that stays unavailable stops its own searches, never the others'.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from detectors.errors import SourceRejected, SourceUnavailable
from detectors.results import ArtistRef
from monitor.pipeline.poll import Poller, PollSummary
from monitor.sources.base import SearchableSource
from storage.hub_searches import HubSearches, SearchKey

log = logging.getLogger(__name__)

MAX_SEARCH_PAGES = 100  # per query: 10,000 models at Civitai's page size

# Called after each page: (source, query, pages read in this run, uploads found so far).
Progress = Callable[[str, str, int, int], None]


@dataclass(frozen=True, slots=True)
class HistorySummary:
    """What one run did on one hub. ``error`` says why its searches stopped early (the hub
    was unavailable, or refused a search); ``waiting``: searches left for the next run."""

    source: str
    searched: int = 0
    finished_before: int = 0
    pages: int = 0
    found: int = 0
    screened: int = 0
    flagged: int = 0
    failed: int = 0
    waiting: int = 0
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.waiting == 0


@dataclass(frozen=True, slots=True)
class _Run:
    pages: int = 0
    found: int = 0
    screened: int = 0
    flagged: int = 0
    failed: int = 0
    error: str | None = None
    unavailable: bool = False
    gave_up: bool = False

    def add(self, page: PollSummary) -> _Run:
        """This run with one more page screened."""
        return replace(
            self,
            pages=self.pages + 1,
            found=self.found + page.listed,
            screened=self.screened + page.screened,
            flagged=self.flagged + page.flagged,
            failed=self.failed + page.failed,
        )

    def merged(self, other: _Run) -> _Run:
        """The counts of both runs (faults are reported per search, not kept here)."""
        return _Run(
            self.pages + other.pages,
            self.found + other.found,
            self.screened + other.screened,
            self.flagged + other.flagged,
            self.failed + other.failed,
        )


def search_keys(
    artists: Sequence[ArtistRef], sources: Sequence[SearchableSource]
) -> list[SearchKey]:
    """Every search the artists' names and aliases need on these hubs (no repeats)."""
    keys = [
        SearchKey(artist.artist_id, source.name, term)
        for artist in artists
        for name in (artist.name, *artist.aliases)
        for source in sources
        for term in source.search_terms(name)
    ]
    return list(dict.fromkeys(keys))


class HubHistory:
    """Runs hub history searches; ``pollers`` are history pollers (``Poller(history=True)``)
    of searchable sources, by source name."""

    def __init__(
        self,
        sources: Sequence[SearchableSource],
        pollers: Mapping[str, Poller],
        searches: HubSearches,
        *,
        max_pages: int = MAX_SEARCH_PAGES,
    ) -> None:
        self.sources = tuple(sources)
        self._pollers, self._searches, self._max_pages = pollers, searches, max_pages

    async def unfinished(self, artists: Sequence[ArtistRef]) -> list[SearchKey]:
        """The searches these artists need that never ran or did not finish."""
        keys = search_keys(artists, self.sources)
        return await asyncio.to_thread(self._searches.unfinished, keys)

    async def run(
        self, keys: Sequence[SearchKey], *, again: bool = False, progress: Progress | None = None
    ) -> list[HistorySummary]:
        """Run (or resume) these searches, the hubs concurrently; ``again`` repeats finished
        ones. Raises ``StorageError`` when the database fails."""
        runs = [
            self._run_hub(source, [k for k in keys if k.source == source.name], again, progress)
            for source in self.sources
        ]
        return list(await asyncio.gather(*runs))

    async def _run_hub(
        self,
        source: SearchableSource,
        keys: Sequence[SearchKey],
        again: bool,
        progress: Progress | None,
    ) -> HistorySummary:
        total, searched, finished, left, error = _Run(), 0, 0, 0, None
        for number, key in enumerate(keys):
            record = await asyncio.to_thread(self._searches.start, key, again=again)
            if record.done:
                finished += 1
                continue
            searched += 1
            run = await self._search(source, key, record.cursor, total, progress)
            total, error = total.merged(run), run.error or error
            if run.unavailable:  # the hub is down: its other searches wait for the next run
                left += len(keys) - number
                break
            left += run.error is not None and not run.gave_up
        return HistorySummary(
            source=source.name,
            searched=searched,
            finished_before=finished,
            pages=total.pages,
            found=total.found,
            screened=total.screened,
            flagged=total.flagged,
            failed=total.failed,
            waiting=left,
            error=error,
        )

    async def _search(
        self,
        source: SearchableSource,
        key: SearchKey,
        cursor: str | None,
        before: _Run,
        progress: Progress | None,
    ) -> _Run:
        """One search from ``cursor`` to its last page, or to the first fault."""
        run = _Run()
        while True:
            try:
                page = await source.search(key.query, cursor)
            except SourceUnavailable as exc:
                return await self._stopped(key, run, str(exc), unavailable=True)
            except SourceRejected as exc:  # a stale cursor: start over; the query: give up
                first_page = cursor is None
                return await self._stopped(
                    key, run, str(exc), unavailable=False, restart=True, give_up=first_page
                )
            summary = await self._pollers[source.name].screen_found(page.uploads)
            if not summary.complete:
                return await self._stopped(key, run, summary.error or "", unavailable=True)
            run = run.add(summary)
            following = self._following(key, cursor, page.next, run.pages)
            await asyncio.to_thread(
                self._searches.page_done, key, cursor=following, listed=len(page.uploads)
            )
            if progress is not None:
                progress(source.name, key.query, before.pages + run.pages, before.found + run.found)
            if following is None:
                log.info(
                    "hub_history.search.done",
                    extra={"source": key.source, "artist_id": key.artist_id, "pages": run.pages},
                )
                return run
            cursor = following

    def _following(
        self, key: SearchKey, cursor: str | None, following: str | None, pages: int
    ) -> str | None:
        """The next page's position, or None to finish: on the last page, on a hub that
        names the same page again, or at the page cap."""
        if following is None or following == cursor:
            return None
        if pages >= self._max_pages:
            log.warning(
                "hub_history.search.capped",
                extra={"source": key.source, "artist_id": key.artist_id, "pages": pages},
            )
            return None
        return following

    async def _stopped(
        self,
        key: SearchKey,
        run: _Run,
        error: str,
        *,
        unavailable: bool,
        restart: bool = False,
        give_up: bool = False,
    ) -> _Run:
        await asyncio.to_thread(
            lambda: self._searches.stopped(key, error, restart=restart, give_up=give_up)
        )
        log.warning(
            "hub_history.search.stopped",
            extra={"source": key.source, "artist_id": key.artist_id, "reason": error},
        )
        return replace(run, error=error, unavailable=unavailable, gave_up=give_up)
