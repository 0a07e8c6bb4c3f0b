"""The procrastinate job queue on the real PostgreSQL: its tables, one job per upload, a
worker probing with the tiny pipeline, the jobs of a dead worker run by another, SIGTERM
putting a running job back, and serve's sweep queueing instead of probing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import aiohttp
import psycopg
import pytest

from monitor.jobs.procrastinate_queue import PROBE_TASK, ProcrastinateQueue, open_app
from monitor.pipeline.poll import Poller
from monitor.runtime import Runtime, open_runtime
from monitor.services.worker import WorkerPlan, job_handlers, queued_work, work
from monitor.settings import DatabaseSettings, ProbeSettings, QueueSettings
from monitor.sources.civitai import CivitaiSource
from monitor.sources.http import HttpClient
from monitor.web.metrics import WebMetrics
from storage.job_tables import apply_job_schema, job_counts, job_schema_present
from storage.source_state import SourceState
from tests.fakehubs.harness import FAST, settings_for
from tests.fakehubs.servers import Hubs, running_hubs
from tests.integration.conftest import PostgresServer
from tests.probe_fixtures import TinySD, register_ember
from tests.probe_models import IMAGE_PX, STEPS

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.timeout(240),
    # diffusers warns that saved configs carry keys newer or older than its classes know.
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]
FAMILY = "unknown"  # the tiny test LoRAs are too narrow to be recognised as SD1
FAST_QUEUE = QueueSettings(
    backend="procrastinate", heartbeat_s=0.2, stalled_after_s=1.0, shutdown_grace_s=0.0
)
PROBE_ONLY = WorkerPlan(("probe",), 1)


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A migrated database with the job tables (as `stylewatch db upgrade` leaves it)."""
    name = postgres_server.create_database(postgres_server.template)
    url = postgres_server.url(name)
    from storage.engine import create_db_engine

    engine = create_db_engine(url)
    try:
        apply_job_schema(engine)
    finally:
        engine.dispose()
    yield url
    postgres_server.drop_database(name)


@pytest.fixture
async def hubs() -> AsyncIterator[Hubs]:
    async with running_hubs() as hubs:
        yield hubs


@pytest.fixture
def runtime(hubs: Hubs, tmp_path, pg_url: str, tiny_sd: TinySD) -> Iterator[Runtime]:
    probe = ProbeSettings(
        device="cpu",
        base_models={FAMILY: tiny_sd.base},
        steps=STEPS,
        guidance_scale=1.0,
        size_px=IMAGE_PX,
    )
    settings = settings_for(hubs, tmp_path).model_copy(
        update={"probe": probe, "database": DatabaseSettings(url=pg_url), "queue": FAST_QUEUE}
    )
    runtime = open_runtime(settings)
    register_ember(runtime, tiny_sd)
    yield runtime
    runtime.close()


async def _poll(hubs: Hubs, runtime: Runtime, tiny_sd: TinySD) -> int:
    """A style LoRA polled from the fake Civitai; returns its upload pk."""
    when = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    hubs.civitai.add_upload("Warm Glow", tiny_sd.style_kohya.read_bytes(), published_at=when)
    async with aiohttp.ClientSession() as session:
        source = CivitaiSource(runtime.settings.sources.civitai, HttpClient(session, FAST))
        await Poller(source, runtime.store, SourceState(runtime.engine), threshold=0.5).poll()
    (upload,) = runtime.store.list_uploads("civitai")
    return upload.id


def _sql(url: str, query: str) -> list[tuple[object, ...]]:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        cursor = conn.execute(query.encode())
        return cursor.fetchall() if cursor.description else []


async def _wait_for(condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def _working(runtime: Runtime, plan: WorkerPlan, until, metrics: WebMetrics) -> None:
    """Run a worker on ``plan`` in this process until ``until()`` holds, then stop it."""
    stop = asyncio.Event()
    async with (
        aiohttp.ClientSession() as session,
        job_handlers(runtime, session, plan.queues, metrics) as handlers,
        open_app(runtime, handlers) as app,
    ):
        task = asyncio.create_task(work(app, runtime, plan, metrics.jobs, stop))
        try:
            await _wait_for(until)
        finally:
            stop.set()
            await task


def _probe_jobs(runtime: Runtime) -> dict[str, int]:
    """Probe jobs by status (workers also defer the periodic alert delivery)."""
    return {s: n for (q, s), n in job_counts(runtime.engine).items() if q == "probe"}


def _count(metrics: WebMetrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "stylewatch_jobs_finished_total", {"queue": "probe", "outcome": outcome}
    )
    return value or 0.0


def test_the_job_tables_are_created_once(postgres_server: PostgresServer):
    from storage.engine import create_db_engine

    name = postgres_server.create_database(postgres_server.template)
    engine = create_db_engine(postgres_server.url(name))
    try:
        assert not job_schema_present(engine)
        assert apply_job_schema(engine)
        assert job_schema_present(engine)
        assert not apply_job_schema(engine)
        assert job_counts(engine) == {}
    finally:
        engine.dispose()
        postgres_server.drop_database(name)


async def test_an_upload_is_queued_once(runtime: Runtime, pg_url: str):
    async with open_app(runtime) as app:
        queue = ProcrastinateQueue(app)
        assert await queue.enqueue("probe", 41)
        assert not await queue.enqueue("probe", 41)  # waiting: the queueing lock
        assert await queue.enqueue("probe", 42)
        assert job_counts(runtime.engine) == {("probe", "todo"): 2}
        dead = await app.job_manager.register_worker()
        running = await app.job_manager.fetch_job(queues=["probe"], worker_id=dead)
        assert running is not None
        assert running.task_kwargs == {"upload_pk": 41}
        assert not await queue.enqueue("probe", 41)  # running
    assert job_counts(runtime.engine) == {("probe", "todo"): 1, ("probe", "doing"): 1}


async def test_a_worker_probes_and_a_dead_workers_job_runs_again(hubs, runtime, tiny_sd, pg_url):
    pk = await _poll(hubs, runtime, tiny_sd)
    metrics = WebMetrics()
    async with open_app(runtime) as app:
        assert await ProcrastinateQueue(app).enqueue("probe", pk)
        # A worker takes the job and dies (kill -9): its heartbeat stops, the job stays "doing".
        dead = await app.job_manager.register_worker()
        assert await app.job_manager.fetch_job(queues=["probe"], worker_id=dead) is not None
    assert runtime.store.list_uploads("civitai")[0].state == "screened"

    def probed() -> bool:
        return bool(runtime.store.list_uploads("civitai")[0].state == "probed")

    await _working(runtime, PROBE_ONLY, probed, metrics)
    findings = runtime.store.list_findings()
    assert [(f.artist, f.stage) for f in findings] == [("Ember Vale", "probe")]
    assert metrics.registry.get_sample_value("stylewatch_stalled_jobs_retried_total") == 1
    assert _count(metrics, "done") == 1
    assert _probe_jobs(runtime) == {}  # done jobs are deleted
    assert metrics.registry.get_sample_value("stylewatch_probe_seconds_count") == 1

    # A job for an upload already probed (a duplicate, or a retry after the work was done)
    # does nothing: no second probe, no second finding.
    async with open_app(runtime) as app:
        await app.configure_task(PROBE_TASK).defer_async(upload_pk=pk)
    await _working(runtime, PROBE_ONLY, lambda: not _probe_jobs(runtime), metrics)
    assert _count(metrics, "done") == 2
    assert metrics.registry.get_sample_value("stylewatch_probe_seconds_count") == 1
    assert len(runtime.store.list_findings()) == 1


async def test_stopping_puts_the_running_probe_back(hubs, runtime, tiny_sd, pg_url):
    """SIGTERM with no grace left: the job goes back to the queue, not lost, not failed."""
    pk = await _poll(hubs, runtime, tiny_sd)
    metrics = WebMetrics()
    async with open_app(runtime) as app:
        assert await ProcrastinateQueue(app).enqueue("probe", pk)

    def probing() -> bool:
        return bool(runtime.store.list_uploads("civitai")[0].state == "probing")

    await _working(runtime, PROBE_ONLY, probing, metrics)
    assert _count(metrics, "released") == 1
    assert _probe_jobs(runtime) == {"todo": 1}
    assert not runtime.store.list_findings()


async def test_a_job_that_keeps_killing_workers_is_given_up(runtime: Runtime, pg_url: str):
    from monitor.jobs.procrastinate_queue import MAX_ATTEMPTS, retry_stalled_jobs

    pk = 7
    abandoned = []

    async def abandon(job):
        abandoned.append(job.task_kwargs["upload_pk"])

    async with open_app(runtime) as app:
        await ProcrastinateQueue(app).enqueue("probe", pk)
        _sql(pg_url, f"UPDATE procrastinate_jobs SET attempts = {MAX_ATTEMPTS - 1}")
        dead = await app.job_manager.register_worker()
        await app.job_manager.fetch_job(queues=["probe"], worker_id=dead)
        assert await retry_stalled_jobs(app, 1.0, abandon=abandon) == 0  # still alive
        await asyncio.sleep(1.2)
        assert await retry_stalled_jobs(app, 1.0, abandon=abandon) == 0
    assert abandoned == [pk]
    assert job_counts(runtime.engine) == {("probe", "failed"): 1}
    assert not _sql(pg_url, "SELECT id FROM procrastinate_workers")  # the dead one pruned


async def test_serve_queues_probe_jobs_instead_of_probing(hubs, runtime, tiny_sd, pg_url):
    pk = await _poll(hubs, runtime, tiny_sd)
    metrics = WebMetrics()
    async with (
        aiohttp.ClientSession() as session,
        queued_work(runtime, session, metrics, with_worker=False),
    ):
        await _wait_for(lambda: bool(job_counts(runtime.engine)), timeout_s=10)
    assert job_counts(runtime.engine) == {("probe", "todo"): 1}
    rows = _sql(pg_url, "SELECT args->>'upload_pk', queueing_lock FROM procrastinate_jobs")
    assert rows == [(str(pk), f"probe:{pk}")]
    assert runtime.store.list_uploads("civitai")[0].state == "screened"  # nothing probed here
    text = metrics.render().decode()
    assert 'stylewatch_jobs{queue="probe",status="todo"} 1.0' in text

    # `serve --with-worker`: the same process also works the queue.
    def probed() -> bool:
        return bool(runtime.store.list_uploads("civitai")[0].state == "probed")

    async with (
        aiohttp.ClientSession() as session,
        queued_work(runtime, session, metrics, with_worker=True),
    ):
        await _wait_for(probed)
    assert [f.stage for f in runtime.store.list_findings()] == ["probe"]
    assert _count(metrics, "done") == 1
