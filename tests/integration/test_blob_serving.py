"""serve's /blobs routes on both blob stores: streamed bodies, one Range, thumbnails, and
the access check before any byte is read."""

# ruff: noqa: F811  (pytest fixtures imported from tests.web_env are test parameters here)

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import BaseTestServer, TestServer

from monitor.runtime import Runtime
from monitor.web.blob_routes import byte_range, open_blob
from storage.blobs import BlobReader
from storage.file_blobs import FileBlobStore
from tests.s3_fixtures import s3_store
from tests.web_env import (  # noqa: F401
    Seeded,
    Visitor,
    build_app,
    evidence_sheet,
    seeded,
    web_runtime,
    web_template,
)


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
async def served(
    request: pytest.FixtureRequest, web_runtime: Runtime, seeded: Seeded
) -> AsyncIterator[tuple[BaseTestServer, bytes]]:
    """The web app over a store holding the seeded evidence sheet; and the sheet's bytes."""
    sheet = web_runtime.blobs.read(seeded.sheet_sha256)
    runtime = web_runtime
    if request.param == "s3":
        store = s3_store(request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket"))
        assert store.put(sheet) == seeded.sheet_sha256
        runtime = dataclasses.replace(web_runtime, blobs=store)
    async with TestServer(build_app(runtime)) as server:
        yield server, sheet


async def _visitor(server: BaseTestServer, email: str) -> Visitor:
    visitor = Visitor(server)
    assert (await visitor.login(email)).status == 303
    return visitor


async def test_a_sheet_streams_whole_and_by_range(
    served: tuple[BaseTestServer, bytes], seeded: Seeded
):
    server, sheet = served
    mod = await _visitor(server, "mod@example.org")
    try:
        url = f"/blobs/{seeded.sheet_sha256}"
        whole = await mod.http.get(server.make_url(url))
        assert whole.status == 200
        assert await whole.read() == sheet
        assert whole.headers["Content-Type"] == "image/png"
        assert whole.headers["Accept-Ranges"] == "bytes"
        assert int(whole.headers["Content-Length"]) == len(sheet)
        part = await mod.http.get(server.make_url(url), headers={"Range": "bytes=8-23"})
        assert part.status == 206
        assert await part.read() == sheet[8:24]
        assert part.headers["Content-Range"] == f"bytes 8-23/{len(sheet)}"
        tail = await mod.http.get(server.make_url(url), headers={"Range": "bytes=-10"})
        assert (tail.status, await tail.read()) == (206, sheet[-10:])
        past = await mod.http.get(server.make_url(url), headers={"Range": f"bytes={len(sheet)}-"})
        assert past.status == 416
        assert past.headers["Content-Range"] == f"bytes */{len(sheet)}"
        thumb = await mod.http.get(server.make_url(url + "/thumb"))
        assert (thumb.status, thumb.headers["Content-Type"]) == (200, "image/png")
        missing = await mod.http.get(server.make_url("/blobs/" + "0" * 64))
        assert missing.status == 404
    finally:
        await mod.close()


async def test_the_access_check_comes_before_any_range(
    served: tuple[BaseTestServer, bytes], seeded: Seeded
):
    server, _ = served
    wren = await _visitor(server, "wren@example.org")  # not the artist of this finding
    try:
        url = server.make_url(f"/blobs/{seeded.sheet_sha256}")
        for headers in ({}, {"Range": "bytes=0-3"}):
            page = await wren.http.get(url, headers=headers)
            assert page.status == 404
        thumb = await wren.http.get(server.make_url(f"/blobs/{seeded.sheet_sha256}/thumb"))
        assert thumb.status == 404
    finally:
        await wren.close()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 10)),
        ("bytes=90-", (90, 10)),
        ("bytes=90-1000", (90, 10)),
        ("bytes=-5", (95, 5)),
        ("bytes=-500", (0, 100)),
        ("bytes=100-", "unsatisfiable"),
        ("bytes=9-3", "unsatisfiable"),
        ("bytes=-0", "unsatisfiable"),
        ("bytes=0-1,5-6", None),  # several ranges: the whole blob instead
        ("items=0-9", None),
        ("bytes=1-2-3", None),
    ],
)
def test_byte_range(header: str | None, expected: object):
    assert byte_range(header, 100) == expected


class _Closing:
    """The store's own reader, telling whether it was closed."""

    def __init__(self, reader: BlobReader) -> None:
        self._reader = reader
        self.closed = False
        self.size = reader.size

    def read(self, n: int = -1, /) -> bytes:
        return self._reader.read(n)

    def close(self) -> None:
        self.closed = True
        self._reader.close()

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SlowOpen(FileBlobStore):
    """A real folder store on a disk slow to open a file (a stalled network mount, say)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opened: list[_Closing] = []

    def open(self, sha256: str, *, start: int = 0, length: int | None = None) -> _Closing:  # type: ignore[override]
        time.sleep(0.3)
        reader = _Closing(super().open(sha256, start=start, length=length))
        self.opened.append(reader)
        return reader


async def test_a_handler_cancelled_while_the_blob_opens_closes_the_file(tmp_path: Path):
    """The open runs on to the end on its thread; the reader it returns is closed then."""
    store = _SlowOpen(tmp_path)
    sha = store.put(b"\x89PNG\r\n\x1a\n" + b"x" * 1000)
    serving = asyncio.ensure_future(open_blob(store, sha))
    await asyncio.sleep(0.05)
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
    for _ in range(100):
        if store.opened and store.opened[0].closed:
            break
        await asyncio.sleep(0.02)
    assert len(store.opened) == 1 and store.opened[0].closed
    with await open_blob(store, sha) as kept:  # not cancelled: the caller owns it
        assert isinstance(kept, _Closing) and not kept.closed
        assert kept.read(4) == b"\x89PNG"
    assert kept.closed
