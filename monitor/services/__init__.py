"""monitor.services: what runs for as long as a process does.

- `serve`: ``stylewatch serve``: the web UI, the polls and the pipeline's background work;
- `worker`: ``stylewatch worker`` and serve's side of the procrastinate queue;
- `polling`, `probing`, `alerts`: the poll jobs, the probe worker, alert delivery;
- `schedules`: serve's one scheduler and the hub jobs on it;
- `signals`: the one SIGINT/SIGTERM handler serve and the worker share.
"""

from __future__ import annotations

# Its modules (imported on use, not here).
__all__ = [
    "alerts",
    "polling",
    "probing",
    "schedules",
    "serve",
    "signals",
    "worker",
]
