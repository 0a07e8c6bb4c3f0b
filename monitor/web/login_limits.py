"""A login rate limit: at most ``max_failures`` failed sign-ins per (address, email) in a
sliding window, kept in memory (one process serves the web UI)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

MAX_FAILURES = 5
WINDOW_S = 300.0
MAX_KEYS = 10_000


class LoginLimiter:
    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_failures
        self._window_s = window_s
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def blocked(self, address: str, email: str) -> bool:
        """True when this (address, email) has used up its tries for now."""
        key = (address, email.strip().lower())
        return key in self._failures and len(self._recent(key)) >= self._max

    def failed(self, address: str, email: str) -> None:
        key = (address, email.strip().lower())
        if len(self._failures) >= MAX_KEYS:
            self._prune()
        self._recent(key).append(self._clock())

    def succeeded(self, address: str, email: str) -> None:
        self._failures.pop((address, email.strip().lower()), None)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        cutoff = self._clock() - self._window_s
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures

    def _prune(self) -> None:
        cutoff = self._clock() - self._window_s
        stale = [k for k, v in self._failures.items() if not v or v[-1] <= cutoff]
        for key in stale:
            del self._failures[key]
        if len(self._failures) >= MAX_KEYS:  # under attack from many keys: forget the oldest
            oldest = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for key in oldest[: MAX_KEYS // 2]:
                del self._failures[key]
