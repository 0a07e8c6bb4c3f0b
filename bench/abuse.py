"""Replay issue #20's attacks against a real `stylewatch serve` on loopback.

    python bench/abuse.py [--keep]

Starts the server (SQLite, a temp data dir, two artists and a moderator added with the
CLI), measures a signed-in artist's page with no attack running (the baseline), then runs
each attack and prints what came back, the server's peak RSS so far (``VmHWM``; for a
``scan`` its own peak) and the time taken; the last line is one JSON object. ``ok`` is
true where the attack was held off, false where it was not, null where the bench only
reports what it sees. Not replayed here: hub uploads with huge headers (no hub is polled:
nothing leaves loopback), a moderator's decide form and an artist dismissing a confirmed
finding (this world has no findings). Mail goes to a local SMTP server (aiosmtpd), which
the last attack stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import abuse_attacks as attacks
from bench.abuse_attacks import Result
from bench.abuse_world import (
    MIRA_EMAIL,
    Client,
    World,
    build_world,
    config_text,
    run_cli,
    vm_hwm_mb,
)
from bench.chaos_procs import Supervised, stylewatch_env

READY_WAIT_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(server: Supervised) -> None:
    deadline = time.monotonic() + READY_WAIT_S
    async with aiohttp.ClientSession() as session:
        while not await server.ready(session):
            if not server.alive or time.monotonic() > deadline:
                raise RuntimeError(f"stylewatch serve did not start; see {server.log}")
            await asyncio.sleep(0.3)


def empty_webhook_secret(world: World) -> Result:
    """Whether a config with an empty webhook secret is taken (an empty HMAC key)."""
    extra = '[[alerts.webhooks]]\nurl = "http://127.0.0.1:9/hook"\nsecret = ""\n'
    config = world.folder / "empty_secret.toml"
    config.write_text(config_text(world.data_dir, 9, extra))
    try:
        run_cli(stylewatch_env(config), "user", "list")
        came, ok = "accepted", False
    except RuntimeError as exc:
        came, ok = f"refused: {str(exc).splitlines()[-1][:90]}", True
    return Result("empty webhook secret", came, ok)


async def replay(
    world: World, server: Supervised, smtp: Controller, sink: attacks.SwitchSink
) -> tuple[float, list[Result]]:
    pid = server.pid
    assert pid is not None
    made = time.monotonic()
    webp, png = await asyncio.gather(
        asyncio.to_thread(attacks.animated_webp), asyncio.to_thread(attacks.big_png)
    )
    print(f"(images made in {time.monotonic() - made:.1f} s)", file=sys.stderr)
    mira = Client(world.web)
    await mira.login(MIRA_EMAIL)
    base_s = await attacks.baseline(world, mira)
    steps: list[Callable[[], Awaitable[Result]]] = [
        lambda: attacks.open_redirect(world),
        lambda: attacks.alias_hijack(world),
        lambda: attacks.webp_uploads(world, webp),
        lambda: attacks.png_thumbnails(world, png),
        lambda: attacks.scan_big_header(world),
        lambda: attacks.login_flood(world, mira, base_s),
        lambda: attacks.many_emails(world),
        lambda: attacks.cookie_replay(world),
        lambda: attacks.odd_ids(world),
        lambda: attacks.terminal_codes(world),
        lambda: attacks.smtp_failure(world, sink),  # before the rate: it fills the limit
        lambda: attacks.confirmation_mail_rate(world, sink),
    ]
    results = []
    for step in steps:
        started = time.monotonic()
        result = await step()
        result.seconds = result.seconds or time.monotonic() - started
        if not result.peak_rss_mb:
            result.peak_rss_mb = vm_hwm_mb(pid)
            if result.attack.startswith(("8 animated", "16 thumbnails")):
                result.ok = result.peak_rss_mb < attacks.MEMORY_LIMIT_MB
        results.append(result)
        show(result)
    for result in [*await attacks.small_web_checks(world), empty_webhook_secret(world)]:
        result.peak_rss_mb = vm_hwm_mb(pid)
        results.append(result)
        show(result)
    await mira.close()
    return base_s, results


def show(result: Result) -> None:
    verdict = {True: "held", False: "NOT HELD", None: "report"}[result.ok]
    print(
        f"{result.attack:<36} {verdict:<8} rss {result.peak_rss_mb:7.0f} MB "
        f"{result.seconds:6.2f} s  {result.came_back}",
        flush=True,
    )


async def main(keep: bool) -> int:
    folder = Path(tempfile.mkdtemp(prefix="stylewatch-abuse-"))
    started = time.monotonic()
    try:
        sink = attacks.SwitchSink()
        smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
        smtp.start()
        mail = (
            '[alerts.email]\nenabled = true\nsmtp_host = "127.0.0.1"\n'
            f'smtp_port = {smtp.port}\nstarttls = false\nfrom_addr = "sw@abuse.test"\n'
        )
        world = await asyncio.to_thread(build_world, folder, free_port(), mail)
        server = Supervised("serve", ["serve"], world.env, folder / "serve.log")
        server.ready_url = world.web + "/readyz"
        await server.start()
        try:
            await wait_ready(server)
            assert server.pid is not None
            idle_mb = vm_hwm_mb(server.pid)
            print(f"server up (pid {server.pid}, {idle_mb:.0f} MB); attacks:", flush=True)
            base_s, results = await replay(world, server, smtp, sink)
        finally:
            await server.stop()
            with contextlib.suppress(Exception):  # the last attack stopped it already
                smtp.stop()
    finally:
        if keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    flood = next(r for r in results if r.attack == "64-way login flood")
    worst = (flood.extra or {}).get("page_worst_s", float("nan"))
    summary = {
        "bench": "abuse",
        "baseline_page_s": round(base_s, 4),
        "flood_page_worst_s": round(worst, 4),
        "flood_page_ratio": round(worst / base_s, 2) if base_s else None,
        "server_idle_rss_mb": round(idle_mb),
        "server_peak_rss_mb": round(max(r.peak_rss_mb for r in results if "scan" not in r.attack)),
        "held": sum(r.ok is True for r in results),
        "not_held": [r.attack for r in results if r.ok is False],
        "attacks": {
            r.attack: {
                "ok": r.ok,
                "came_back": r.came_back,
                "peak_rss_mb": round(r.peak_rss_mb),
                "seconds": round(r.seconds, 3),
            }
            for r in results
        },
        "not_replayed": [
            "hub uploads with 30 MB headers (no hub is polled)",
            "decide form next, artist dismissing a confirmed finding (no findings)",
        ],
        "run_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir and log")
    sys.exit(asyncio.run(main(parser.parse_args().keep)))
