"""The contract every ``Source`` adapter keeps, run against each one (fake hubs on loopback
for Civitai and Hugging Face, a real folder for the folder source): listing, hydrating,
reading bytes, and the takedown check; the searchable ones also page a search."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from detectors.errors import SourceError
from detectors.safetensors_header import parse_header
from monitor.settings import FolderSettings
from monitor.sources.base import (
    CheckableSource,
    CheckTarget,
    Cursor,
    HubStatus,
    ListedUpload,
    RemoteFile,
    SearchableSource,
    Source,
)
from monitor.sources.civitai import CivitaiSource
from monitor.sources.folder import FolderSource
from monitor.sources.http import HttpClient
from monitor.sources.huggingface import HuggingFaceSource
from tests.fakehubs import civitai as fake_civitai
from tests.fakehubs import huggingface as fake_hf
from tests.fakehubs.harness import FAST, settings_for
from tests.fakehubs.servers import running_hubs
from tests.modelfiles import fixture_bytes

pytestmark = pytest.mark.timeout(60)


@asynccontextmanager
async def civitai(tmp_path: Path) -> AsyncIterator[Source]:
    async with running_hubs() as hubs, aiohttp.ClientSession() as session:
        fake_civitai.seed_from_fixtures(hubs.civitai)
        config = settings_for(hubs, tmp_path).sources.civitai
        yield CivitaiSource(config, HttpClient(session, FAST))


@asynccontextmanager
async def huggingface(tmp_path: Path) -> AsyncIterator[Source]:
    async with running_hubs() as hubs, aiohttp.ClientSession() as session:
        fake_hf.seed_from_fixtures(hubs.huggingface)
        config = settings_for(hubs, tmp_path).sources.huggingface
        yield HuggingFaceSource(config, HttpClient(session, FAST))


@asynccontextmanager
async def folder(tmp_path: Path) -> AsyncIterator[Source]:
    root = tmp_path / "incoming"
    root.mkdir()
    for name in ("kohya_sd15_style_lora", "kohya_sdxl_lora"):
        (root / f"{name}.safetensors").write_bytes(fixture_bytes(name))
    yield FolderSource(FolderSettings(enabled=True, path=root), min_age_s=0)


ADAPTERS = {"civitai": civitai, "huggingface": huggingface, "folder": folder}


@pytest.fixture(params=sorted(ADAPTERS))
async def source(request, tmp_path) -> AsyncIterator[Source]:
    async with ADAPTERS[request.param](tmp_path) as adapter:
        yield adapter


async def _screened_file(source: Source) -> tuple[ListedUpload, RemoteFile]:
    listing = await source.list_new(Cursor())
    for listed in listing.uploads:
        try:
            upload = await source.hydrate(listed)
        except SourceError:
            continue  # e.g. a repo with a card but no weights yet
        for file in upload.files:
            if file.screen:
                return listed, file
    raise AssertionError(f"{source.name} listed no upload with a file to screen")


async def test_listing_is_complete_with_unique_ids(source):
    listing = await source.list_new(Cursor())
    assert listing.complete, listing.error
    ids = [u.upload_id for u in listing.uploads]
    assert ids
    assert len(ids) == len(set(ids))
    assert listing.cursor.high_water is not None or source.name == "folder"


async def test_hydrate_names_the_upload_and_its_files(source):
    listed, file = await _screened_file(source)
    upload = await source.hydrate(listed)
    assert upload.upload_id == listed.upload_id
    assert upload.name
    assert file.name.endswith(".safetensors")


async def test_read_bytes_gives_exactly_the_range_asked_for(source):
    _, file = await _screened_file(source)
    head = await source.read_bytes(file, 0, 8)
    assert len(head.data) == 8
    length = int.from_bytes(head.data, "little")
    whole = await source.read_bytes(file, 0, 8 + length)
    assert whole.data[:8] == head.data
    header = parse_header(whole.data, file_size=whole.total_size)
    assert header.tensors
    middle = await source.read_bytes(file, 3, 5)
    assert middle.data == whole.data[3:8]


async def test_a_second_listing_from_the_saved_cursor_repeats_nothing_new(source):
    first = await source.list_new(Cursor())
    second = await source.list_new(first.cursor)
    assert second.complete
    # A hub read by modification time names recently changed repos again as revisions of
    # what the first listing named (the poller reads only their files no upload holds).
    plain = {u.upload_id for u in second.uploads if "revision_of" not in u.hint}
    revised = {u.hint["revision_of"] for u in second.uploads if "revision_of" in u.hint}
    assert plain | revised <= {u.upload_id for u in first.uploads}


async def test_download_writes_the_whole_file(source, tmp_path):
    _, file = await _screened_file(source)
    dest = tmp_path / "download.safetensors"
    size = await source.download(file, dest)
    assert dest.stat().st_size == size
    assert file.size is None or file.size == size
    parse_header(dest.read_bytes(), file_size=size)


# -- takedown tracking: every adapter says whether a recorded upload is still up ----------


async def test_a_listed_upload_is_up_on_its_hub(source):
    listed, file = await _screened_file(source)
    upload = await source.hydrate(listed)
    assert isinstance(source, CheckableSource)
    target = CheckTarget(upload.upload_id, upload.url, (file.name,), file.size)
    assert await source.hub_status(target) == HubStatus("up")


async def test_an_upload_the_hub_no_longer_has_is_gone_not_an_error(source):
    _, file = await _screened_file(source)
    unknown = {
        "civitai": CheckTarget("999999999"),
        "huggingface": CheckTarget("nobody/nothing-here"),
        "folder": CheckTarget("0" * 64, file.url.replace(".safetensors", "_gone.safetensors")),
    }[source.name]
    assert isinstance(source, CheckableSource)
    status = await source.hub_status(unknown)
    assert (status.up, status.state) == (False, "removed")
    assert status.reason


# -- hub history: the searchable adapters page a search to its end -----------------------

SEARCHES = {"civitai": (civitai, "Mara Quellbrook"), "huggingface": (huggingface, "Oriel Hastmoor")}


@pytest.mark.parametrize("name", sorted(SEARCHES))
async def test_a_search_pages_to_its_end_and_names_the_artists_uploads(name, tmp_path):
    adapter, artist = SEARCHES[name]
    async with adapter(tmp_path) as source:
        assert isinstance(source, SearchableSource)
        found: list[str] = []
        for term in source.search_terms(artist):
            after: str | None = None
            while True:
                page = await source.search(term, after)
                found += [u.upload_id for u in page.uploads]
                if page.next is None:
                    break
                after = page.next
        assert found and len(found) == len(set(found))
        upload = await source.hydrate(ListedUpload(found[0], found[0]))
        text = " ".join(t.text for t in upload.hub_text).lower()
        assert artist.split()[-1].lower() in text
