"""HuggingFaceSource against the fake Hub: listing with Link paging, hydrating the card, and
header reads through the CDN redirect."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from detectors.errors import SourceUnavailable, UploadNotReady
from monitor.sources.base import Cursor, ListedUpload
from monitor.sources.huggingface import HuggingFaceSource, Sibling, choose_files
from tests.fakehubs import huggingface as fake_hf
from tests.fakehubs.harness import HF_TOKEN, fast_client, settings_for
from tests.fakehubs.servers import Hubs, running_hubs

pytestmark = pytest.mark.timeout(30)
FLUX = "gallowmere-ai/hastmoor-linocut-flux"


@pytest.fixture
async def hubs() -> AsyncIterator[Hubs]:
    async with running_hubs() as hubs:
        fake_hf.seed_from_fixtures(hubs.huggingface)
        yield hubs


@pytest.fixture
async def source(hubs: Hubs, tmp_path) -> AsyncIterator[HuggingFaceSource]:
    async with aiohttp.ClientSession() as session:
        settings = settings_for(hubs, tmp_path).sources.huggingface
        yield HuggingFaceSource(settings, fast_client(session), page_limit=1, first_poll_pages=5)


async def test_listing_follows_link_pages_newest_first(hubs, source) -> None:
    listing = await source.list_new(Cursor())
    assert [u.upload_id for u in listing.uploads] == [
        FLUX,
        "pell-studio/soft-rimlight-sdxl",
        "tarn-w/mossgate-concept-lora",
    ]
    assert any("cursor" in r.query for r in hubs.huggingface.received)
    assert listing.cursor.high_water == "2026-08-12T09:14:03+00:00"


async def test_hydrate_reads_the_card_and_skips_intermediate_files(hubs, source) -> None:
    listing = await source.list_new(Cursor())
    upload = await source.hydrate(listing.uploads[0])
    assert [f.name for f in upload.files] == ["hastmoor_linocut_flux.safetensors"]
    assert upload.files[0].sha256 is not None
    assert upload.files[0].size == 3935296
    sources = {t.source for t in upload.hub_text}
    assert {"name", "instance_prompt", "prompt", "tags", "card"} <= sources
    card = next(t.text for t in upload.hub_text if t.source == "card")
    assert "Oriel Hastmoor" in card
    assert "instance_prompt" not in card
    fetched = await source.read_bytes(upload.files[0], 0, 256 * 1024)
    assert fetched.bytes_read == 256 * 1024
    assert fetched.total_size == 3935296
    assert all("Authorization" not in r.headers for r in hubs.storage.received)
    assert any(
        r.headers.get("Authorization") == f"Bearer {HF_TOKEN}" for r in hubs.huggingface.received
    )


async def test_a_repo_without_weights_yet_is_retried_later(source) -> None:
    listing = await source.list_new(Cursor())
    with pytest.raises(SourceUnavailable, match="no model file yet"):
        await source.hydrate(listing.uploads[2])


def test_choose_files_caps_and_prefers_final_files() -> None:
    names = [
        "a_000001000.safetensors",
        "a.safetensors",
        "b.safetensors",
        "c.bin",
        "x/d.safetensors",
    ]
    chosen = choose_files([Sibling(n) for n in names], 2)
    assert [s.rfilename for s in chosen] == ["a.safetensors", "b.safetensors"]
    only_steps = choose_files(
        [Sibling("a_000001000.safetensors"), Sibling("a_000002000.safetensors")], 4
    )
    assert only_steps[0].rfilename == "a_000002000.safetensors"
    assert [s.rfilename for s in choose_files([Sibling("m.ckpt")], 4)] == ["m.ckpt"]


@pytest.mark.parametrize(
    ("name", "terms"),
    [
        ("Oriel Hastmoor", ("hastmoor",)),  # the longest word is in every way the id spells it
        ("quellbrook", ("quellbrook",)),
        ("Mo Li", ("mo-li", "mo_li", "moli")),  # short words alone match too much
        ("Ada", ()),  # a lone short word is in too many ids ("adapter")
        ("  —  ", ()),
    ],
)
async def test_search_terms_follow_the_hubs_substring_search(source, name, terms) -> None:
    assert source.search_terms(name) == terms


async def test_a_repo_without_weights_is_not_ready_rather_than_the_hub_down(source) -> None:
    with pytest.raises(UploadNotReady):
        await source.hydrate(ListedUpload("tarn-w/mossgate-concept-lora", "mossgate"))
