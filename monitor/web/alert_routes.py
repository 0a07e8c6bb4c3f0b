"""Public routes for email subscribers: the confirmation link and one-click unsubscribe.

``POST /unsubscribe/{token}`` is RFC 8058's one-click endpoint: mail clients POST
``List-Unsubscribe=One-Click`` to it with no cookie and no CSRF token, and the signed token
in the URL is what authenticates it (any CSRF middleware must let it through). ``GET`` on
the same URL only shows a button, because link scanners fetch every URL in a message.
"""

from __future__ import annotations

import asyncio
import html

from aiohttp import web

from alerts.links import Links
from monitor.build.alerts import build_links
from monitor.runtime import Runtime
from storage.subscriptions import SubscriptionStore

LINKS_KEY: web.AppKey[Links] = web.AppKey("alert_links", Links)
SUBSCRIPTIONS_KEY: web.AppKey[SubscriptionStore] = web.AppKey(
    "alert_subscriptions", SubscriptionStore
)


def add_alert_routes(app: web.Application, runtime: Runtime) -> None:
    app[LINKS_KEY] = build_links(runtime.settings)
    app[SUBSCRIPTIONS_KEY] = SubscriptionStore(runtime.engine)
    app.router.add_get("/subscriptions/confirm/{token}", confirm)
    app.router.add_get("/unsubscribe/{token}", unsubscribe_page)
    app.router.add_post("/unsubscribe/{token}", unsubscribe)


async def confirm(request: web.Request) -> web.Response:
    claim = request.app[LINKS_KEY].read_confirm(request.match_info["token"])
    if claim is None:
        return _page("Link not valid", "This confirmation link is damaged or expired.", 400)
    store = request.app[SUBSCRIPTIONS_KEY]
    record = await asyncio.to_thread(store.confirm, *claim)
    if record is None:
        return _page("Subscription not found", "This subscription no longer exists.", 404)
    about = record.artist or record.team or ""
    return _page("Subscription confirmed", f"{record.address} will get alerts about {about}.")


async def unsubscribe_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    if request.app[LINKS_KEY].read_unsubscribe(token) is None:
        return _page("Link not valid", "This unsubscribe link is damaged.", 400)
    form = (
        f'<form method="post" action="/unsubscribe/{html.escape(token)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return _page("Unsubscribe", "Stop these emails?", body_html=form)


async def unsubscribe(request: web.Request) -> web.Response:
    claim = request.app[LINKS_KEY].read_unsubscribe(request.match_info["token"])
    if claim is None:
        return _page("Link not valid", "This unsubscribe link is damaged.", 400)
    await request.read()  # "List-Unsubscribe=One-Click" (or the form): the token decides
    store = request.app[SUBSCRIPTIONS_KEY]
    await asyncio.to_thread(store.remove, *claim)
    return _page("Unsubscribed", "You will get no more of these emails.")


def _page(title: str, message: str, status: int = 200, body_html: str = "") -> web.Response:
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{body_html}</body></html>"
    )
    return web.Response(text=page, status=status, content_type="text/html")
