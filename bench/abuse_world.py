"""The world `bench/abuse.py` attacks: one data dir and config, two artists and a moderator
registered with the CLI as an operator would, a `stylewatch serve` on loopback, and web
clients that sign in, keep their CSRF token and may connect from their own loopback
address (127.0.0.2, …) so that the server sees several clients."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.chaos_procs import BIN, stylewatch_env

PASSWORD = "correct horse battery staple"
MIRA, JUNO = "Mira Okafor", "Juno Castellanos"
MIRA_EMAIL, JUNO_EMAIL, MOD_EMAIL = "mira@abuse.test", "juno@abuse.test", "mod@abuse.test"
SESSION_COOKIE = "stylewatch_session"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True, slots=True)
class World:
    folder: Path
    data_dir: Path
    config: Path
    env: dict[str, str]
    web: str  # http://127.0.0.1:PORT
    token: str  # the moderator's API token


def config_text(data_dir: Path, port: int, extra: str = "") -> str:
    """No hub is polled (nothing leaves loopback); the web UI on ``port``."""
    return (
        f"data_dir = {json.dumps(str(data_dir))}\n"
        "[sources.civitai]\nenabled = false\n"
        "[sources.huggingface]\nenabled = false\n"
        "[hub_history]\nenabled = false\n"
        f'[web]\nhost = "127.0.0.1"\nport = {port}\n'
        f'base_url = "http://127.0.0.1:{port}"\n' + extra
    )


def run_cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(BIN), *args], env=env, input=stdin, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"stylewatch {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def build_world(folder: Path, port: int, extra_config: str = "") -> World:
    """Artists and users, added with the CLI before the server starts."""
    data_dir = folder / "data"
    config = folder / "stylewatch.toml"
    config.write_text(config_text(data_dir, port, extra_config))
    env = stylewatch_env(config)
    listing = folder / "artists.toml"
    listing.write_text("".join(f"[[artist]]\nname = {json.dumps(n)}\n" for n in (MIRA, JUNO)))
    run_cli(env, "artist", "import", str(listing))
    for email, role, artist in (
        (MIRA_EMAIL, "artist", MIRA),
        (JUNO_EMAIL, "artist", JUNO),
        (MOD_EMAIL, "moderator", None),
    ):
        linked = ["--artist", artist] if artist else []
        run_cli(
            env, "user", "add", email, "--role", role, *linked, "--password-stdin", stdin=PASSWORD
        )
    token = run_cli(env, "user", "token", MOD_EMAIL).split()[-1]
    return World(folder, data_dir, config, env, f"http://127.0.0.1:{port}", token)


def vm_hwm_mb(pid: int) -> float:
    """The process's peak resident memory so far (Linux ``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0  # a zombie has no memory left to report


def peak_rss_of_run(env: dict[str, str], *args: str) -> tuple[int, str, float]:
    """(exit status, output, peak RSS in MB) of one ``stylewatch ARGS`` run.

    The peak is the child's ``VmHWM``, read until it exits: ``wait4``'s ``ru_maxrss``
    would start from this bench's own peak, which a forked child inherits."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([str(BIN), *args], env=env, stdout=out, stderr=subprocess.STDOUT)
        peak = 0.0
        while proc.poll() is None:
            with contextlib.suppress(OSError):
                peak = max(peak, vm_hwm_mb(proc.pid))
            time.sleep(0.01)
        out.seek(0)
        return proc.returncode, out.read().decode(errors="replace"), peak


class Client:
    """One browser: its own cookies, the last CSRF token it was shown."""

    def __init__(self, web: str, address: str | None = None) -> None:
        self.web = web
        connector = aiohttp.TCPConnector(local_addr=(address, 0)) if address else None
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=120),
        )
        self.csrf = ""

    async def request(self, method: str, path: str, **kw: Any) -> tuple[int, str, Any]:
        kw.setdefault("allow_redirects", False)
        async with self.http.request(method, self.web + path, **kw) as resp:
            text = (await resp.read()).decode(errors="replace")
            found = _CSRF.search(text) if resp.content_type == "text/html" else None
            if found:
                self.csrf = found.group(1)
            return resp.status, text, resp.headers

    async def get(self, path: str, **kw: Any) -> tuple[int, str, Any]:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, data: Any = None, **kw: Any) -> tuple[int, str, Any]:
        if isinstance(data, aiohttp.FormData):
            data.add_field("csrf_token", self.csrf)
        else:
            data = {"csrf_token": self.csrf, **(data or {})}
        return await self.request("POST", path, data=data, **kw)

    async def login(self, email: str, password: str = PASSWORD, next_: str = "") -> Any:
        await self.get("/login")
        status, _, headers = await self.post(
            "/login", {"email": email, "password": password, "next": next_}
        )
        return status, headers.get("Location")

    def cookie(self) -> str | None:
        for morsel in self.http.cookie_jar:
            if morsel.key == SESSION_COOKIE:
                return morsel.value
        return None

    async def close(self) -> None:
        await self.http.close()
