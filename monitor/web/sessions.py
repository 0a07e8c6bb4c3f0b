"""Sessions in an encrypted, signed cookie (Fernet: AES-128-CBC + HMAC-SHA256, with an
issue time checked against ``max_age_s``).

Written here rather than taken from aiohttp-session, whose string request keys trip
aiohttp's NotAppKeyWarning (an error in the test suite). A session is a small JSON dict; it
is written back only when a handler changed it, and cleared cookies are deleted.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken

log = logging.getLogger(__name__)

MAX_COOKIE_CHARS = 4000
SESSION_MAX_AGE_S = 12 * 3600  # a sign-in lasts this long (cookie and server row)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Session(dict[str, Any]):
    """The session's data; ``changed`` says whether it must be written back."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        super().__init__(data or {})
        self.changed = False

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.changed = True

    def invalidate(self) -> None:
        self.clear()
        self.changed = True


SESSION_KEY: web.RequestKey[Session] = web.RequestKey("session", Session)


class CookieSessions:
    """Loads and saves `Session` values in one cookie."""

    def __init__(self, key: bytes, *, cookie: str, max_age_s: int, secure: bool) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(key[:32]))
        self._cookie = cookie
        self._max_age_s = max_age_s
        self._secure = secure

    def load(self, request: web.Request) -> Session:
        raw = request.cookies.get(self._cookie)
        if not raw or len(raw) > MAX_COOKIE_CHARS:
            return Session()
        try:
            data = json.loads(self._fernet.decrypt(raw.encode(), ttl=self._max_age_s))
        except (InvalidToken, ValueError):
            log.info("web.session.invalid")
            return Session()
        return Session(data if isinstance(data, dict) else None)

    def save(self, response: web.StreamResponse, session: Session) -> None:
        if not session.changed or response.prepared:
            return
        if not session:
            response.del_cookie(self._cookie, path="/", samesite="Lax", secure=self._secure)
            return
        token = self._fernet.encrypt(json.dumps(session).encode()).decode()
        response.set_cookie(
            self._cookie,
            token,
            max_age=self._max_age_s,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=self._secure,
        )

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        session = self.load(request)
        request[SESSION_KEY] = session
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects carry the session too (sign-in)
            self.save(exc, session)
            raise
        self.save(response, session)
        return response


def get_session(request: web.Request) -> Session:
    return request[SESSION_KEY]
