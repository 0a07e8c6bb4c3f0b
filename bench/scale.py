"""Scale-out figures: probe jobs/s with 1, 2 and 4 ``stylewatch worker`` processes on one
PostgreSQL, and the database round trips each probed upload costs.

For each round, ``--uploads-per-round`` fresh tiny-pipeline LoRAs (bench/chaos_world.py's
style and benign ones, alternating) are released on the fake Civitai and recorded by
``stylewatch poll --once``; then K workers (``--queues probe``) are started and waited for
(each registered in procrastinate's worker table), the statistics are reset, and
``stylewatch serve`` (hubs off: it only sweeps) queues all the uploads at once. A round's
time runs from the first upload a worker takes to the last one probed, so process start-up
(importing torch, loading the pipeline) is left out. A warm-up round with one worker fills
the base-model image cache first, as a running service has it.

Round trips: ``pg_stat_statements`` calls per upload (every statement, transaction control
included), split by database role: the workers', serve's sweep (its own role), and the
bench's observer (its own role, left out); and committed transactions per upload from
``pg_stat_database``, less the observer's own.

Scaling: ``speedup`` = jobs/s with K workers over jobs/s with one; ``efficiency`` = speedup
/ K; ``per_added_worker`` = the jobs/s each worker added since the previous round brought,
over one worker's jobs/s (goal >= 0.8 while the database is not the bottleneck). The probe
is CPU-bound here (tiny pipeline on CPU, one thread per worker), so K workers cannot scale
past the machine's cores; the JSON says how many there are.

Run: ``.venv/bin/python bench/scale.py [--workers 1,2,4] [--uploads-per-round N]``.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import chaos_setup as setup  # noqa: E402
from bench.chaos_postgres import throwaway_database  # noqa: E402
from bench.chaos_procs import Supervised, cli, stylewatch_env  # noqa: E402
from bench.chaos_world import STYLED, Models, Planned, build_models, release  # noqa: E402
from storage.engine import create_db_engine  # noqa: E402
from tests.alertsinks import free_port  # noqa: E402
from tests.fakehubs.servers import Hubs, running_hubs  # noqa: E402

MODELS = ROOT / "bench" / ".data" / "chaos-models"
OBSERVER, SWEEPER = "observer", "sweeper"
WATCH_INTERVAL_S = 0.25
ROUND_TIMEOUT_S = 900.0
READY_TIMEOUT_S = 180.0
WARM_UP_UPLOADS = 2


@dataclass(frozen=True, slots=True)
class Round:
    workers: int
    jobs: int
    seconds: float
    worker_statements: int
    sweep_statements: int
    transactions: int

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds


def say(message: str) -> None:
    print(f"[scale] {message}", file=sys.stderr, flush=True)


class Observer:
    """The bench's own connection (role ``observer``), counting the queries it makes."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = create_db_engine(url)
        self.queries = 0

    def scalar(self, sql: str, **params: Any) -> Any:
        self.queries += 1
        with self.engine.connect() as conn:
            value = conn.execute(text(sql), params).scalar()
            conn.commit()
        return value

    def probed(self, upload_ids: Sequence[str]) -> tuple[int, int]:
        """(uploads taken by a worker or done, uploads probed) among ``upload_ids``."""
        self.queries += 1
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT state, count(*) FROM upload WHERE upload_id = ANY(:ids) GROUP BY state"
                ),
                {"ids": list(upload_ids)},
            ).all()
            conn.commit()
        states = {str(s): int(n) for s, n in rows}
        done = states.get("probed", 0) + states.get("failed", 0)
        return done + states.get("probing", 0), done

    def statements(self) -> dict[str, int]:
        self.queries += 1
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT r.rolname, sum(s.calls) FROM pg_stat_statements s"
                    " JOIN pg_roles r ON r.oid = s.userid"
                    " JOIN pg_database d ON d.oid = s.dbid"
                    " WHERE d.datname = current_database()"
                    " GROUP BY r.rolname"
                )
            ).all()
            conn.commit()
        return {str(role): int(calls) for role, calls in rows}

    def transactions(self) -> int:
        self.scalar("SELECT pg_stat_force_next_flush()")
        return int(
            self.scalar(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            )
        )


def planned(first: int, count: int) -> list[Planned]:
    """``count`` probe-only uploads: style LoRAs and benign ones, alternating."""
    uploads = []
    for n in range(first, first + count):
        styled = STYLED[n % len(STYLED)].name if n % 2 == 0 else None
        uploads.append(Planned(n, "civitai", "style" if styled else "benign", styled, 0.0))
    return uploads


@asynccontextmanager
async def running(procs: Sequence[Supervised]) -> AsyncIterator[None]:
    try:
        for proc in procs:
            await proc.start()
        yield
    finally:
        for proc in procs:
            await proc.stop()


async def wait_for_workers(observer: Observer, count: int, procs: Sequence[Supervised]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while (
        await asyncio.to_thread(observer.scalar, "SELECT count(*) FROM procrastinate_workers")
        < count
    ):
        if time.monotonic() > deadline or not all(p.alive for p in procs):
            raise RuntimeError(f"the workers did not start: see {procs[0].log}")
        await asyncio.sleep(WATCH_INTERVAL_S)


@dataclass
class Bench:
    """What every round shares: the hubs, models, config environment and database."""

    hubs: Hubs
    models: Models
    env: dict[str, str]
    url: str
    folder: Path
    observer: Observer
    released: int = 0

    def role_url(self, role: str) -> str:
        return self.url.replace("postgres@", f"{role}@", 1)


async def one_round(bench: Bench, workers: int, count: int) -> Round:
    """Probe ``count`` fresh uploads with ``workers`` worker processes."""
    first, bench.released = bench.released, bench.released + count
    ids = [release(bench.hubs, p, bench.models)[1] for p in planned(first, count)]
    await cli(bench.env, "poll", "--once", "--source", "civitai")
    logs = bench.folder / f"round-{first}"
    args = ["worker", "--queues", "probe", "--metrics-port", "0"]
    procs = [
        Supervised(f"worker-{n}", args, bench.env, Path(f"{logs}-worker-{n}.log"))
        for n in range(1, workers + 1)
    ]
    sweeper_env = bench.env | {
        "STYLEWATCH_DATABASE__URL": bench.role_url(SWEEPER),
        "STYLEWATCH_SOURCES__CIVITAI__ENABLED": "false",
        "STYLEWATCH_SOURCES__HUGGINGFACE__ENABLED": "false",
        "STYLEWATCH_WEB__PORT": str(free_port()),
    }
    serve = Supervised("serve", ["serve"], sweeper_env, Path(f"{logs}-serve.log"))
    observer = bench.observer
    async with running(procs):
        await wait_for_workers(observer, workers, procs)
        await asyncio.to_thread(observer.scalar, "SELECT pg_stat_statements_reset()")
        commits_before = await asyncio.to_thread(observer.transactions)
        queries_before = observer.queries
        async with running([serve]):
            seconds = await timed(observer, ids)
        statements = await asyncio.to_thread(observer.statements)
    commits = await asyncio.to_thread(observer.transactions) - commits_before
    own = observer.queries - queries_before
    return Round(
        workers,
        count,
        seconds,
        sum(n for role, n in statements.items() if role not in (OBSERVER, SWEEPER)),
        statements.get(SWEEPER, 0),
        commits - own,
    )


async def timed(observer: Observer, ids: Sequence[str]) -> float:
    """Wait until every upload is probed; returns the seconds from the first one a worker
    took until the last one was done."""
    deadline = time.monotonic() + ROUND_TIMEOUT_S
    began = None
    while time.monotonic() < deadline:
        taken, done = await asyncio.to_thread(observer.probed, ids)
        now = time.monotonic()
        if began is None and taken:
            began = now
        if done >= len(ids) and began is not None:
            return now - began
        await asyncio.sleep(WATCH_INTERVAL_S)
    raise RuntimeError(f"the round did not finish in {ROUND_TIMEOUT_S:.0f} s")


async def scale(worker_counts: Sequence[int], per_round: int, folder: Path) -> dict[str, Any]:
    models = await asyncio.to_thread(build_models, MODELS)
    async with running_hubs() as hubs, throwaway_database() as url:
        await asyncio.to_thread(prepare_database, url)
        endpoints = setup.Endpoints(hubs.civitai_url, hubs.huggingface_url, 0, "", free_port())
        config = folder / "config.toml"
        data = folder / "data"
        # The queue's default intervals (heartbeats, sweeps): their statements count too.
        wanted = setup.config_text(data, endpoints, models, url, alerts=False, fast_queue=False)
        config.write_text(wanted)
        env = stylewatch_env(config)
        await cli(env, "db", "upgrade")
        for artist, images in models.references.items():
            await cli(env, "artist", "add", artist, "--images", str(images), "--no-hubs")
        observer = Observer(url.replace("postgres@", f"{OBSERVER}@", 1))
        bench = Bench(hubs, models, env, url, folder, observer)
        try:
            say("warm-up round: one worker fills the base image cache")
            await one_round(bench, 1, WARM_UP_UPLOADS)
            rounds = []
            for workers in worker_counts:
                result = await one_round(bench, workers, per_round)
                say(f"{workers} worker(s): {result.jobs_per_s:.3f} probe jobs/s")
                rounds.append(result)
        finally:
            observer.engine.dispose()
    return report(rounds)


def prepare_database(url: str) -> None:
    """The bench's roles (superusers, trust auth: a throwaway cluster) and the extension."""
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        for role in (OBSERVER, SWEEPER):
            conn.execute(f"CREATE ROLE {role} SUPERUSER LOGIN".encode())
        conn.execute(b"CREATE EXTENSION pg_stat_statements")


def report(rounds: Sequence[Round]) -> dict[str, Any]:
    one = next((r for r in rounds if r.workers == 1), rounds[0])
    base = one.jobs_per_s / one.workers
    previous: Round | None = None
    lines = []
    for r in rounds:
        added = None
        if previous is not None and r.workers > previous.workers:
            gained = r.jobs_per_s - previous.jobs_per_s
            added = round(gained / ((r.workers - previous.workers) * base), 3)
        lines.append(
            {
                "workers": r.workers,
                "jobs": r.jobs,
                "seconds": round(r.seconds, 1),
                "jobs_per_s": round(r.jobs_per_s, 3),
                "speedup": round(r.jobs_per_s / one.jobs_per_s, 3),
                "efficiency": round(r.jobs_per_s / (r.workers * base), 3),
                "per_added_worker": added,
                "db_statements_per_upload": round(r.worker_statements / r.jobs, 1),
                "db_sweep_statements_per_upload": round(r.sweep_statements / r.jobs, 1),
                "db_transactions_per_upload": round(r.transactions / r.jobs, 1),
            }
        )
        previous = r
    cores = os.cpu_count() or 1
    note = (
        f"{cores} CPU cores: the tiny probe is CPU-bound, so more than {cores} workers"
        " cannot add throughput here"
    )
    return {"cpu_cores": cores, "device": "cpu", "rounds": lines, "note": note}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts, one round each")
    parser.add_argument("--uploads-per-round", type=int, default=16)
    parser.add_argument("--workdir", type=Path, help="keep configs and logs here")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        figures = asyncio.run(scale(counts, args.uploads_per_round, args.workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
            figures = asyncio.run(scale(counts, args.uploads_per_round, Path(tmp)))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
