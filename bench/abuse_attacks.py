"""The attacks of issue #20, each against the running server of `bench.abuse_world`.

Each returns a `Result`: what came back in one line, whether that holds (``ok``: None
where the bench only reports what it sees), and how long it took. The bench adds the
server's peak RSS after each one.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image

from bench.abuse_world import (
    JUNO,
    MIRA_EMAIL,
    MOD_EMAIL,
    SESSION_COOKIE,
    Client,
    World,
    peak_rss_of_run,
)
from monitor.web.mail_limits import OVERALL
from tests.alertsinks import MailSink

MEMORY_LIMIT_MB = 1500.0
PAGE_LIMIT_S = 0.5
ESC = "\x1b"
HOSTILE_TEXT = f"{ESC}[2J{ESC}]8;;http://evil.example/{ESC}\\click me{ESC}]8;;{ESC}\\"


@dataclass
class Result:
    attack: str
    came_back: str
    ok: bool | None
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    extra: dict[str, float] | None = None


Attack = Callable[[World], Awaitable[Result]]


def followed(location: str | None) -> str:
    """What a browser makes of a Location: tabs and line breaks dropped, \\ read as /."""
    return re.sub(r"[\t\r\n]", "", location or "").replace("\\", "/")


def off_site(location: str | None) -> bool:
    target = followed(location)
    return target.startswith("//") or "://" in target.split("?")[0]


async def open_redirect(world: World) -> Result:
    seen = []
    for raw in ("/\t/evil.example", "/\n/evil.example", "//evil.example", "/\\evil.example"):
        client = Client(world.web)
        status, location = await client.login(MIRA_EMAIL, next_=raw)
        # signed in already: /login?next= redirects at once
        again = await client.get("/login", params={"next": raw})
        await client.close()
        seen += [(status, location), (again[0], again[2].get("Location"))]
    bad = [loc for _, loc in seen if off_site(loc)]
    where = sorted({str(loc) for _, loc in seen})
    return Result("open redirect", f"Locations {where}", not bad)


async def alias_hijack(world: World) -> Result:
    mira = Client(world.web)
    await mira.login(MIRA_EMAIL)
    await mira.get("/me")
    answers = {}
    for alias in (JUNO, "lora", "a", "style"):
        status, _, _ = await mira.post("/me/aliases", {"alias": alias})
        answers[alias] = status
    await mira.close()
    refused = all(s == 400 for s in answers.values())
    return Result("alias hijack", f"statuses {answers}", refused)


def animated_webp() -> bytes:
    """6000 x 6000, 6 frames (noise in a corner, so it is not all one colour)."""
    frames = []
    for n in range(6):
        frame = Image.new("RGB", (6000, 6000), (40 * n, 90, 160))
        frame.paste(Image.effect_noise((400, 400), 64 + 20 * n).convert("RGB"), (0, 0))
        frames.append(frame)
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], quality=50, method=0)
    return out.getvalue()


def big_png() -> bytes:
    """40 megapixels (8000 x 5000), the most the image gate lets through."""
    image = Image.linear_gradient("L").resize((8000, 5000)).convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


async def _upload(client: Client, data: bytes, name: str) -> int:
    form = aiohttp.FormData()
    form.add_field("image", data, filename=name, content_type="application/octet-stream")
    status, _, _ = await client.post("/me/images", form)
    return status


async def webp_uploads(world: World, data: bytes) -> Result:
    clients = [Client(world.web) for _ in range(8)]
    for client in clients:
        await client.login(MIRA_EMAIL)
        await client.get("/me")
    statuses = await asyncio.gather(*(_upload(c, data, "bomb.webp") for c in clients))
    for client in clients:
        await client.close()
    came = f"{len(data) // 1024} KB animated WebP x8: statuses {sorted(statuses)}"
    return Result("8 animated 6000x6000 WebP uploads", came, None)


async def png_thumbnails(world: World, data: bytes) -> Result:
    mira = Client(world.web)
    await mira.login(MIRA_EMAIL)
    await mira.get("/me")
    uploaded = await _upload(mira, data, "big.png")
    _, page, _ = await mira.get("/me")
    shas = re.findall(r"/blobs/([0-9a-f]{64})/thumb", page)
    if not shas:
        await mira.close()
        return Result("16 thumbnails of a 40 MP PNG", f"upload {uploaded}, no thumbnail", None)
    started = time.monotonic()
    got = await asyncio.gather(*(mira.get(f"/blobs/{shas[-1]}/thumb") for _ in range(16)))
    seconds = time.monotonic() - started
    await mira.close()
    statuses = sorted(g[0] for g in got)
    came = f"upload {uploaded}; 16 thumbs {statuses[0]}..{statuses[-1]} in {seconds:.2f} s"
    return Result("16 thumbnails of a 40 MP PNG", came, None, seconds)


def header_file(path: Path, metadata: dict[str, str]) -> Path:
    """A one-tensor safetensors file with ``metadata`` in its header."""
    header = json.dumps(
        {"__metadata__": metadata, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    ).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0\0\0\0")
    return path


async def scan_big_header(world: World) -> Result:
    small = header_file(world.folder / "small_header.safetensors", {"ss_notes": "x"})
    _, _, small_peak = await asyncio.to_thread(
        peak_rss_of_run, world.env, "scan", str(small), "--no-probe"
    )
    path = header_file(world.folder / "big_header.safetensors", {"ss_notes": "x" * 99_000_000})
    started = time.monotonic()
    code, _, peak = await asyncio.to_thread(
        peak_rss_of_run, world.env, "scan", str(path), "--no-probe"
    )
    seconds = time.monotonic() - started
    path.unlink()
    came = f"exit {code}, scan peak RSS {peak:.0f} MB ({small_peak:.0f} MB for a tiny header)"
    return Result("scan of a 99 MB header", came, peak < MEMORY_LIMIT_MB, seconds, peak)


async def _page_latency(client: Client, path: str) -> float:
    started = time.monotonic()
    status, _, _ = await client.get(path)
    if status != 200:
        raise RuntimeError(f"{path} answered {status} to a signed-in user")
    return time.monotonic() - started


async def baseline(world: World, client: Client) -> float:
    """The signed-in artist's /me, no attack running: the median of 10."""
    return statistics.median([await _page_latency(client, "/me") for _ in range(10)])


async def login_flood(world: World, mira: Client, base_s: float) -> Result:
    """64 parallel failed sign-ins from one address; mira's /me fetched over and over
    meanwhile."""
    flood = Client(world.web, "127.0.0.2")
    await flood.get("/login")

    async def wrong(n: int) -> int:
        data = {"email": f"user{n}@abuse.test", "password": "wrong password"}
        return (await flood.post("/login", data))[0]

    started = time.monotonic()
    tries = asyncio.gather(*(wrong(n) for n in range(64)))
    pages = []
    while not tries.done():
        pages.append(await _page_latency(mira, "/me"))
        await asyncio.sleep(0.02)
    statuses = await tries
    seconds = time.monotonic() - started
    await flood.close()
    worst = max(pages)
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    came = (
        f"statuses {counts} in {seconds:.2f} s; /me worst {worst:.3f} s over {len(pages)} "
        f"fetches (baseline {base_s:.3f} s)"
    )
    extra = {"page_worst_s": worst, "page_median_s": statistics.median(pages)}
    return Result("64-way login flood", came, worst < PAGE_LIMIT_S, seconds, extra=extra)


async def many_emails(world: World) -> Result:
    guesser = Client(world.web, "127.0.0.3")
    await guesser.get("/login")
    statuses = []
    for n in range(30):
        data = {"email": f"guess{n}@abuse.test", "password": "wrong password"}
        statuses.append((await guesser.post("/login", data))[0])
    await guesser.close()
    first = statuses.index(429) + 1 if 429 in statuses else None
    came = f"first 429 at try {first} of 30" if first else "30 x 401, never throttled"
    return Result("one address, 30 emails", came, first is not None)


async def cookie_replay(world: World) -> Result:
    mod = Client(world.web, "127.0.0.4")
    await mod.login(MOD_EMAIL)
    await mod.get("/queue")
    saved = mod.cookie()
    await mod.post("/logout")
    await mod.close()
    thief = aiohttp.ClientSession()
    headers = {"Cookie": f"{SESSION_COOKIE}={saved}"}
    async with thief.get(world.web + "/queue", headers=headers, allow_redirects=False) as resp:
        status, location = resp.status, resp.headers.get("Location")
    await thief.close()
    refused = status != 200
    return Result("cookie replay after logout", f"/queue {status} -> {location}", refused)


async def odd_ids(world: World) -> Result:
    mod = Client(world.web, "127.0.0.4")
    await mod.login(MOD_EMAIL)
    bearer = {"Authorization": f"Bearer {world.token}"}
    answers = {
        "/findings/99999999999999999999": (await mod.get("/findings/99999999999999999999"))[0],
        "/findings/%D9%A3": (await mod.get("/findings/%D9%A3"))[0],
        "/api/v1/findings?offset=huge": (
            await mod.get("/api/v1/findings?offset=" + "9" * 40, headers=bearer)
        )[0],
        "/api/v1/uploads?offset=huge": (
            await mod.get("/api/v1/uploads?offset=" + "9" * 40, headers=bearer)
        )[0],
    }
    await mod.close()
    return Result("odd ids", f"statuses {answers}", 500 not in answers.values())


async def terminal_codes(world: World) -> Result:
    """Control codes in a file's name (what `scan` prints of a local file) and header."""
    folder = world.folder / "hostile"
    folder.mkdir(exist_ok=True)
    path = header_file(
        folder / f"{HOSTILE_TEXT.replace('/', '_')}.safetensors",
        {"modelspec.title": HOSTILE_TEXT, "ss_output_name": HOSTILE_TEXT},
    )
    code, out, _ = await asyncio.to_thread(
        peak_rss_of_run, world.env, "scan", str(path), "--no-probe"
    )
    raw, printed = out.count(ESC), "click me" in out
    came = f"exit {code}, name printed: {printed}, {raw} raw ESC"
    return Result("terminal control codes in scan", came, raw == 0 if printed else None)


async def _subscribe(client: Client, address: str) -> int:
    data = {"email": address, "channel": "email", "min_score": "0"}
    return (await client.post("/me/alerts", data))[0]


async def confirmation_mail_rate(world: World, sink: MailSink) -> Result:
    """Confirmation mails to 40 strangers' addresses, as fast as the portal takes them
    (held: no more than the overall limit go out, the rest are refused with a 429)."""
    mira = Client(world.web)
    await mira.login(MIRA_EMAIL)
    await mira.get("/me")
    before = len(sink.messages)
    started = time.monotonic()
    statuses = [await _subscribe(mira, f"stranger{n}@elsewhere.test") for n in range(40)]
    seconds = time.monotonic() - started
    await asyncio.sleep(0.5)  # the last mail may still be on its way
    await mira.close()
    mailed = len(sink.messages) - before
    came = f"{mailed} mails to 40 addresses in {seconds:.2f} s ({mailed / seconds:.0f}/s)"
    held = mailed <= OVERALL and 429 in statuses
    return Result("confirmation-mail rate", f"{came}, statuses {sorted(set(statuses))}", held)


class SwitchSink(MailSink):
    """The bench's mail server: keeps every message, or refuses each one while ``refusing``."""

    refusing = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refusing:
            return "451 4.3.0 try again later"
        return await super().handle_DATA(server, session, envelope)


async def smtp_failure(world: World, sink: SwitchSink) -> Result:
    """Subscribing twice while the mail server refuses mail: what comes back (held: no 500, and
    the retry finds the one subscription instead of adding another)."""
    sink.refusing = True
    mira = Client(world.web)
    await mira.login(MIRA_EMAIL)
    await mira.get("/me")
    statuses = [await _subscribe(mira, "down@elsewhere.test") for _ in range(2)]
    _, page, _ = await mira.get("/me")
    await mira.close()
    sink.refusing = False
    rows = page.count("Stop alerts to down@elsewhere.test")  # one per listed subscription
    came = f"statuses {statuses}, subscriptions listed for the address: {rows}"
    return Result("SMTP failure on subscribe", came, 500 not in statuses and rows <= 1)


async def small_web_checks(world: World) -> list[Result]:
    """What the unauthenticated home page, the headers and the data dir show."""
    client = Client(world.web)
    _, home, _ = await client.get("/")
    _, _, headers = await client.get("/login")
    await client.close()
    results = []
    shows = str(world.data_dir) in home or "sqlite:" in home
    results.append(Result("home page database URL", f"shown: {shows}", not shows))
    hsts = headers.get("Strict-Transport-Security")
    # HSTS only means something over https; this server is plain http on loopback
    results.append(Result("HSTS header (http base_url)", f"{hsts!r}", None))
    databases = sorted(world.data_dir.glob("*.db")) + sorted(world.data_dir.glob("*.sqlite*"))
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in databases}
    readable = any(p.stat().st_mode & 0o004 for p in databases)
    results.append(Result("database file mode", f"{modes}", not readable if modes else None))
    return results
