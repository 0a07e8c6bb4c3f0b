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

from detectors.errors import StylewatchError
from monitor.build.sources import build_pollers, build_sources, create_session
from monitor.pipeline.poll import PollCounters, Poller, PollSummary
from monitor.runtime import Runtime
from monitor.services.schedules import add_hub_jobs, add_interval_job, new_scheduler
from monitor.sources.http import HttpClient, HttpPolicy

log = logging.getLogger(__name__)

FOLDER_INTERVAL_S = 60


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


def create_scheduler(
    pollers: Mapping[str, Poller], intervals: Mapping[str, int], scheduler: Any = None
) -> Any:
    """``scheduler`` (by default a new one, not started) with one interval job per poller,
    first run now (`monitor.services.schedules.add_interval_job`)."""
    scheduler = new_scheduler() if scheduler is None else scheduler
    for name, poller in pollers.items():
        interval = intervals.get(name, FOLDER_INTERVAL_S)
        add_interval_job(
            scheduler, f"poll:{name}", _scheduled_poll, [poller], interval, datetime.now(UTC)
        )
    return scheduler


def add_poll_jobs(
    scheduler: Any,
    runtime: Runtime,
    session: aiohttp.ClientSession,
    counters: PollCounters | None = None,
) -> PollCounters:
    """For ``serve``: poll every enabled source on its interval while ``scheduler`` runs,
    and run the hub history sweep and the takedown checks (`add_hub_jobs`).

    Returns the shared counters (for /metrics). When the scheduler stops, a poll in flight
    is cancelled; its next run resumes from the saved cursor.
    """
    counters = counters or PollCounters()
    sources = build_sources(runtime.settings, HttpClient(session))
    create_scheduler(build_pollers(runtime, sources, counters), intervals(runtime), scheduler)
    add_hub_jobs(scheduler, runtime, sources)
    return counters


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
