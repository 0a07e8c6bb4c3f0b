"""The moderators' list of confirmed findings whose upload is still up on its hub some days
after the decision (takedown tracking): what to chase with the hub's trust and safety team."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from monitor.runtime import Runtime
from monitor.web.auth import requires
from monitor.web.rendering import render
from storage.takedowns import Takedowns


@dataclass(frozen=True, slots=True)
class TakedownView:
    takedowns: Takedowns
    still_up_days: float


TAKEDOWN_VIEW_KEY: web.AppKey[TakedownView] = web.AppKey("takedown_view", TakedownView)


@requires("moderator")
async def still_up_page(request: web.Request) -> web.StreamResponse:
    view = request.app[TAKEDOWN_VIEW_KEY]
    items = await asyncio.to_thread(view.takedowns.still_up, view.still_up_days)
    context = {"items": items, "days": view.still_up_days, "now": view.takedowns.now()}
    return await render(request, "still_up.html", context)


def add_takedown_pages(app: web.Application, runtime: Runtime) -> None:
    app[TAKEDOWN_VIEW_KEY] = TakedownView(
        Takedowns(runtime.engine), runtime.settings.takedown.still_up_days
    )
    app.router.add_get("/queue/still-up", still_up_page)
