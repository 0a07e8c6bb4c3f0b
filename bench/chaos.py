"""Crash safety, proved: stylewatch under kill -9 while uploads stream in.

Hosts, in this process, the fake Civitai and Hugging Face hubs (tests/fakehubs), an SMTP
server (aiosmtpd) and a webhook receiver, all on loopback; registers artists (reference
images for the styled ones) and confirmed email subscriptions through the CLI; starts
stylewatch, releases ``--uploads`` uploads over ``--release-s`` seconds (bench/chaos_world.py:
some naming registered artists, some only the probe can catch), and meanwhile SIGKILLs a
random stylewatch process ``--kills`` times at random moments, restarting it at once. Then it
waits until the service has caught up and audits the database, the inbox and the webhook
log against what the hubs released (bench/chaos_audit.py).

Backends: ``--backend sqlite`` is the embedded default (one ``serve`` process);
``--backend postgres`` starts a throwaway PostgreSQL cluster, one ``serve`` and two
``stylewatch worker`` processes on the procrastinate queue. ``--fleet`` (PostgreSQL too) keeps
the blobs in a bucket on a local SeaweedFS instead, gives serve and each worker a data dir of
its own, kills the S3 server among the others, and audits every blob a row names
(bench/chaos_fleet.py).

Recovery time of a kill: from the restart until the restarted process answers (serve:
/readyz, a worker: /livez) and the pipeline has moved on since the kill (or had nothing left
to do).

Run: ``.venv/bin/python bench/chaos.py [--backend sqlite|postgres] [--fleet] [--uploads N]
[--kills K] [--seed S]``. Progress goes to stderr; the last line printed is one JSON object.
The exit status is 1 when anything was lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import chaos_audit as audit  # noqa: E402
from bench import chaos_fleet as fleet  # noqa: E402
from bench import chaos_setup as setup  # noqa: E402
from bench.chaos_procs import Supervised, cli, stylewatch_env, tracebacks  # noqa: E402
from bench.chaos_world import Models, Planned, build_models, plan, probed, release  # noqa: E402
from storage.engine import create_db_engine  # noqa: E402
from tests.alertsinks import (  # noqa: E402
    MailSink,
    WebhookReceiver,
    free_port,
    smtp_server,
    start_receiver,
)
from tests.fakehubs.servers import Hubs, running_hubs  # noqa: E402

MODELS = ROOT / "bench" / ".data" / "chaos-models"
LOSS_FIGURES = (
    "uploads_lost",
    "uploads_duplicated",
    "findings_duplicated",
    "alerts_lost",
    "alerts_duplicated",
)
READY_TIMEOUT_S = 120.0
RECOVERY_GIVE_UP_S = 600.0
WATCH_INTERVAL_S = 0.25
KILL_SPAN = 1.15  # kills spread over the release window and a little after it


@dataclass(frozen=True, slots=True)
class Options:
    backend: str = "sqlite"
    uploads: int = 500
    kills: int = 20
    seed: int = 0
    release_s: float = 240.0
    settle_timeout_s: float = 480.0
    workdir: Path | None = None
    fleet: bool = False


@dataclass
class Kill:
    victim: str
    at_s: float
    ready_s: float | None = None
    recovery_s: float | None = None
    interrupted: bool = False


@dataclass
class Run:
    options: Options
    hubs: Hubs
    models: Models
    sink: MailSink
    receiver: WebhookReceiver
    procs: list[Supervised]
    database_url: str
    started: float = field(default_factory=time.monotonic)
    released: dict[audit.UploadKey, Planned] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)
    crashes: int = 0
    setup_s: float = 0.0
    s3: fleet.S3Process | None = None

    @property
    def victims(self) -> list[Any]:
        """What the bench kills: the stylewatch processes, and the S3 server in a fleet."""
        return [*self.procs, *([self.s3] if self.s3 is not None else [])]

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def say(message: str) -> None:
    print(f"[chaos] {message}", file=sys.stderr, flush=True)


async def releasing(run: Run, planned: Sequence[Planned]) -> None:
    began = time.monotonic()
    for upload in planned:
        delay = began + upload.at_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        run.released[release(run.hubs, upload, run.models)] = upload
    say(f"all {len(planned)} uploads released at {run.elapsed():.0f} s")


async def killing(run: Run, rng: random.Random, session: aiohttp.ClientSession) -> None:
    """SIGKILL a random process at random moments, restart it at once, time its recovery."""
    gap_s = KILL_SPAN * run.options.release_s / max(1, run.options.kills)
    engine = create_db_engine(run.database_url)
    recoveries = []
    try:
        for _ in range(run.options.kills):
            await asyncio.sleep(rng.uniform(0.3, 1.7) * gap_s)
            victim = rng.choice(run.victims)
            before = await asyncio.to_thread(audit.progress, engine)
            await victim.kill()
            kill = Kill(victim.name, round(run.elapsed(), 1))
            run.kills.append(kill)
            await victim.start()
            say(f"kill #{len(run.kills)}: {victim.name} at {kill.at_s:.0f} s, restarted")
            recoveries.append(
                asyncio.create_task(recovering(run, victim, kill, before, engine, session))
            )
        await asyncio.gather(*recoveries)
    finally:
        engine.dispose()


async def recovering(
    run: Run,
    victim: Supervised,
    kill: Kill,
    before: audit.Progress,
    engine: Engine,
    session: aiohttp.ClientSession,
) -> None:
    incarnation, began = victim.starts, victim.started_at
    while time.monotonic() - began < RECOVERY_GIVE_UP_S:
        if victim.starts != incarnation:
            kill.interrupted = True  # killed again before it recovered
            return
        if kill.ready_s is None and await victim.ready(session):
            kill.ready_s = round(time.monotonic() - began, 2)
        if kill.ready_s is not None and await _moved_on(run, before, engine):
            kill.recovery_s = round(time.monotonic() - began, 2)
            return
        await asyncio.sleep(WATCH_INTERVAL_S)


async def _moved_on(run: Run, before: audit.Progress, engine: Engine) -> bool:
    now = await asyncio.to_thread(audit.progress, engine)
    if now != before:
        return True
    snap = await asyncio.to_thread(audit.snapshot, engine)
    return not any(audit.outstanding(snap, run.released).values())


async def watching(run: Run) -> None:
    """Restart a process that died without being killed (a crash is a finding too)."""
    while True:
        await asyncio.sleep(1.0)
        for proc in run.procs:
            if not proc.alive and not proc.killed:
                run.crashes += 1
                say(f"{proc.name} exited on its own; restarting it")
                await proc.start()


async def settling(run: Run) -> tuple[bool, float, dict[str, int]]:
    """Wait until every released upload is recorded and finished and the outbox is empty
    (twice in a row), or ``settle_timeout_s``; returns (settled, seconds, what is left)."""
    engine = create_db_engine(run.database_url)
    began, calm = time.monotonic(), 0
    left: dict[str, int] = {}
    try:
        while time.monotonic() - began < run.options.settle_timeout_s:
            snap = await asyncio.to_thread(audit.snapshot, engine)
            left = audit.outstanding(snap, run.released)
            calm = calm + 1 if not any(left.values()) else 0
            if calm >= 2:
                return True, time.monotonic() - began, left
            await asyncio.sleep(1.0)
    finally:
        engine.dispose()
    return False, time.monotonic() - began, left


@asynccontextmanager
async def receivers() -> AsyncIterator[tuple[MailSink, int, WebhookReceiver, str]]:
    receiver = WebhookReceiver(setup.WEBHOOK_SECRET)
    receiver.now = lambda: int(time.time())
    with smtp_server() as (sink, smtp_port):
        server = await start_receiver(receiver)
        try:
            yield sink, smtp_port, receiver, str(server.make_url("/hook"))
        finally:
            await server.close()


def processes(options: Options, env: dict[str, str], folder: Path, web: str) -> list[Supervised]:

    def own(host: str) -> dict[str, str]:  # a fleet's hosts share no data dir
        return fleet.host_env(env, folder, host) if options.fleet else env

    serve = Supervised("serve", ["serve"], own("serve"), folder / "serve.log", f"{web}/readyz")
    if options.backend == "sqlite":
        return [serve]
    workers = []
    for n in (1, 2):
        port = free_port()  # each worker serves its own /metrics and /livez
        args = ["worker", "--metrics-port", str(port)]
        livez = f"http://127.0.0.1:{port}/livez"
        log = folder / f"worker-{n}.log"
        workers.append(Supervised(f"worker-{n}", args, own(f"worker-{n}"), log, livez))
    return [serve, *workers]


async def prepare(
    options: Options, stack: AsyncExitStack, folder: Path
) -> tuple[Run, dict[str, str]]:
    """The hubs, receivers, database, config, artists and subscriptions; nothing started."""
    models = await asyncio.to_thread(build_models, MODELS)
    hubs = await stack.enter_async_context(running_hubs())
    sink, smtp_port, receiver, webhook = await stack.enter_async_context(receivers())
    endpoints = setup.Endpoints(
        hubs.civitai_url, hubs.huggingface_url, smtp_port, webhook, free_port()
    )
    data = folder / "data"
    database_url = None
    if options.backend == "postgres":
        from bench.chaos_postgres import throwaway_database

        database_url = await stack.enter_async_context(throwaway_database())
    config = folder / "config.toml"
    config.write_text(setup.config_text(data, endpoints, models, database_url))
    s3 = None
    if options.fleet:
        s3 = await fleet.start_s3(folder)
        stack.push_async_callback(s3.stop)
    env = stylewatch_env(config, fleet.fleet_env(s3) if s3 is not None else None)
    if database_url:
        await cli(env, "db", "upgrade")
    await setup.register(env, models, folder)
    procs = processes(options, env, folder, endpoints.web)
    url = database_url or f"sqlite:///{data / 'stylewatch.db'}"
    return Run(options, hubs, models, sink, receiver, procs, url, s3=s3), env


async def start_all(run: Run, session: aiohttp.ClientSession) -> None:
    for proc in run.procs:
        await proc.start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    for proc in run.procs:
        while not await proc.ready(session):
            if time.monotonic() > deadline or (not proc.alive and not proc.killed):
                raise RuntimeError(f"{proc.name} did not start: see {proc.log}")
            await asyncio.sleep(WATCH_INTERVAL_S)


async def chaos(options: Options, folder: Path) -> dict[str, Any]:
    rng = random.Random(options.seed)
    planned = plan(options.uploads, options.release_s, options.seed)
    began = time.monotonic()
    async with AsyncExitStack() as stack, aiohttp.ClientSession() as session:
        run, env = await prepare(options, stack, folder)
        run.setup_s = time.monotonic() - began
        say(f"set up in {run.setup_s:.0f} s; starting {', '.join(p.name for p in run.procs)}")
        try:
            await start_all(run, session)
            await setup.confirm(session, setup.confirm_links(run.sink))
            run.started = time.monotonic()
            watchdog = asyncio.create_task(watching(run))
            await asyncio.gather(releasing(run, planned), killing(run, rng, session))
            settled, settle_s, left = await settling(run)
            watchdog.cancel()
            say(f"settled: {settled} after {settle_s:.0f} s more; left: {left}")
        finally:
            exits = [await proc.stop() for proc in run.procs]
        listed = json.loads((await cli(env, "uploads", "--json")).stdout)
        engine = create_db_engine(run.database_url)
        try:
            snap = await asyncio.to_thread(audit.snapshot, engine)
            blobs = {}
            if run.s3 is not None:
                await _s3_back(run, session)
                blobs = await asyncio.to_thread(fleet.blob_audit, engine, run.s3)
        finally:
            engine.dispose()
        figures = audit.audit(snap, run.released, run.sink, run.receiver, setup.subscribers())
        figures.update(blobs)
    return report(run, planned, figures, settled, settle_s, exits, len(listed))


async def _s3_back(run: Run, session: aiohttp.ClientSession) -> None:
    """The S3 server answering (a kill near the end may have left it restarting)."""
    assert run.s3 is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not await run.s3.ready(session):
        if not run.s3.alive:
            await run.s3.start()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the S3 server did not come back: see {run.s3.log}")
        await asyncio.sleep(WATCH_INTERVAL_S)


def report(
    run: Run,
    planned: Sequence[Planned],
    figures: dict[str, int],
    settled: bool,
    settle_s: float,
    exits: Sequence[int | None],
    listed: int,
) -> dict[str, Any]:
    measured = [k.recovery_s for k in run.kills if k.recovery_s is not None]
    ready = [k.ready_s for k in run.kills if k.ready_s is not None]
    return {
        "backend": run.options.backend + (" fleet (S3 blobs)" if run.options.fleet else ""),
        "seed": run.options.seed,
        **figures,
        "uploads_listed_by_cli": listed,
        "uploads_probed": probed(planned),
        "kills": len(run.kills),
        "kills_by_process": {
            p.name: sum(k.victim == p.name for k in run.kills) for p in run.victims
        },
        "recovery_median_s": round(statistics.median(measured), 2) if measured else None,
        "recovery_max_s": max(measured) if measured else None,
        "ready_median_s": round(statistics.median(ready), 2) if ready else None,
        "recoveries_measured": len(measured),
        "kills_before_recovery": sum(k.interrupted for k in run.kills),
        "crashes": run.crashes,
        "tracebacks": tracebacks([p.log for p in run.procs]),  # not weed's own log
        "settled": settled,
        "settle_s": round(settle_s, 1),
        "clean_exits": sum(code == 0 for code in exits),
        "setup_s": round(run.setup_s, 1),
        "run_s": round(run.elapsed(), 1),
    }


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--uploads", type=int, default=500)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--release-s", type=float, default=240.0, help="seconds of releases")
    parser.add_argument("--settle-timeout-s", type=float, default=480.0)
    parser.add_argument("--workdir", type=Path, help="keep configs, logs and data here")
    parser.add_argument(
        "--fleet",
        action="store_true",
        help="PostgreSQL, blobs in a SeaweedFS bucket, a data dir per process, S3 kills too",
    )
    args = parser.parse_args(argv)
    return Options(
        "postgres" if args.fleet else args.backend,
        args.uploads,
        args.kills,
        args.seed,
        args.release_s,
        args.settle_timeout_s,
        args.workdir,
        args.fleet,
    )


def main() -> int:
    options = parse_args()
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
        figures = asyncio.run(chaos(options, options.workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
            figures = asyncio.run(chaos(options, Path(tmp)))
    print(json.dumps(figures))
    return 1 if any(figures.get(k) for k in (*LOSS_FIGURES, "blobs_lost")) else 0


if __name__ == "__main__":
    sys.exit(main())
