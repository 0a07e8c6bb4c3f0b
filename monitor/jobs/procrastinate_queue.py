"""The procrastinate adapter of the ``JobQueue`` port (``[queue] backend = "procrastinate"``).

Jobs live in PostgreSQL, in procrastinate's tables beside ours (``stylewatch db upgrade``
creates them), so any number of ``stylewatch worker`` processes share them. Two tasks:

- ``stylewatch.probe`` on the ``probe`` queue: probe one upload. Its queueing lock and its
  lock are both ``probe:<upload pk>``, so an upload waits in the queue at most once and is
  never probed by two workers at the same time; `ProcrastinateQueue.enqueue` also skips an
  upload whose job is running. The body does nothing for an upload no longer waiting.
- ``stylewatch.deliver_alerts`` on the ``alerts`` queue: one round of outbox delivery,
  deferred by the workers every ``[alerts] poll_interval_s`` (one waiting at a time). The
  outbox's own leases keep each delivery exactly-once, whichever worker runs it.

Screening is not a job: it stays inline in serve's pollers, because it reads the header
bytes the poller has just fetched (a screening job would have to store or fetch them again).

A failing job is retried with exponential backoff (`Backoff`); a job cut off by a worker's
shutdown is put back at once. Jobs of a worker that died (no heartbeat for
``[queue] stalled_after_s``) are put back by `retry_stalled_jobs`, which every worker runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import LiteralString

from procrastinate import App, BaseRetryStrategy, PsycopgConnector, RetryDecision
from procrastinate import exceptions as pexc
from procrastinate.jobs import Job, Status
from sqlalchemy.engine import make_url

from detectors.errors import StorageError
from monitor.jobs.queue import Stage
from monitor.runtime import Runtime, safe_database_url
from monitor.settings import Settings
from storage.job_tables import job_schema_present

log = logging.getLogger(__name__)

PROBE_QUEUE = "probe"
ALERTS_QUEUE = "alerts"
QUEUES = (PROBE_QUEUE, ALERTS_QUEUE)
PROBE_TASK = "stylewatch.probe"
DELIVER_TASK = "stylewatch.deliver_alerts"
_STAGE_TASKS: dict[Stage, str] = {"probe": PROBE_TASK}
# A job is tried this many times (stalls included) before it is left failed.
MAX_ATTEMPTS = 6
RETRY_BASE_S = 10.0
RETRY_CAP_S = 600.0
DELIVER_MAX_ATTEMPTS = 3
POOL_CONNECTIONS = 4  # besides one per concurrent job
_BUSY_SQL: LiteralString = (
    "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs"
    " WHERE (queueing_lock = %(lock)s AND status = 'todo')"
    " OR (lock = %(lock)s AND status = 'doing')) AS busy"
)


@dataclass(frozen=True, slots=True)
class JobHandlers:
    """What the tasks run in this process; None where this process runs no such job (a
    process only listens to the queues it has handlers for)."""

    probe: Callable[[int], Awaitable[object]] | None = None
    deliver: Callable[[], Awaitable[object]] | None = None


@dataclass(frozen=True, slots=True)
class Backoff(BaseRetryStrategy):
    """base, 2×base, 4×base, … up to cap seconds, ``max_attempts`` tries in all. A job
    cut off by its worker's shutdown goes back to the queue at once (it did not fail)."""

    max_attempts: int = MAX_ATTEMPTS
    base_s: float = RETRY_BASE_S
    cap_s: float = RETRY_CAP_S

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if is_release(exception):
            return RetryDecision(retry_in={"seconds": 0})
        if job.attempts + 1 >= self.max_attempts:
            return None
        return RetryDecision(retry_in={"milliseconds": round(1000 * self.delay_s(job.attempts))})

    def delay_s(self, attempts: int) -> float:
        return float(min(self.cap_s, self.base_s * 2**attempts))


def is_release(exception: BaseException) -> bool:
    """Whether a job ended because its worker is shutting down (not a failure)."""
    return isinstance(exception, asyncio.CancelledError | pexc.JobAborted)


def conninfo(database_url: str) -> str:
    """The libpq connection string for the SQLAlchemy URL of ``[database] url``."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def deliver_cron(poll_interval_s: float) -> str:
    """A procrastinate cron line (seconds in the sixth field) firing about every
    ``poll_interval_s`` seconds."""
    seconds = max(1, round(poll_interval_s))
    if seconds < 60:
        return f"* * * * * */{seconds}"
    return f"*/{min(59, max(1, round(seconds / 60)))} * * * *"


def build_app(settings: Settings, handlers: JobHandlers | None = None) -> App:
    """The procrastinate App on ``[database] url`` with stylewatch's tasks; the tasks run
    ``handlers`` (a process that only enqueues passes none)."""
    run = handlers or JobHandlers()
    connector = PsycopgConnector(
        conninfo=conninfo(settings.database_url),
        min_size=1,
        max_size=POOL_CONNECTIONS + settings.queue.concurrency,
    )
    app = App(connector=connector)

    @app.task(name=PROBE_TASK, queue=PROBE_QUEUE, retry=Backoff())
    async def probe(upload_pk: int) -> None:
        if run.probe is None:
            raise RuntimeError("this process does not run probe jobs")
        await run.probe(upload_pk)

    @app.periodic(cron=deliver_cron(settings.alerts.poll_interval_s), periodic_id="outbox")
    @app.task(
        name=DELIVER_TASK,
        queue=ALERTS_QUEUE,
        queueing_lock="alerts:deliver",
        retry=Backoff(max_attempts=DELIVER_MAX_ATTEMPTS, base_s=5.0, cap_s=60.0),
    )
    async def deliver_alerts(timestamp: int) -> None:
        if run.deliver is None:
            raise RuntimeError("this process does not deliver alerts")
        await run.deliver()

    return app


@contextlib.asynccontextmanager
async def open_app(runtime: Runtime, handlers: JobHandlers | None = None) -> AsyncIterator[App]:
    """The App, connected, while the block runs. Raises StorageError (one line) when the
    job tables are missing or the database cannot be reached."""
    if not await asyncio.to_thread(job_schema_present, runtime.engine):
        raise StorageError("the job queue tables are missing: run `stylewatch db upgrade` first")
    app = build_app(runtime.settings, handlers)
    try:
        await app.open_async()
    except Exception as exc:  # psycopg_pool's PoolTimeout, or a refused connection
        where = safe_database_url(runtime.settings.database_url)
        raise StorageError(f"cannot reach the job queue database {where}: {exc}") from exc
    try:
        yield app
    finally:
        await app.close_async()


class ProcrastinateQueue:
    """The ``JobQueue`` port on procrastinate (producer side: serve's sweep)."""

    def __init__(self, app: App) -> None:
        self._app = app

    async def enqueue(self, stage: Stage, upload_pk: int) -> bool:
        lock = f"{stage}:{upload_pk}"
        try:
            busy = await self._app.connector.execute_query_one_async(query=_BUSY_SQL, lock=lock)
            if busy["busy"]:
                return False
            deferrer = self._app.configure_task(
                _STAGE_TASKS[stage], allow_unknown=False, lock=lock, queueing_lock=lock
            )
            await deferrer.defer_async(upload_pk=upload_pk)
        except pexc.AlreadyEnqueued:
            return False
        except pexc.ConnectorException as exc:
            raise StorageError(f"cannot queue the {stage} job: {exc.__cause__ or exc}") from exc
        return True


async def retry_stalled_jobs(
    app: App,
    stalled_after_s: float,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    abandon: Callable[[Job], Awaitable[None]] | None = None,
) -> int:
    """Put the running jobs of dead workers (no heartbeat for ``stalled_after_s``) back in
    their queue; returns how many. A job that has stalled its workers ``max_attempts``
    times (a file that crashes the probe) is left failed and handed to ``abandon``."""
    manager = app.job_manager
    retried = 0
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_s):
        try:
            if job.attempts + 1 >= max_attempts:
                await manager.finish_job(job, status=Status.FAILED, delete_job=False)
                log.warning("jobs.stalled.abandoned", extra=_job_extra(job))
                if abandon is not None:
                    await abandon(job)
                continue
            await manager.retry_job(job)
        except pexc.UniqueViolation:  # a newer job for the same thing is already waiting
            await manager.finish_job(job, status=Status.ABORTED, delete_job=False)
            continue
        except pexc.ConnectorException:  # another worker put it back first
            continue
        retried += 1
        log.warning("jobs.stalled.retried", extra=_job_extra(job))
    await manager.prune_stalled_workers(stalled_after_s)
    return retried


def _job_extra(job: Job) -> dict[str, object]:
    return {
        "task": job.task_name,
        "job_id": job.id,
        "attempts": job.attempts,
        "upload_pk": job.task_kwargs.get("upload_pk"),
    }
