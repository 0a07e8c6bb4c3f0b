"""The job workers of the procrastinate backend: ``stylewatch worker``, serve's side of the
queue (`queued_work`: sweep and enqueue, optionally with a local worker).

A worker process runs one procrastinate ``Worker`` per queue it serves: the ``probe`` queue
one job at a time (the process's one probe thread owns the GPU: run one process per GPU),
the ``alerts`` queue ``[queue] concurrency`` at a time. Beside them a janitor puts the jobs
of dead workers (no heartbeat for ``[queue] stalled_after_s``) back in their queue.

On SIGTERM or SIGINT the workers take no new job, the running ones get
``[queue] shutdown_grace_s`` seconds to finish and are then put back in the queue, and the
process exits 0. A SIGKILL loses nothing either: the job's row stays "doing" until the
janitor of another worker sees the heartbeat stop, and its body is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from procrastinate import App, JobContext
from procrastinate.jobs import Job
from procrastinate.middleware import AsyncCallNext
from procrastinate.worker import Worker

from detectors.errors import ConfigError, StorageError
from monitor.build.sources import create_session
from monitor.jobs.procrastinate_queue import (
    ALERTS_QUEUE,
    PROBE_QUEUE,
    PROBE_TASK,
    QUEUES,
    JobHandlers,
    ProcrastinateQueue,
    is_release,
    open_app,
    retry_stalled_jobs,
)
from monitor.pipeline.probe_worker import sweeping
from monitor.pipeline.states import move
from monitor.runtime import Runtime, safe_database_url
from monitor.services.alerts import add_digest_job, alert_dispatcher
from monitor.services.probing import probe_worker
from monitor.services.schedules import new_scheduler, running
from monitor.services.signals import stop_on_signals
from monitor.settings import Settings
from monitor.web.metrics import JobMetrics, WebMetrics, metrics_app

log = logging.getLogger(__name__)

FETCH_POLL_CAP_S = 5.0  # new jobs come by LISTEN/NOTIFY; retried ones by this poll
READY_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """Which queues this process serves and how many alert jobs it runs at once."""

    queues: tuple[str, ...]
    concurrency: int


def plan_queues(settings: Settings, queues: str | None, concurrency: int | None) -> WorkerPlan:
    """The plan for ``--queues`` (comma-separated) and ``--concurrency``; by default the
    alerts queue, and the probe queue when ``[probe] base_models`` is set. Raises
    ConfigError (one line) for an unknown queue or a probe queue without base models."""
    if queues is None:
        chosen = [PROBE_QUEUE] if settings.probe.base_models else []
        chosen.append(ALERTS_QUEUE)
    else:
        chosen = list(dict.fromkeys(q.strip() for q in queues.split(",") if q.strip()))
    unknown = [q for q in chosen if q not in QUEUES]
    if unknown or not chosen:
        raise ConfigError(
            [
                f"--queues: unknown queue {unknown[0] if unknown else queues!r} (choose from "
                f"{', '.join(QUEUES)}; screening runs inside serve's pollers)"
            ]
        )
    if PROBE_QUEUE in chosen and not settings.probe.base_models:
        raise ConfigError(["--queues: the probe queue needs [probe] base_models on this host"])
    return WorkerPlan(tuple(chosen), concurrency or settings.queue.concurrency)


async def run_worker_process(runtime: Runtime, plan: WorkerPlan, metrics_port: int) -> None:
    """``stylewatch worker``: run the plan's queues until SIGTERM or SIGINT."""
    metrics = WebMetrics()
    metrics.watch_jobs(runtime.engine, runtime.settings.queue.stalled_after_s)
    stop, ready = asyncio.Event(), asyncio.Event()
    async with (
        _metrics_site(metrics, ready, runtime.settings.queue.metrics_host, metrics_port),
        stop_on_signals(stop),
        create_session() as session,
        job_handlers(runtime, session, plan.queues, metrics) as handlers,
        open_app(runtime, handlers) as app,
    ):
        log.info(
            "stylewatch worker on %s (database %s)",
            ", ".join(plan.queues),
            safe_database_url(runtime.settings.database_url),
        )
        await work(app, runtime, plan, metrics.jobs, stop, ready)
    log.info("stylewatch worker stopped")


@contextlib.asynccontextmanager
async def queued_work(
    runtime: Runtime,
    session: aiohttp.ClientSession,
    metrics: WebMetrics,
    *,
    with_worker: bool,
    scheduler: Any = None,
) -> AsyncIterator[None]:
    """For ``serve`` on procrastinate: sweep waiting uploads into the probe queue and write
    the weekly digests into the outbox (a job of serve's one ``scheduler``; without one, a
    scheduler of its own runs while the block does); ``with_worker`` also runs a worker on
    every queue here (what the embedded default does in-process)."""
    settings = runtime.settings
    metrics.watch_jobs(runtime.engine, settings.queue.stalled_after_s)
    plan = plan_queues(settings, None, None) if with_worker else WorkerPlan((), 0)
    stop = asyncio.Event()
    own = scheduler is None
    scheduler = new_scheduler() if scheduler is None else scheduler
    add_digest_job(scheduler, runtime, None)
    async with (
        job_handlers(runtime, session, plan.queues, metrics) as handlers,
        open_app(runtime, handlers) as app,
        running(scheduler) if own else contextlib.nullcontext(),
    ):
        tasks = []
        if settings.probe.base_models:
            queue = ProcrastinateQueue(app)
            interval_s = settings.queue.sweep_interval_s
            tasks.append(asyncio.create_task(sweeping(runtime, queue, interval_s)))
        local = None
        if plan.queues:
            local = asyncio.create_task(work(app, runtime, plan, metrics.jobs, stop))
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if local is not None:
                await _finish_local(local)


async def _finish_local(local: asyncio.Task[None]) -> None:
    """Wait for serve's local worker to shut down; a worker that had stopped on its own
    (it lost the database) is reported, serve itself goes on stopping."""
    try:
        await local
    except StorageError as exc:
        log.error("worker.lost", extra={"reason": str(exc)})


@contextlib.asynccontextmanager
async def job_handlers(
    runtime: Runtime, session: aiohttp.ClientSession, queues: Sequence[str], metrics: WebMetrics
) -> AsyncIterator[JobHandlers]:
    """What the jobs of ``queues`` run in this process, built for the block."""
    async with contextlib.AsyncExitStack() as stack:
        probe = deliver = None
        if PROBE_QUEUE in queues:
            observe = metrics.probe_seconds.observe
            worker = await stack.enter_async_context(
                probe_worker(runtime, session, observe=observe)
            )
            probe = worker.probe_job
        if ALERTS_QUEUE in queues:
            dispatcher = await stack.enter_async_context(alert_dispatcher(runtime))
            deliver = dispatcher.run_once
        yield JobHandlers(probe=probe, deliver=deliver)


async def work(
    app: App,
    runtime: Runtime,
    plan: WorkerPlan,
    metrics: JobMetrics,
    stop: asyncio.Event,
    ready: asyncio.Event | None = None,
) -> None:
    """Run one procrastinate Worker per queue and the janitor until ``stop`` is set, then
    shut them down gracefully; ``ready`` is set once every worker is registered (taking
    jobs). Raises StorageError when a worker ends on its own (it lost the database), so
    that the process exits for its supervisor to restart it."""
    workers = [_worker(app, runtime, queue, plan, metrics) for queue in plan.queues]
    runs = [asyncio.create_task(_run(w), name=f"worker:{w.worker_name}") for w in workers]
    sides = [
        asyncio.create_task(_janitor(app, runtime, metrics), name="worker:janitor"),
        asyncio.create_task(_mark_ready(workers, ready or asyncio.Event())),
    ]
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([stopped, *runs], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in workers:
            w.stop()  # type: ignore[no-untyped-call]  # procrastinate leaves it unannotated
        for task in [*sides, stopped]:
            task.cancel()
        results = await asyncio.gather(*runs, *sides, return_exceptions=True)
    if not stop.is_set():
        failures = [r for r in results if isinstance(r, Exception)]
        reason = f": {failures[0]}" if failures else ""
        raise StorageError(f"worker: a job worker stopped on its own{reason}")


async def _mark_ready(workers: Sequence[Worker], ready: asyncio.Event) -> None:
    # procrastinate signals nothing when a worker has registered: watch for its id.
    while True:
        if all(w.worker_id is not None for w in workers):
            break
        await asyncio.sleep(READY_POLL_S)
    ready.set()
    log.info("worker.ready", extra={"queues": ",".join(str(w.worker_name) for w in workers)})


async def _run(worker: Worker) -> None:
    await worker.run()  # type: ignore[no-untyped-call]  # procrastinate leaves it unannotated


def _worker(
    app: App, runtime: Runtime, queue: str, plan: WorkerPlan, metrics: JobMetrics
) -> Worker:
    config = runtime.settings.queue
    return Worker(
        app=app,
        queues=[queue],
        name=queue,
        concurrency=1 if queue == PROBE_QUEUE else plan.concurrency,
        fetch_job_polling_interval=min(FETCH_POLL_CAP_S, config.heartbeat_s),
        shutdown_graceful_timeout=config.shutdown_grace_s,
        delete_jobs="successful",
        install_signal_handlers=False,
        update_heartbeat_interval=config.heartbeat_s,
        stalled_worker_timeout=config.stalled_after_s,
        worker_middleware=[_Measured(metrics)],
    )


class _Measured:
    """Counts each job's outcome and latency, and logs retries (procrastinate's own
    per-job lines are turned down to warnings by the CLI)."""

    def __init__(self, metrics: JobMetrics) -> None:
        self._metrics = metrics

    async def __call__(self, call_next: AsyncCallNext, context: JobContext, worker: Any) -> Any:
        job = context.job
        started = time.monotonic()
        try:
            result = await call_next()
        except BaseException as exc:
            outcome = _outcome(context, exc)
            self._metrics.record(job.queue, outcome, time.monotonic() - started)
            level = logging.INFO if outcome == "released" else logging.WARNING
            log.log(level, "job.%s", outcome, extra=_extra(job, f"{type(exc).__name__}: {exc}"))
            raise
        self._metrics.record(job.queue, "done", time.monotonic() - started)
        return result


def _outcome(context: JobContext, exc: BaseException) -> str:
    if is_release(exc):
        return "released"
    strategy = context.task.retry_strategy
    again = strategy.get_retry_exception(exception=exc, job=context.job) if strategy else None
    return "retried" if again is not None else "failed"


def _extra(job: Job, reason: str) -> dict[str, object]:
    return {
        "task": job.task_name,
        "job_id": job.id,
        "attempts": job.attempts,
        "upload_pk": job.task_kwargs.get("upload_pk"),
        "reason": reason[:200],
    }


async def _janitor(app: App, runtime: Runtime, metrics: JobMetrics) -> None:
    """Every heartbeat_s: put the jobs of dead workers back (see `retry_stalled_jobs`)."""
    config = runtime.settings.queue

    async def abandon(job: Job) -> None:
        upload_pk = job.task_kwargs.get("upload_pk")
        if job.task_name == PROBE_TASK and isinstance(upload_pk, int):
            reason = f"the probe stopped its worker {job.attempts + 1} times; not tried again"
            await asyncio.to_thread(move, runtime.store, "probe", upload_pk, "failed", error=reason)

    while True:
        try:
            retried = await retry_stalled_jobs(app, config.stalled_after_s, abandon=abandon)
        except Exception as exc:  # the database is away: the next round tries again
            log.warning("jobs.stalled.check_failed", extra={"reason": str(exc)[:200]})
        else:
            metrics.stalled_retried.inc(retried)
        await asyncio.sleep(config.heartbeat_s)


@contextlib.asynccontextmanager
async def _metrics_site(
    metrics: WebMetrics, ready: asyncio.Event, host: str, port: int
) -> AsyncIterator[None]:
    if port == 0:
        yield
        return
    app = metrics_app(metrics, ready=ready.is_set)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            problem = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            raise ConfigError([f"queue.metrics_port: {problem}"]) from exc
        log.info("worker metrics on http://%s:%d/metrics", host, port)
        yield
    finally:
        await runner.cleanup()
