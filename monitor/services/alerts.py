"""Alert delivery as long-running services: the dispatcher's loop over the outbox
(`alert_delivery`, `alert_dispatcher`) and the weekly digest, a cron job of serve's one
scheduler (`add_digest_job`).

With the procrastinate backend, serve keeps only the digest's cron (without a dispatcher:
it writes the digests into the outbox) and the workers of the ``alerts`` queue deliver the
outbox (`alert_dispatcher`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from zoneinfo import ZoneInfo

from alerts.dispatcher import Dispatcher
from monitor.build.alerts import (
    build_dispatcher,
    create_webhook_session,
    digest_builder,
    sync_webhooks,
    utc_now,
)
from monitor.pipeline.alert import send_digests
from monitor.runtime import Runtime
from storage.outbox import OutboxStore

log = logging.getLogger(__name__)


@asynccontextmanager
async def alert_dispatcher(runtime: Runtime) -> AsyncIterator[Dispatcher]:
    """A dispatcher and its webhook session, the webhook subscriptions synced first."""
    await asyncio.to_thread(sync_webhooks, runtime)
    async with create_webhook_session() as session:
        yield build_dispatcher(runtime, session)


@asynccontextmanager
async def alert_delivery(runtime: Runtime, scheduler: Any) -> AsyncIterator[Dispatcher]:
    """For ``serve``: the dispatcher polls the outbox and the weekly digest runs on its
    cron (``[digest]``, a job of serve's one ``scheduler``) until the block exits. A send
    cut off by the exit is resent after its lease expires, with the same message id; on the
    embedded default (one process, so any lease left is a dead process's) it is resent at
    start-up instead."""
    if runtime.settings.is_embedded:
        released = await asyncio.to_thread(OutboxStore(runtime.engine).release_leases)
        if released:
            log.info("alerts: %d deliveries cut off by the last exit are due again", released)
    async with alert_dispatcher(runtime) as dispatcher:
        task = asyncio.create_task(dispatcher.run_forever(), name="alerts.dispatcher")
        add_digest_job(scheduler, runtime, dispatcher)
        try:
            yield dispatcher
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def add_digest_job(scheduler: Any, runtime: Runtime, dispatcher: Dispatcher | None) -> None:
    """The weekly digest on its cron (``[digest]``, in its time zone) while ``scheduler``
    runs; without a dispatcher it only writes the digests into the outbox."""
    digest = runtime.settings.digest
    scheduler.add_job(
        _digest_job,
        "cron",
        args=[runtime, dispatcher],
        day_of_week=digest.weekday,
        hour=digest.hour,
        minute=0,
        timezone=ZoneInfo(digest.timezone),
        id="digest:weekly",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=6 * 3600,
    )


async def _digest_job(runtime: Runtime, dispatcher: Dispatcher | None) -> None:
    try:
        added, _ = await send_digests(
            digest_builder(runtime), runtime.engine, dispatcher, utc_now()
        )
    except Exception:  # a scheduled job must not die silently: log it with its traceback
        log.exception("alerts.digest.failed")
        return
    log.info("alerts.digest.enqueued", extra={"count": added})
