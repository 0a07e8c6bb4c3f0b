"""monitor.sources.http against answers delivered as a real network delivers them: bodies in many
small writes, gzip, a body cut mid-way, a storage host that ignores Range; and the byte
budget of one upload (`monitor.sources.http.byte_budget`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from detectors.errors import SourceRejected
from monitor.build.sources import create_session
from monitor.sources.http import MAX_UNBUDGETED_SKIP_BYTES, HttpClient, OverBudget, byte_budget
from tests.fakehubs.faults import Faults
from tests.fakehubs.harness import fast_client
from tests.fakehubs.network import Network
from tests.fakehubs.storage import Blob, FakeStorage

pytestmark = pytest.mark.timeout(60)

# A Civitai-sized page: 212,701 bytes of JSON, as in the report that found the defect.
PAGE = {"items": [{"id": i, "description": "x" * 2000} for i in range(104)], "metadata": {}}


@dataclass
class World:
    json_server: TestServer
    storage_server: TestServer
    network: Network
    faults: Faults
    storage: FakeStorage

    def url(self, path: str) -> str:
        return str(self.json_server.make_url(path))


@pytest.fixture
async def world() -> AsyncIterator[World]:
    network = Network(chunk_bytes=16 * 1024, gzip_json=False)
    faults = Faults()

    async def page(request: web.Request) -> web.Response:
        return web.json_response(PAGE)

    app = web.Application(middlewares=[faults.middleware, network.middleware])
    app.router.add_get("/page", page)
    storage = FakeStorage()
    servers = [TestServer(app, host="127.0.0.1", port=0), TestServer(storage.app(), port=0)]
    for server in servers:
        await server.start_server()
    storage.origin = str(servers[1].make_url("")).rstrip("/")
    yield World(servers[0], servers[1], network, faults, storage)
    for server in servers:
        await server.close()


def client(session) -> HttpClient:
    return fast_client(session)


async def test_a_page_written_in_16_kib_pieces_is_read_whole(world) -> None:
    async with create_session() as session:
        reply = await client(session).get_json(world.url("/page"))
    assert reply.data == PAGE
    assert world.network.bytes_sent == len(json.dumps(PAGE).encode()) > 200_000


async def test_a_gzip_page_is_decoded_by_the_production_session(world) -> None:
    world.network.gzip_json = True
    async with create_session() as session:  # auto_decompress is off for file bytes
        reply = await client(session).get_json(world.url("/page"))
    assert reply.data == PAGE
    assert world.network.bytes_sent < 50_000  # it did travel compressed


async def test_a_body_cut_mid_way_is_read_again(world) -> None:
    world.faults.add("/page", "cut")
    async with create_session() as session:
        reply = await client(session).get_json(world.url("/page"))
    assert reply.data == PAGE
    assert world.faults.injected == [("/page", "cut")]


async def test_a_body_over_the_cap_is_refused_in_one_line(world) -> None:
    async with create_session() as session:
        http = client(session)
        http.policy = type(http.policy)(max_json_bytes=100_000)
        with pytest.raises(SourceRejected, match=r"over the size cap \(100,000 bytes\)"):
            await http.get_json(world.url("/page"))


async def test_json_past_the_upload_budget_is_refused_and_counted(world) -> None:
    async with create_session() as session:
        with byte_budget(150_000) as budget, pytest.raises(OverBudget, match="byte budget"):
            await client(session).get_json(world.url("/page"))
    assert budget.spent <= 150_000


async def test_a_host_ignoring_range_is_never_read_up_to_a_deep_offset(world) -> None:
    key = world.storage.put("big", Blob(b"\x08" + b"\0" * 7, 2 * 1024**3))
    world.storage.ignore_range.add(key)
    async with create_session() as session:
        http = client(session)
        with byte_budget(4 * 1024**2) as budget:
            first = await http.get_range(world.storage.url_for(key), start=0, length=65_536)
            with pytest.raises(OverBudget, match="ignores Range"):
                await http.get_range(world.storage.url_for(key), start=150_000_000, length=4096)
        # Outside a budget the skip is capped too.
        with pytest.raises(OverBudget, match="ignores Range"):
            await http.get_range(
                world.storage.url_for(key), start=MAX_UNBUDGETED_SKIP_BYTES, length=4096
            )
    assert len(first.data) == 65_536
    assert budget.spent == first.bytes_read == 65_536
    # What the host wrote before the client hung up: the first range and TCP buffers.
    assert world.storage.bytes_sent < 8 * 1024**2


async def test_range_reads_share_one_budget(world) -> None:
    key = world.storage.put("lora", Blob(b"\x08" + b"\0" * 7, 1024**2))
    async with create_session() as session:
        http = client(session)
        with byte_budget(300_000) as budget:
            await http.get_range(world.storage.url_for(key), start=0, length=262_144)
            with pytest.raises(OverBudget, match="300,000 bytes; 262,144 spent"):
                await http.get_range(world.storage.url_for(key), start=500_000, length=65_536)
            small = await http.get_range(world.storage.url_for(key), start=500_000, length=1000)
    assert small.bytes_read == 1000
    assert budget.spent == 263_144
