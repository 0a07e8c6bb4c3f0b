"""The web application: health endpoints and the home page.

The moderator queue, artist portal and JSON API grow here (see the web issue); for now the
home page says what is running.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from storage.store import Store

STATUS_KEY: web.AppKey[ServiceStatus] = web.AppKey("status")


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """What the running service tells the home page and /readyz."""

    version: str
    database: str  # rendered without its password
    sources: tuple[str, ...]
    store: Store
    ready: Callable[[], bool]


async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    status = request.app[STATUS_KEY]
    ok = await asyncio.to_thread(status.ready)
    return web.json_response({"status": "ok" if ok else "unavailable"}, status=200 if ok else 503)


async def home(request: web.Request) -> web.Response:
    status = request.app[STATUS_KEY]
    counts = await asyncio.to_thread(status.store.counts)
    sources = ", ".join(status.sources) or "none"
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in (
            ("version", status.version),
            ("database", status.database),
            ("sources polled", sources),
            ("artists registered", counts.artists),
            ("uploads recorded", counts.uploads),
            ("findings", counts.findings),
        )
    )
    page = _PAGE.format(rows=rows)
    return web.Response(text=page, content_type="text/html")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stylewatch</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem;
       color: #1b1b1b; }}
h1 {{ font-size: 1.6rem; margin-bottom: .2rem; }}
p.lead {{ color: #555; margin-top: 0; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #ddd; }}
th {{ width: 40%; font-weight: 600; color: #333; }}
</style></head>
<body>
<h1>stylewatch is running</h1>
<p class="lead">Watching model hubs for uploads that imitate registered artists' styles.</p>
<table>{rows}</table>
<p><a href="/livez">/livez</a> · <a href="/readyz">/readyz</a></p>
</body></html>
"""


def create_app(status: ServiceStatus) -> web.Application:
    app = web.Application()
    app[STATUS_KEY] = status
    app.router.add_get("/", home)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    return app
