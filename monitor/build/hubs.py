"""Building the hub history search and the takedown checker from the settings, and their
slow jobs in ``serve``'s scheduler: a sweep that starts or finishes the hub searches of
artists registered (or given aliases) anywhere, the portal included, and the takedown
checks. Both jobs read their work from the database, so a restart repeats nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.errors import StylewatchError
from monitor.backscan.hub_history import HubHistory
from monitor.pipeline.poll import Poller
from monitor.pipeline.takedown import TakedownChecker
from monitor.runtime import Runtime
from monitor.sources.base import CheckableSource, SearchableSource, Source
from storage.hub_searches import HubSearches
from storage.source_state import SourceState
from storage.takedowns import Takedowns

log = logging.getLogger(__name__)

FIRST_RUN_DELAY_S = 60  # after serve's first polls
TAKEDOWN_JOB_EVERY_S = 3600  # each run checks only the uploads due


def build_history(runtime: Runtime, sources: Sequence[Source]) -> HubHistory | None:
    """The hub history search over the searchable ones of ``sources`` (None: none is)."""
    searchable = [s for s in sources if isinstance(s, SearchableSource)]
    if not searchable:
        return None
    state = SourceState(runtime.engine)
    threshold = runtime.settings.screening.flag_threshold
    budget = runtime.settings.sources.max_bytes_per_upload
    pollers = {
        s.name: Poller(
            s,
            runtime.store,
            state,
            threshold=threshold,
            history=True,
            max_bytes_per_upload=budget,
        )
        for s in searchable
    }
    return HubHistory(
        searchable,
        pollers,
        HubSearches(runtime.engine),
        max_pages=runtime.settings.hub_history.max_pages,
    )


def build_checker(runtime: Runtime, sources: Sequence[Source]) -> TakedownChecker:
    checkable = {s.name: s for s in sources if isinstance(s, CheckableSource)}
    return TakedownChecker(
        checkable, Takedowns(runtime.engine), interval_s=runtime.settings.takedown.interval
    )


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
        _add(
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
        _add(scheduler, "takedowns", _check_takedowns, [checker], every, start)
        added.append("takedowns")
    return added


def _add(
    scheduler: Any, name: str, job: Any, args: list[Any], every_s: int, start: datetime
) -> None:
    scheduler.add_job(
        job,
        "interval",
        args=args,
        seconds=every_s,
        id=name,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=every_s,
        next_run_time=start,
    )


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
