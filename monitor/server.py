"""``stylewatch serve``: the embedded service in one process, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web
from sqlalchemy import text

from detectors.errors import ConfigError
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
    """Run the web app (and, as they are built, the pollers) until a stop signal."""
    web_settings = runtime.settings.web
    status = ServiceStatus(
        version=stylewatch_version(),
        database=safe_database_url(runtime.settings.database_url),
        sources=enabled_sources(runtime),
        store=runtime.store,
        ready=lambda: _database_ready(runtime),
    )
    runner = web.AppRunner(create_app(status), handle_signals=False, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, web_settings.host, web_settings.port)
        try:
            await site.start()
        except OSError as exc:
            where = f"{web_settings.host}:{web_settings.port}"
            raise ConfigError([f"web: cannot listen on {where}: {exc.strerror or exc}"]) from exc
        log.info(
            "stylewatch %s serving on http://%s:%d (database %s)",
            status.version,
            web_settings.host,
            web_settings.port,
            status.database,
        )
        await stop.wait()
        log.info("stylewatch shutting down")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
