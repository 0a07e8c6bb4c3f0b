"""Real local receivers for the alert tests: an aiosmtpd SMTP server and an aiohttp
webhook endpoint, both on 127.0.0.1, each recording what reached it."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller

from alerts.webhook_signature import signing_key, verify


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MailSink:
    """An aiosmtpd handler keeping every message; ``hold`` makes it wait before the 250
    reply (after the message has arrived), to cut a client off mid-send."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.release.set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.arrived.set()
        while not self.release.wait(0.01):
            pass
        return "250 OK"

    def unique_ids(self) -> set[str]:
        """What a receiver that dedupes on Message-ID keeps."""
        return {str(m["Message-ID"]) for m in self.messages}


@contextmanager
def smtp_server() -> Iterator[tuple[MailSink, int]]:
    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        sink.release.set()
        controller.stop()


class WebhookReceiver:
    """Records each POST, verifies its Standard Webhooks signature, answers ``status``."""

    def __init__(self, secret: str | None = None) -> None:
        self.key = signing_key(secret) if secret else None
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.redirect_hits = 0
        self.endless_reply = False  # answer with a body that never ends
        self.reply_bytes_sent = 0
        self.now: Callable[[], int] = lambda: 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        valid = self.key is not None and verify(self.key, headers, body, self.now())
        self.requests.append({"headers": headers, "body": body, "valid": valid})
        if 300 <= self.status < 400:
            raise web.HTTPFound("/elsewhere")
        if self.endless_reply:
            return await self._endless(request)
        return web.Response(status=self.status)

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        reply = web.StreamResponse(status=self.status)
        await reply.prepare(request)
        chunk = b"x" * 65536
        try:
            while True:  # until the client hangs up
                await reply.write(chunk)
                self.reply_bytes_sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return reply

    async def elsewhere(self, request: web.Request) -> web.Response:
        self.redirect_hits += 1
        return web.Response(status=200)

    def unique_ids(self) -> set[str]:
        return {r["headers"].get("webhook-id", "") for r in self.requests}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        app.router.add_route("*", "/elsewhere", self.elsewhere)
        return app


async def start_receiver(receiver: WebhookReceiver) -> TestServer:
    server = TestServer(receiver.app(), host="127.0.0.1")
    await server.start_server()
    return server
