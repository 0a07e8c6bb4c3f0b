"""Faults a fake hub injects into its next requests: the shared quirks of real hubs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakehubs.network import CUT_KEY

FaultKind = str  # "429", "503", "500", "reset", "cut", "slow", "garbage"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Faults:
    """Queued faults, each for the next request whose path starts with its prefix."""

    queued: list[tuple[str, FaultKind]] = field(default_factory=list)
    retry_after: str = "1"
    slow_s: float = 0.4
    injected: list[tuple[str, FaultKind]] = field(default_factory=list)

    def add(self, prefix: str, kind: FaultKind, times: int = 1) -> None:
        self.queued.extend([(prefix, kind)] * times)

    def take(self, path: str) -> FaultKind | None:
        for i, (prefix, kind) in enumerate(self.queued):
            if path.startswith(prefix):
                del self.queued[i]
                self.injected.append((path, kind))
                return kind
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        kind = self.take(request.path)
        if kind is None:
            return await handler(request)
        if kind == "cut":  # half the body, then the connection resets (tests.fakehubs.network)
            request[CUT_KEY] = True
            return await handler(request)
        if kind == "slow":
            await asyncio.sleep(self.slow_s)
            return await handler(request)
        if kind == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        if kind == "garbage":
            return web.Response(text="<html>oops</html>", content_type="application/json")
        status = int(kind)
        headers = {"Retry-After": self.retry_after} if status in (429, 503) else {}
        body = json.dumps({"error": "Server busy, please retry shortly."})
        return web.Response(
            status=status, text=body, headers=headers, content_type="application/json"
        )
