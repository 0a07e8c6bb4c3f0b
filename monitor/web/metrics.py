"""/metrics: Prometheus text from one registry per app.

Counts that the database already holds (uploads per source, findings by state, the queue's
depth, alert deliveries by status) are read at scrape time, so every process reports the
truth without wiring. Latencies are histograms that the pipeline observes through the
app's `WebMetrics` (``metrics.screening_seconds.observe(s)``).

With the procrastinate backend every process (serve and each ``stylewatch worker``) also
reports the job tables (jobs per queue and status, live workers) and the jobs it ran
itself (`JobMetrics`); a worker serves them on its own port (`metrics_app`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from detectors.errors import StorageError
from monitor.pipeline.poll import PollCounters
from storage.job_tables import job_counts, live_workers
from storage.web_queries import MetricsSnapshot, WebQueries

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
QUEUE_STATES = ("needs_review", "escalated")
LATENCY_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class WebMetrics:
    """The app's registry and the histograms other modules observe."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.screening_seconds = Histogram(
            "stylewatch_screening_seconds",
            "Time to screen one upload (header and hub text)",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.probe_seconds = Histogram(
            "stylewatch_probe_seconds",
            "Time to probe one upload on the GPU",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.jobs = JobMetrics(self.registry)
        self._watching_jobs = False

    def watch_database(self, queries: WebQueries) -> None:
        self.registry.register(_DatabaseCollector(queries))

    def watch_polling(self, counters: PollCounters) -> None:
        """Export the pollers' running totals; their screening times feed the histogram."""
        counters.observe_screening = self.screening_seconds.observe
        self.registry.register(_PollCollector(counters))

    def watch_jobs(self, engine: Engine, stalled_after_s: float) -> None:
        """Export procrastinate's job tables (queue depth, running jobs, live workers);
        once per registry."""
        if not self._watching_jobs:
            self.registry.register(_JobTableCollector(engine, stalled_after_s))
            self._watching_jobs = True

    def render(self) -> bytes:
        """The exposition text (reads the database: call it off the event loop)."""
        return generate_latest(self.registry)


class JobMetrics:
    """What this process's job workers did: jobs by queue and outcome, their latency, and
    the jobs of dead workers it put back."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.finished = Counter(
            "stylewatch_jobs_finished",
            "Jobs this process ran, by queue and outcome (done, retried, failed, released)",
            ["queue", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "stylewatch_job_seconds",
            "Time from a job's start to its end in this process",
            ["queue"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.stalled_retried = Counter(
            "stylewatch_stalled_jobs_retried",
            "Jobs of dead workers this process put back in their queue",
            registry=registry,
        )

    def record(self, queue: str, outcome: str, seconds: float) -> None:
        self.finished.labels(queue=queue, outcome=outcome).inc()
        self.seconds.labels(queue=queue).observe(seconds)


class _JobTableCollector(Collector):
    def __init__(self, engine: Engine, stalled_after_s: float) -> None:
        self._engine = engine
        self._stalled_after_s = stalled_after_s

    def collect(self) -> Iterator[Metric]:
        try:
            counts = job_counts(self._engine)
            workers = live_workers(self._engine, self._stalled_after_s)
        except StorageError as exc:
            log.warning("metrics.jobs.failed", extra={"error": str(exc)})
            return
        jobs = GaugeMetricFamily(
            "stylewatch_jobs",
            "Jobs in the queue tables by queue and status (todo: the queue's depth)",
            labels=["queue", "status"],
        )
        for (queue, status), count in sorted(counts.items()):
            jobs.add_metric([queue, status], count)
        yield jobs
        live = GaugeMetricFamily("stylewatch_workers", "Job workers with a recent heartbeat")
        live.add_metric([], workers)
        yield live


class _PollCollector(Collector):
    def __init__(self, counters: PollCounters) -> None:
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        c = self._counters
        for name, help_text, value in (
            ("polls", "Poll cycles run", c.polls),
            ("polls_incomplete", "Poll cycles a hub fault cut short", c.incomplete_polls),
            ("poll_listed", "Uploads listed by the hubs", c.listed),
            ("poll_screened", "Uploads screened by the pollers", c.screened),
            ("poll_flagged", "Uploads the pollers flagged", c.flagged),
            ("poll_failed", "Uploads that failed (retried later)", c.failed),
            ("poll_malformed", "Uploads screened with malformed metadata", c.malformed),
            ("poll_bytes_fetched", "Bytes read from the hubs", c.bytes_fetched),
        ):
            family = CounterMetricFamily(f"stylewatch_{name}", help_text)
            family.add_metric([], value)
            yield family


class _DatabaseCollector(Collector):
    def __init__(self, queries: WebQueries) -> None:
        self._queries = queries

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("stylewatch_database_up", "Whether /metrics could read the database")
        try:
            snapshot = self._queries.metrics()
        except StorageError as exc:
            log.warning("metrics.database.failed", extra={"error": str(exc)})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _families(snapshot)


def _families(snapshot: MetricsSnapshot) -> Iterator[Metric]:
    uploads = CounterMetricFamily(
        "stylewatch_uploads_seen", "Uploads recorded, per source", labels=["source"]
    )
    findings = GaugeMetricFamily("stylewatch_findings", "Findings by state", labels=["state"])
    queue = GaugeMetricFamily(
        "stylewatch_queue_depth", "Findings waiting for a moderator", labels=["state"]
    )
    deliveries = GaugeMetricFamily(
        "stylewatch_alert_deliveries", "Alert deliveries by status", labels=["status"]
    )
    malformed = GaugeMetricFamily(
        "stylewatch_uploads_malformed",
        "Uploads recorded with malformed metadata (shown in the queue), per source",
        labels=["source"],
    )
    for family, counts in (
        (uploads, snapshot.uploads_by_source),
        (findings, snapshot.findings_by_state),
        (queue, {s: snapshot.findings_by_state.get(s, 0) for s in QUEUE_STATES}),
        (deliveries, snapshot.deliveries_by_status),
        (malformed, snapshot.malformed_by_source),
    ):
        for label, count in sorted(counts.items()):
            family.add_metric([label], count)
        yield family


METRICS_KEY: web.AppKey[WebMetrics] = web.AppKey("metrics", WebMetrics)


async def metrics_handler(request: web.Request) -> web.Response:
    body = await asyncio.to_thread(request.app[METRICS_KEY].render)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def _livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


READY_KEY: web.AppKey[Callable[[], bool]] = web.AppKey("ready")


async def _readyz(request: web.Request) -> web.Response:
    ok = request.app[READY_KEY]()
    return web.json_response({"status": "ok" if ok else "starting"}, status=200 if ok else 503)


def metrics_app(metrics: WebMetrics, *, ready: Callable[[], bool]) -> web.Application:
    """``/metrics``, ``/livez`` and ``/readyz`` (200 once ``ready()``: the worker takes
    jobs) alone: what a worker serves on its own port."""
    app = web.Application()
    app[METRICS_KEY] = metrics
    app[READY_KEY] = ready
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/livez", _livez)
    app.router.add_get("/readyz", _readyz)
    return app
