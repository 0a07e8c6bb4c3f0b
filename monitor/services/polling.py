"""Running the pollers: one cycle for ``stylewatch poll --once``, or one APScheduler interval
job per enabled source inside ``stylewatch serve`` (never two runs of a source at once).

This is where the concrete sources are built from their settings sections, for the CLI
(the composition root) to call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from detectors.errors import ConfigError, StylewatchError
from monitor.build.hubs import add_hub_jobs
from monitor.pipeline.poll import PollCounters, Poller, PollSummary
from monitor.runtime import Runtime
from monitor.settings import Settings
from monitor.sources import SOURCE_NAMES
from monitor.sources.base import Source
from monitor.sources.civitai import CivitaiSource
from monitor.sources.folder import FolderSource
from monitor.sources.http import HttpClient, HttpPolicy
from monitor.sources.huggingface import HuggingFaceSource
from storage.source_state import SourceState

log = logging.getLogger(__name__)

FOLDER_INTERVAL_S = 60
CONNECTIONS_PER_PROCESS = 32


def create_session() -> aiohttp.ClientSession:
    """The process's one HTTP session (the caller owns it and closes it)."""
    connector = aiohttp.TCPConnector(limit=CONNECTIONS_PER_PROCESS, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, auto_decompress=False)


def build_sources(
    settings: Settings, http: HttpClient, names: Sequence[str] | None = None
) -> list[Source]:
    """The enabled sources, or exactly ``names`` (enabled or not). Raises ConfigError for
    an unknown name or a folder source without a path."""
    unknown = sorted(set(names or ()) - set(SOURCE_NAMES))
    if unknown:
        choices = ", ".join(SOURCE_NAMES)
        raise ConfigError([f"--source: unknown source {unknown[0]!r} (choose from {choices})"])
    config = settings.sources
    wanted = set(names) if names else {n for n in SOURCE_NAMES if _enabled(settings, n)}
    sources: list[Source] = []
    if "civitai" in wanted:
        sources.append(CivitaiSource(config.civitai, http))
    if "huggingface" in wanted:
        sources.append(HuggingFaceSource(config.huggingface, http))
    if "folder" in wanted:
        if config.folder.path is None:
            raise ConfigError(["sources.folder.path: set it to watch a folder"])
        sources.append(FolderSource(config.folder))
    return sources


def build_pollers(
    runtime: Runtime, sources: Sequence[Source], counters: PollCounters | None = None
) -> dict[str, Poller]:
    counters = counters or PollCounters()
    state = SourceState(runtime.engine)
    threshold = runtime.settings.screening.flag_threshold
    budget = runtime.settings.sources.max_bytes_per_upload
    return {
        s.name: Poller(
            s,
            runtime.store,
            state,
            threshold=threshold,
            counters=counters,
            max_bytes_per_upload=budget,
        )
        for s in sources
    }


async def poll_once(
    runtime: Runtime,
    source_names: Sequence[str] | None = None,
    *,
    session: aiohttp.ClientSession | None = None,
    policy: HttpPolicy | None = None,
    progress: Callable[[PollSummary], None] | None = None,
) -> list[PollSummary]:
    """One poll-screen cycle over the chosen (default: enabled) sources, concurrently.

    A hub that fails shows up in its summary (``complete`` False, ``error``); it never
    stops the others. ``progress`` is called as each source finishes.
    """
    async with _session(session) as live:
        http = HttpClient(live, policy)
        pollers = build_pollers(runtime, build_sources(runtime.settings, http, source_names))

        async def run(poller: Poller) -> PollSummary:
            summary = await poller.poll()
            if progress is not None:
                progress(summary)
            return summary

        return list(await asyncio.gather(*(run(p) for p in pollers.values())))


def create_scheduler(pollers: Mapping[str, Poller], intervals: Mapping[str, int]) -> Any:
    """An AsyncIOScheduler (not started) with one interval job per poller: first run now,
    ``max_instances=1`` and ``coalesce`` so a slow poll is never doubled or queued up."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    for name, poller in pollers.items():
        interval = intervals.get(name, FOLDER_INTERVAL_S)
        scheduler.add_job(
            _scheduled_poll,
            "interval",
            args=[poller],
            seconds=interval,
            id=f"poll:{name}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=interval,
            next_run_time=datetime.now(UTC),
        )
    return scheduler


@asynccontextmanager
async def scheduled_polling(
    runtime: Runtime, session: aiohttp.ClientSession, counters: PollCounters | None = None
) -> AsyncIterator[PollCounters]:
    """For ``serve``: poll every enabled source on its interval until the block exits, and
    run the hub history sweep and the takedown checks (`monitor.build.hubs`).

    Yields the shared counters (for /metrics). On exit the scheduler stops and a poll in
    flight is cancelled; its next run resumes from the saved cursor.
    """
    counters = counters or PollCounters()
    sources = build_sources(runtime.settings, HttpClient(session))
    scheduler = create_scheduler(build_pollers(runtime, sources, counters), intervals(runtime))
    add_hub_jobs(scheduler, runtime, sources)
    scheduler.start()
    try:
        yield counters
    finally:
        scheduler.shutdown(wait=False)


def intervals(runtime: Runtime) -> dict[str, int]:
    config = runtime.settings.sources
    return {
        "civitai": config.civitai.interval,
        "huggingface": config.huggingface.interval,
        "folder": FOLDER_INTERVAL_S,
    }


async def _scheduled_poll(poller: Poller) -> None:
    try:
        summary = await poller.poll()
    except StylewatchError as exc:  # storage trouble: logged, the next run tries again
        log.warning("poll.failed", extra={"source": poller.name, "reason": str(exc)})
        return
    log.info(
        "poll.done",
        extra={"source": summary.source, "screened": summary.screened, "failed": summary.failed},
    )


def _enabled(settings: Settings, name: str) -> bool:
    enabled: bool = getattr(settings.sources, name).enabled
    return enabled


@asynccontextmanager
async def _session(given: aiohttp.ClientSession | None) -> AsyncIterator[aiohttp.ClientSession]:
    if given is not None:
        yield given
        return
    session = create_session()
    try:
        yield session
    finally:
        await session.close()
