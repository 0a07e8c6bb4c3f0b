"""monitor.web: the aiohttp app (`app`): the moderator queue, the artist portal, the JSON
API, sign-in and sessions, metrics."""

from __future__ import annotations

# Its modules (imported on use, not here).
__all__ = [
    "account_pages",
    "alert_pages",
    "alert_routes",
    "api",
    "app",
    "auth",
    "blob_routes",
    "context",
    "evidence_strength",
    "executors",
    "filters",
    "login",
    "login_limits",
    "mail_limits",
    "metrics",
    "openapi",
    "password_reset",
    "passwords",
    "portal_pages",
    "probe_status",
    "queue_groups",
    "queue_pages",
    "rendering",
    "reports",
    "sessions",
    "takedown_pages",
]
