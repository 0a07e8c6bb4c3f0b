"""Bounded thread pools for the web app's CPU- and memory-heavy steps.

Password hashing and image decoding each get their own few threads, apart from the
default pool that database reads use: a flood of failed sign-ins then queues behind one or
two hashing threads instead of starving every signed-in page, and parallel image uploads
decode at most two at a time, which bounds the memory they take.

The password pool's queue is bounded too (`Backlog`): past ``PASSWORD_BACKLOG`` checks
waiting or running, a sign-in is told to come back in a few seconds instead of queueing
behind a flood from many addresses (each address is limited by `monitor.web.login_limits`,
but a thousand addresses are not).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, TypeVarTuple, Unpack

from aiohttp import web

# Half the cores at most (one on a 2-core host): argon2 keeps a core busy per check, and
# the event loop and the database threads need the rest while a flood is hashed.
PASSWORD_THREADS = max(1, min(2, (os.cpu_count() or 2) // 2))
PASSWORD_BACKLOG = 32
IMAGE_THREADS = 2
T = TypeVar("T")
Ts = TypeVarTuple("Ts")
PASSWORD_POOL: web.AppKey[ThreadPoolExecutor] = web.AppKey("password_pool", ThreadPoolExecutor)
IMAGE_POOL: web.AppKey[ThreadPoolExecutor] = web.AppKey("image_pool", ThreadPoolExecutor)


class Backlog:
    """How many jobs a pool has waiting or running; ``with backlog:`` counts one."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def full(self) -> bool:
        return self.count >= self.limit

    def __enter__(self) -> Backlog:
        self.count += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.count -= 1


PASSWORD_CHECKS: web.AppKey[Backlog] = web.AppKey("password_checks", Backlog)


def add_executors(app: web.Application) -> None:
    """Give the app its pools; they are shut down when the app is cleaned up."""
    app[PASSWORD_POOL] = ThreadPoolExecutor(PASSWORD_THREADS, thread_name_prefix="passwords")
    app[IMAGE_POOL] = ThreadPoolExecutor(IMAGE_THREADS, thread_name_prefix="images")
    app[PASSWORD_CHECKS] = Backlog(PASSWORD_BACKLOG)

    async def shut_down(app: web.Application) -> None:
        for key in (PASSWORD_POOL, IMAGE_POOL):
            app[key].shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(shut_down)


async def run_in(
    app: web.Application,
    key: web.AppKey[ThreadPoolExecutor],
    func: Callable[[Unpack[Ts]], T],
    *args: *Ts,
) -> T:
    """``func(*args)`` on one of the app's pools."""
    return await asyncio.get_running_loop().run_in_executor(app[key], func, *args)
