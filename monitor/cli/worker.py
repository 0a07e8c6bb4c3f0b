"""``stylewatch worker``: a job worker of the procrastinate backend.

See `monitor.services.worker`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from monitor.cli.context import cli_state, fail
from monitor.runtime import STARTUP_WAIT_FOR_BLOBS_S, open_runtime


def service_logging() -> None:
    """A long-running process logs one line per upload per stage (INFO); procrastinate's
    own per-job lines stay at WARNING, since `monitor.services.worker` logs retries and failures."""
    root = logging.getLogger()
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)
    logging.getLogger("procrastinate").setLevel(max(root.level, logging.WARNING))


def worker(
    ctx: typer.Context,
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues",
            help="Comma-separated queues to work: probe, alerts (default: alerts, and probe "
            "when [probe] base_models is set)",
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            max=256,
            help="Alert jobs at once; probes are always one at a time per process "
            "[env: STYLEWATCH_QUEUE__CONCURRENCY]",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Port of this worker's /metrics and /livez, 0 for none (default 8788) "
            "[env: STYLEWATCH_QUEUE__METRICS_PORT]",
        ),
    ] = None,
) -> None:
    """Run jobs from the PostgreSQL job queue until SIGTERM ([queue] backend = procrastinate).

    On SIGTERM the current job finishes (or after [queue] shutdown_grace_s goes back to the
    queue) and the worker exits 0.
    """
    from monitor.services.worker import plan_queues, run_worker_process

    settings = cli_state(ctx).settings
    if settings.queue.backend != "procrastinate":
        raise fail(
            'worker: set [queue] backend = "procrastinate" (with a postgresql database url); '
            "the embedded default probes inside `stylewatch serve`"
        )
    plan = plan_queues(settings, queues, concurrency)
    service_logging()
    with open_runtime(settings, wait_for_blobs_s=STARTUP_WAIT_FOR_BLOBS_S) as runtime:
        port = settings.queue.metrics_port if metrics_port is None else metrics_port
        asyncio.run(run_worker_process(runtime, plan, port))
