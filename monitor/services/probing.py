"""The probe worker as a long-running service: built on the configured base models and hubs
(`probe_worker`), and run in ``serve`` on the embedded default (`probe_working`).

The stage itself (what one probe job does, the sweep that queues them) is
`monitor.pipeline.probe_worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp

from monitor.build.probe import build_prober
from monitor.build.sources import build_sources
from monitor.jobs.queue import InProcessQueue
from monitor.pipeline.probe_worker import ProbeWorker
from monitor.runtime import Runtime
from monitor.sources.http import HttpClient

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def probe_worker(
    runtime: Runtime,
    session: aiohttp.ClientSession,
    *,
    queue: InProcessQueue | None = None,
    observe: Callable[[float], None] | None = None,
) -> AsyncIterator[ProbeWorker]:
    """A ProbeWorker on the configured base models and hubs; its probe thread is joined on
    exit (a probe still drawing is waited for, its result dropped)."""

    prober = build_prober(runtime)
    try:
        sources = {s.name: s for s in build_sources(runtime.settings, HttpClient(session))}
        yield ProbeWorker(runtime, prober, sources, queue, observe=observe)
    finally:
        await asyncio.to_thread(prober.close)


@contextlib.asynccontextmanager
async def probe_working(
    runtime: Runtime,
    session: aiohttp.ClientSession,
    *,
    observe: Callable[[float], None] | None = None,
) -> AsyncIterator[ProbeWorker | None]:
    """For ``serve`` on the embedded default: the probe worker runs while the block does
    (None when no base model is configured). On exit the probe in flight is abandoned; its
    upload stays "probing" and the next start's first sweep probes it again."""
    if not runtime.settings.probe.base_models:
        yield None
        return
    interval_s = runtime.settings.queue.sweep_interval_s
    async with probe_worker(runtime, session, observe=observe) as worker:
        task = asyncio.create_task(worker.run(interval_s), name="probe-worker")
        try:
            yield worker
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
