"""The stylewatch processes under test: started from one config file, killed with SIGKILL,
restarted, and asked whether they serve again.

Each process runs in its own session (a Ctrl-C to the bench reaches only the bench, which
then stops what it started) and appends its output to one log per role, with a marker line
per incarnation, so tracebacks can be counted and read afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

BIN = Path(sys.executable).parent / "stylewatch"
READY_TIMEOUT_S = 1.0
STOP_TIMEOUT_S = 30.0


def stylewatch_env(config: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for every stylewatch command: this config, no developer settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
    env.update(
        STYLEWATCH_CONFIG=str(config),
        HF_HUB_OFFLINE="1",
        # The tiny probe models gain nothing from more threads, and on a 2-core machine
        # OpenMP threads spinning against the other processes slow everything down.
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env


@dataclass(frozen=True, slots=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


async def cli(env: Mapping[str, str], *args: str, timeout_s: float = 300.0) -> Finished:
    """Run ``stylewatch ARGS`` to completion; raises RuntimeError when it fails."""
    proc = await asyncio.create_subprocess_exec(
        str(BIN),
        *args,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"stylewatch {' '.join(args)} ran past {timeout_s:.0f} s") from None
    done = Finished(proc.returncode or 0, out.decode(), err.decode())
    if done.returncode != 0:
        raise RuntimeError(f"stylewatch {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done


@dataclass
class Supervised:
    """One long-running stylewatch process (``serve`` or ``worker``) the bench owns."""

    name: str
    args: Sequence[str]
    env: Mapping[str, str]
    log: Path
    ready_url: str | None = None  # /readyz when the process serves HTTP
    starts: int = 0
    killed: bool = False  # True from the bench's SIGKILL until the next start
    _proc: asyncio.subprocess.Process | None = field(default=None, repr=False)
    started_at: float = 0.0

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        self.starts += 1
        self.killed = False
        with self.log.open("a", encoding="utf-8") as fh:
            fh.write(f"=== chaos: start #{self.starts} of {self.name} at {time.time():.3f}\n")
        with self.log.open("ab") as fh:
            self._proc = await asyncio.create_subprocess_exec(
                str(BIN),
                *self.args,
                env=dict(self.env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=fh,
                stderr=fh,
                start_new_session=True,
            )
        self.started_at = time.monotonic()

    async def kill(self) -> None:
        """SIGKILL, as the OOM killer or a power cut would, then reap it."""
        if self._proc is None or self._proc.returncode is not None:
            return
        self.killed = True
        self._proc.send_signal(signal.SIGKILL)
        await self._proc.wait()

    async def stop(self) -> int | None:
        """SIGTERM and wait; SIGKILL after ``STOP_TIMEOUT_S``. Returns the exit status."""
        if self._proc is None:
            return None
        if self._proc.returncode is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                await self.kill()
        return self._proc.returncode

    async def ready(self, session: aiohttp.ClientSession) -> bool:
        """Whether it is running and, when it serves HTTP, answers /readyz with 200."""
        if not self.alive:
            return False
        if self.ready_url is None:
            return True
        try:
            timeout = aiohttp.ClientTimeout(total=READY_TIMEOUT_S)
            async with session.get(self.ready_url, timeout=timeout) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False


def tracebacks(logs: Sequence[Path]) -> int:
    """Tracebacks in the processes' logs: each one is a bug the run hit."""
    count = 0
    for log in logs:
        with contextlib.suppress(FileNotFoundError):
            count += log.read_text(encoding="utf-8", errors="replace").count("Traceback")
    return count
