"""The one scheduler of ``stylewatch serve`` and its slow jobs.

serve builds one APScheduler (`new_scheduler`), each service adds its jobs to it (the polls,
`monitor.services.polling`; the weekly digest, `monitor.services.alerts`; here the hub
history sweep and the takedown checks) and `running` starts it once they all are in. Every
interval job runs with ``max_instances=1`` and ``coalesce`` (`add_interval_job`): a slow run
is never doubled or queued up. The hub jobs read their work from the database, so a restart
repeats nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from detectors.errors import StylewatchError
from monitor.backscan.hub_history import HubHistory
from monitor.build.hubs import build_checker, build_history
from monitor.pipeline.takedown import TakedownChecker
from monitor.runtime import Runtime
from monitor.sources.base import Source

log = logging.getLogger(__name__)


__all__ = [
    "FIRST_RUN_DELAY_S",
    "TAKEDOWN_JOB_EVERY_S",
    "add_hub_jobs",
    "add_interval_job",
    "new_scheduler",
    "running",
    "sweep_history",
]

FIRST_RUN_DELAY_S = 60  # after serve's first polls


TAKEDOWN_JOB_EVERY_S = 3600  # each run checks only the uploads due


def new_scheduler() -> AsyncIOScheduler:
    """The scheduler (not started), in UTC; a job with a local time names its own zone."""
    return AsyncIOScheduler(timezone=UTC)


def add_interval_job(
    scheduler: Any,
    job_id: str,
    job: Callable[..., Awaitable[None]],
    args: list[Any],
    every_s: int,
    start: datetime,
) -> None:
    """``job(*args)`` every ``every_s`` seconds from ``start``, never two runs at once and
    missed runs coalesced into one."""
    scheduler.add_job(
        job,
        "interval",
        args=args,
        seconds=every_s,
        id=job_id,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=every_s,
        next_run_time=start,
    )


@asynccontextmanager
async def running(scheduler: Any) -> AsyncIterator[None]:
    """The scheduler runs while the block does; on exit a job in flight is cancelled."""
    scheduler.start()
    try:
        yield
    finally:
        scheduler.shutdown(wait=False)


async def sweep_history(history: HubHistory, runtime: Runtime, limit: int) -> int:
    """Run up to ``limit`` unfinished hub searches of the registered artists; how many ran."""
    artists = await asyncio.to_thread(runtime.store.artist_refs)
    keys = (await history.unfinished(artists))[:limit]
    if keys:
        summaries = await history.run(keys)
        for s in summaries:
            log.info(
                "hub_history.sweep.done",
                extra={"source": s.source, "screened": s.screened, "waiting": s.waiting},
            )
    return len(keys)


def add_hub_jobs(scheduler: Any, runtime: Runtime, sources: Sequence[Source]) -> list[str]:
    """Add the hub history sweep and the takedown checks (when enabled) to ``scheduler``;
    the ids of the jobs added."""
    added: list[str] = []
    start = datetime.now(UTC) + timedelta(seconds=FIRST_RUN_DELAY_S)
    config = runtime.settings
    history = build_history(runtime, sources) if config.hub_history.enabled else None
    if history is not None:
        limit = config.hub_history.searches_per_sweep
        add_interval_job(
            scheduler,
            "hub_history",
            _sweep,
            [history, runtime, limit],
            config.hub_history.interval,
            start,
        )
        added.append("hub_history")
    if config.takedown.enabled:
        checker = build_checker(runtime, sources)
        every = min(config.takedown.interval, TAKEDOWN_JOB_EVERY_S)
        add_interval_job(scheduler, "takedowns", _check_takedowns, [checker], every, start)
        added.append("takedowns")
    return added


async def _sweep(history: HubHistory, runtime: Runtime, limit: int) -> None:
    try:
        await sweep_history(history, runtime, limit)
    except StylewatchError as exc:  # storage trouble: logged, the next sweep tries again
        log.warning("hub_history.sweep.failed", extra={"reason": str(exc)})


async def _check_takedowns(checker: TakedownChecker) -> None:
    try:
        summary = await checker.check_due()
    except StylewatchError as exc:
        log.warning("takedown.run.failed", extra={"reason": str(exc)})
        return
    log.info(
        "takedown.run.done",
        extra={"checked": summary.checked, "gone": summary.gone, "errors": summary.errors},
    )
