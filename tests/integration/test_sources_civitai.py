"""CivitaiSource against the fake Civitai: the fixture pages, the cursor skip, hydrating,
and header reads through the storage redirect."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from monitor.sources.base import Cursor
from monitor.sources.civitai import CivitaiSource
from monitor.sources.html_text import html_to_text
from tests.fakehubs import civitai as fake_civitai
from tests.fakehubs.harness import CIVITAI_KEY, fast_client, settings_for
from tests.fakehubs.servers import Hubs, running_hubs

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def hubs() -> AsyncIterator[Hubs]:
    async with running_hubs() as hubs:
        fake_civitai.seed_from_fixtures(hubs.civitai)
        yield hubs


@pytest.fixture
async def source(hubs: Hubs, tmp_path) -> AsyncIterator[CivitaiSource]:
    async with aiohttp.ClientSession() as session:
        settings = settings_for(hubs, tmp_path).sources.civitai
        yield CivitaiSource(settings, fast_client(session), page_limit=3, first_poll_pages=5)


async def test_first_listing_has_every_version_including_the_skipped_model(hubs, source) -> None:
    listing = await source.list_new(Cursor())
    ids = [u.upload_id for u in listing.uploads]
    assert len(ids) == len(set(ids))
    assert set(ids) == hubs.civitai.version_ids()
    assert listing.complete
    assert listing.cursor.high_water == "2026-08-11T21:47:09.114000+00:00"
    asked = [r.query.get("cursor") for r in hubs.civitai.received if r.path == "/api/v1/models"]
    assert asked[1] == "2026-08-11 21:04:17.352|3213876"  # the model that page never shows
    assert any(r.path == "/api/v1/models/3213876" for r in hubs.civitai.received)


async def test_a_later_listing_stops_past_the_watermark(hubs, source) -> None:
    listing = await source.list_new(Cursor("2026-08-11T21:47:09.114000+00:00"))
    ids = {u.upload_id for u in listing.uploads}
    assert "3221508" in ids
    assert "2388140" not in ids


async def test_hydrate_gives_text_files_and_hashes(source) -> None:
    listing = await source.list_new(Cursor())
    listed = next(u for u in listing.uploads if u.upload_id == "3221508")
    upload = await source.hydrate(listed)
    texts = {(t.source, t.text) for t in upload.hub_text}
    assert ("trainedWords", "by mara quellbrook") in texts
    assert ("name", "Quellbrook Watercolor Style (SD1.5)") in texts
    assert any(s == "prompt" and "mara quellbrook" in t for s, t in texts)
    assert all("<p>" not in t for _, t in texts)
    assert upload.uploader == "loomweaver_77"
    file = upload.files[0]
    assert file.screen
    assert file.sha256 == file.sha256.lower()
    assert file.hashes["autov2"]


async def test_header_read_goes_through_the_redirect_without_the_key(hubs, source) -> None:
    listing = await source.list_new(Cursor())
    upload = await source.hydrate(next(u for u in listing.uploads if u.upload_id == "3221508"))
    fetched = await source.read_bytes(upload.files[0], 0, 256 * 1024)
    assert fetched.bytes_read == 256 * 1024
    assert fetched.total_size == 482218
    downloads = [r for r in hubs.civitai.received if r.path.startswith("/api/download/")]
    assert downloads[0].headers["Authorization"] == f"Bearer {CIVITAI_KEY}"
    assert hubs.storage.received
    for request in hubs.storage.received:
        assert "Authorization" not in request.headers
        assert "token" not in request.query
        assert CIVITAI_KEY not in str(request)


def test_html_descriptions_become_text() -> None:
    html = "<p>Loose <b>ink</b> &amp; wash.</p><p>Trigger <code>quellbrook style</code></p>"
    assert html_to_text(html) == "Loose ink & wash.\nTrigger quellbrook style"
