"""The web application: health endpoints, sign-in, the moderator queue, the artist portal,
the JSON API and /metrics.

Public routes: ``/``, ``/livez``, ``/readyz``, ``/metrics``, ``/login``, ``/static/…`` and
the alert links (confirm, one-click unsubscribe). Everything else needs a signed-in user of
the right role (pages: see `monitor.web.auth`; API: bearer tokens, see `monitor.web.api`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from monitor.artists.references import MAX_IMAGE_BYTES
from monitor.runtime import Runtime, safe_database_url
from monitor.secret_key import web_secret_key
from monitor.web.account_pages import add_account_pages
from monitor.web.alert_pages import add_alert_pages
from monitor.web.alert_routes import add_alert_routes
from monitor.web.api import add_api_routes
from monitor.web.auth import csrf_middleware, security_headers_middleware, session_user_middleware
from monitor.web.blob_routes import add_blob_routes
from monitor.web.context import CONTEXT_KEY, WebContext, request_user
from monitor.web.executors import add_executors
from monitor.web.filters import FILTERS
from monitor.web.login import login, login_form, logout
from monitor.web.login_limits import LoginLimiter
from monitor.web.metrics import METRICS_KEY, WebMetrics, metrics_handler
from monitor.web.password_reset import add_password_reset_routes
from monitor.web.passwords import Passwords
from monitor.web.portal_pages import add_portal_routes
from monitor.web.queue_pages import add_queue_routes
from monitor.web.rendering import render
from monitor.web.reports import add_report_routes
from monitor.web.sessions import SESSION_MAX_AGE_S, CookieSessions
from monitor.web.takedown_pages import add_takedown_pages
from storage.store import Store
from storage.triage import TriageStore
from storage.users import UserStore
from storage.web_queries import WebQueries

STATUS_KEY: web.AppKey[ServiceStatus] = web.AppKey("status")
# Who the status page shows where the database lives.
STAFF_ROLES = frozenset({"admin", "moderator"})
SESSION_COOKIE = "stylewatch_session"
MAX_REQUEST_BYTES = MAX_IMAGE_BYTES + 1024 * 1024
WEB_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """What the running service tells the home page and /readyz, and what the web UI uses."""

    version: str
    database: str  # rendered without its password
    sources: tuple[str, ...]
    store: Store
    ready: Callable[[], bool]
    runtime: Runtime
    metrics: WebMetrics = field(default_factory=WebMetrics)
    # Why the blob store cannot be used now, in one line (None: it can); /readyz says it.
    blobs_problem: Callable[[], str | None] = lambda: None


async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    status = request.app[STATUS_KEY]
    ok = await asyncio.to_thread(status.ready)
    problem = await asyncio.to_thread(status.blobs_problem)
    body = {"status": "ok" if ok and problem is None else "unavailable"}
    if problem is not None:
        body["blobs"] = problem
    return web.json_response(body, status=200 if body["status"] == "ok" else 503)


async def home(request: web.Request) -> web.Response:
    status = request.app[STATUS_KEY]
    counts = await asyncio.to_thread(status.store.counts)
    rows: list[tuple[str, str | int]] = [("version", status.version)]
    user = request_user(request)
    if user is not None and user.role in STAFF_ROLES:
        # The page is public: where the data lives (host, user, path) is for staff only,
        # and masked again here in case a caller passed the raw URL.
        rows.append(("database", safe_database_url(status.database)))
    rows += [
        ("sources polled", ", ".join(status.sources) or "none"),
        ("artists registered", counts.artists),
        ("uploads recorded", counts.uploads),
        ("findings", counts.findings),
    ]
    return await render(request, "home.html", {"rows": rows}, forms=False)


def web_context(status: ServiceStatus, passwords: Passwords | None) -> WebContext:
    runtime = status.runtime
    base_url = runtime.settings.web.base_url or ""
    return WebContext(
        store=status.store,
        users=UserStore(runtime.engine),
        triage=TriageStore(runtime.engine),
        queries=WebQueries(runtime.engine),
        blobs=runtime.blobs,
        passwords=passwords or Passwords(),
        limiter=LoginLimiter(),
        metrics=status.metrics,
        secure_cookies=base_url.lower().startswith("https://"),
        probe_families=frozenset(runtime.settings.probe.base_models),
    )


def create_app(status: ServiceStatus, *, passwords: Passwords | None = None) -> web.Application:
    """The whole web app; ``passwords`` may be a cheaper hasher in tests."""
    app = web.Application(
        client_max_size=MAX_REQUEST_BYTES, middlewares=[security_headers_middleware]
    )
    app[STATUS_KEY] = status
    app[CONTEXT_KEY] = context = web_context(status, passwords)
    app[METRICS_KEY] = status.metrics
    add_executors(app)
    status.metrics.watch_database(context.queries)
    _setup_sessions(app, status.runtime, context.secure_cookies)
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(WEB_DIR / "templates"), autoescape=True
    )
    env.filters.update(FILTERS)
    _add_routes(app, status.runtime)
    return app


def _setup_sessions(app: web.Application, runtime: Runtime, secure: bool) -> None:
    sessions = CookieSessions(
        web_secret_key(runtime.settings),
        cookie=SESSION_COOKIE,
        max_age_s=SESSION_MAX_AGE_S,
        secure=secure,
    )
    app.middlewares.append(sessions.middleware)
    app.middlewares.append(session_user_middleware)
    app.middlewares.append(csrf_middleware)


def _add_routes(app: web.Application, runtime: Runtime) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    add_password_reset_routes(app, runtime)
    add_account_pages(app)
    app.router.add_static("/static", WEB_DIR / "static")
    add_queue_routes(app)
    add_report_routes(app)
    add_portal_routes(app, runtime)
    add_blob_routes(app)
    add_api_routes(app)
    add_alert_routes(app, runtime)
    add_alert_pages(app, runtime)
    add_takedown_pages(app, runtime)
