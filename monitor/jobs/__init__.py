"""monitor.jobs: the `JobQueue` port (`queue`: a stage name and an upload's key) with its
in-process adapter, and the procrastinate adapter on PostgreSQL (`procrastinate_queue`)."""

from __future__ import annotations

# Its modules (imported on use, not here).
__all__ = [
    "procrastinate_queue",
    "queue",
]
