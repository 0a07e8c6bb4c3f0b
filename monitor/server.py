"""``stylewatch serve``: the embedded service in one process, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web
from sqlalchemy import text

from detectors.errors import ConfigError
from monitor.alert_service import alert_delivery
from monitor.polling import PollCounters
from monitor.polling_service import create_session, scheduled_polling
from monitor.probe_worker import probe_working
from monitor.runtime import Runtime, safe_database_url, stylewatch_version
from monitor.web.app import ServiceStatus, create_app

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


async def serve(runtime: Runtime) -> None:
    """Run the web app and the pollers until SIGINT or SIGTERM."""
    host, port = runtime.settings.web.host, runtime.settings.web.port
    status = ServiceStatus(
        version=stylewatch_version(),
        database=safe_database_url(runtime.settings.database_url),
        sources=enabled_sources(runtime),
        store=runtime.store,
        ready=lambda: _database_ready(runtime),
        runtime=runtime,
    )
    counters = PollCounters()
    status.metrics.watch_polling(counters)
    runner = web.AppRunner(create_app(status), handle_signals=False, access_log=None)
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
        async with (
            create_session() as session,
            scheduled_polling(runtime, session, counters),
            probe_working(runtime, session, observe=status.metrics.probe_seconds.observe),
            alert_delivery(runtime),
        ):
            await _wait_for_stop_signal()
        log.info("stylewatch shutting down")
    finally:
        await runner.cleanup()


async def _start_site(runner: web.AppRunner, host: str, port: int) -> None:
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        raise ConfigError([f"web: cannot listen on {host}:{port}: {exc.strerror or exc}"]) from exc


async def _wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
