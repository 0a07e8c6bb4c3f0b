"""Stopping on SIGINT or SIGTERM: the one handler ``serve`` and ``stylewatch worker`` share.

The handlers set an event on the running loop (never raise KeyboardInterrupt into whatever
is awaiting), and are removed when the block exits, so a second signal after shut-down
begins gets Python's default behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

__all__ = ["STOP_SIGNALS", "stop_on_signals", "wait_for_stop_signal"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.asynccontextmanager
async def stop_on_signals(stop: asyncio.Event) -> AsyncIterator[None]:
    """Set ``stop`` on SIGINT or SIGTERM while the block runs."""
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


async def wait_for_stop_signal() -> None:
    """Return on the first SIGINT or SIGTERM."""
    stop = asyncio.Event()
    async with stop_on_signals(stop):
        await stop.wait()
