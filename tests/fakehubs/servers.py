"""Start the fake hubs and their storage host on 127.0.0.1:0, and stop them cleanly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.fakehubs.civitai import FakeCivitai
from tests.fakehubs.huggingface import FakeHuggingFace
from tests.fakehubs.storage import FakeStorage


@dataclass
class Hubs:
    storage: FakeStorage
    civitai: FakeCivitai
    huggingface: FakeHuggingFace
    civitai_url: str
    huggingface_url: str
    storage_url: str


async def _start(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    return server


def _origin(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


@asynccontextmanager
async def running_hubs() -> AsyncIterator[Hubs]:
    storage = FakeStorage()
    civitai = FakeCivitai(storage)
    huggingface = FakeHuggingFace(storage)
    servers: list[TestServer] = []
    try:
        for app in (storage.app(), civitai.app(), huggingface.app()):
            servers.append(await _start(app))
        storage.origin, civitai.origin = _origin(servers[0]), _origin(servers[1])
        yield Hubs(
            storage, civitai, huggingface, civitai.origin, _origin(servers[2]), storage.origin
        )
    finally:
        for server in servers:
            await server.close()
