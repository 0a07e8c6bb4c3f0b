"""``stylewatch serve``: the web UI, the pollers and the pipeline's background work, until
SIGINT or SIGTERM.

On the embedded default the probe worker and alert delivery run here too; with the
procrastinate backend serve queues probe jobs for ``stylewatch worker`` processes instead
(``--with-worker`` runs one here as well)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import text

from detectors.errors import ConfigError, StorageError
from monitor.backscan.service import Backscans
from monitor.build.sources import create_session
from monitor.pipeline.poll import PollCounters
from monitor.runtime import Runtime, safe_database_url, stylewatch_version
from monitor.services.alerts import alert_delivery
from monitor.services.polling import add_poll_jobs
from monitor.services.probing import probe_working
from monitor.services.schedules import new_scheduler, running
from monitor.services.signals import wait_for_stop_signal
from monitor.web.app import ServiceStatus, create_app
from monitor.web.metrics import WebMetrics
from monitor.web.portal_pages import BACKSCANS_KEY

log = logging.getLogger(__name__)


def enabled_sources(runtime: Runtime) -> tuple[str, ...]:
    sources = runtime.settings.sources
    names = []
    if sources.civitai.enabled:
        names.append("civitai")
    if sources.huggingface.enabled:
        names.append("huggingface")
    if sources.folder.enabled:
        names.append("folder")
    return tuple(names)


def _database_ready(runtime: Runtime) -> bool:
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"; /readyz reports it
        log.warning("readyz: database check failed: %s", type(exc).__name__)
        return False
    return True


def _blobs_problem(runtime: Runtime) -> str | None:
    try:
        runtime.blobs.check()
    except StorageError as exc:  # one line, no secrets; /readyz shows it
        log.warning("readyz: blob store check failed: %s", exc)
        return str(exc)
    return None


async def serve(runtime: Runtime, *, with_worker: bool = False) -> None:
    """Run the web app and the pollers until SIGINT or SIGTERM; ``with_worker`` also runs
    a job worker here (procrastinate backend; the embedded default always probes here)."""
    host, port = runtime.settings.web.host, runtime.settings.web.port
    status = ServiceStatus(
        version=stylewatch_version(),
        database=safe_database_url(runtime.settings.database_url),
        sources=enabled_sources(runtime),
        store=runtime.store,
        ready=lambda: _database_ready(runtime),
        runtime=runtime,
        blobs_problem=lambda: _blobs_problem(runtime),
    )
    counters = PollCounters()
    status.metrics.watch_polling(counters)
    app = create_app(status)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await _start_site(runner, host, port)
        log.info(
            "stylewatch %s serving on http://%s:%d (database %s, polling %s)",
            status.version,
            host,
            port,
            status.database,
            ", ".join(status.sources) or "nothing",
        )
        scheduler = new_scheduler()  # the one scheduler: polls, hub jobs, the digest
        async with create_session() as session:
            add_poll_jobs(scheduler, runtime, session, counters)
            async with (
                background_work(
                    runtime,
                    session,
                    status.metrics,
                    app[BACKSCANS_KEY],
                    scheduler,
                    with_worker=with_worker,
                ),
                running(scheduler),
            ):
                await wait_for_stop_signal()
        log.info("stylewatch shutting down")
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def background_work(
    runtime: Runtime,
    session: aiohttp.ClientSession,
    metrics: WebMetrics,
    backscans: Backscans,
    scheduler: Any,
    *,
    with_worker: bool,
) -> AsyncIterator[None]:
    """Probing and alert delivery in this process, or (procrastinate) queueing them. The
    web UI's style back-scans run on this process's probe thread while there is one."""
    if runtime.settings.queue.backend == "procrastinate":
        from monitor.services.worker import queued_work

        async with queued_work(
            runtime, session, metrics, with_worker=with_worker, scheduler=scheduler
        ):
            yield
        return
    async with (
        probe_working(runtime, session, observe=metrics.probe_seconds.observe) as worker,
        alert_delivery(runtime, scheduler),
    ):
        backscans.use_prober(worker.prober if worker is not None else None)
        try:
            yield
        finally:
            backscans.use_prober(None)


async def _start_site(runner: web.AppRunner, host: str, port: int) -> None:
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        raise ConfigError([f"web: cannot listen on {host}:{port}: {exc.strerror or exc}"]) from exc
