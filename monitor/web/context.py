"""What the web handlers share: the stores, the blob store, passwords, limits, metrics."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from monitor.web.login_limits import LoginLimiter
from monitor.web.metrics import WebMetrics
from monitor.web.passwords import Passwords
from storage.blobs import BlobStore
from storage.store import Store
from storage.triage import TriageStore
from storage.users import UserRecord, UserStore
from storage.web_queries import WebQueries


@dataclass(frozen=True, slots=True)
class WebContext:
    """The long-lived parts of one web app (built once in `monitor.web.app.create_app`)."""

    store: Store
    users: UserStore
    triage: TriageStore
    queries: WebQueries
    blobs: BlobStore
    passwords: Passwords
    limiter: LoginLimiter
    metrics: WebMetrics
    secure_cookies: bool
    probe_families: frozenset[str] = frozenset()  # [probe] base_models' families


CONTEXT_KEY: web.AppKey[WebContext] = web.AppKey("web_context", WebContext)
USER_KEY: web.RequestKey[UserRecord] = web.RequestKey("user", UserRecord)


def web_context(request: web.Request) -> WebContext:
    return request.app[CONTEXT_KEY]


def request_user(request: web.Request) -> UserRecord | None:
    """The signed-in user (set by the auth middleware or the API's token check)."""
    return request.get(USER_KEY)
