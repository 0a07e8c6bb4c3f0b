"""The ``JobQueue`` port and its in-process adapter (the embedded default).

A job is a stage name and an upload's database key. Producers (serve's sweep) only
enqueue; who runs the jobs depends on the adapter: the in-process queue is drained by the
probe worker inside ``serve`` (`take`, `done`), the procrastinate one
(`monitor.jobs.procrastinate_queue`) by ``stylewatch worker`` processes.

The in-process queue keeps each job once (enqueueing one already waiting or running is a
no-op) and forgets everything on exit: the uploads' states in the database say what is
still to do, and the sweep seeds the queue from them.
"""

from __future__ import annotations

import asyncio
from typing import Literal, Protocol

Stage = Literal["probe"]


class JobQueue(Protocol):
    async def enqueue(self, stage: Stage, upload_pk: int) -> bool:
        """Queue a job; False when it is already queued or running."""
        ...


class InProcessQueue:
    """Jobs in memory, one asyncio queue per stage."""

    def __init__(self) -> None:
        self._queues: dict[Stage, asyncio.Queue[int]] = {}
        self._known: set[tuple[Stage, int]] = set()

    def _queue(self, stage: Stage) -> asyncio.Queue[int]:
        return self._queues.setdefault(stage, asyncio.Queue())

    async def enqueue(self, stage: Stage, upload_pk: int) -> bool:
        if (stage, upload_pk) in self._known:
            return False
        self._known.add((stage, upload_pk))
        await self._queue(stage).put(upload_pk)
        return True

    async def take(self, stage: Stage) -> int:
        """The next upload for ``stage``, waiting until there is one."""
        return await self._queue(stage).get()

    def done(self, stage: Stage, upload_pk: int) -> None:
        """The job finished (either way); it may be queued again later."""
        self._known.discard((stage, upload_pk))
