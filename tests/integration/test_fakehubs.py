"""The fakes themselves: they reproduce the quirks the pollers are tested against."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import pytest

from tests.fakehubs import civitai as fake_civitai
from tests.fakehubs import huggingface as fake_hf
from tests.fakehubs.servers import running_hubs

pytestmark = pytest.mark.timeout(30)
QUERY = "types=LORA&types=LoCon&types=DoRA&types=Checkpoint&sort=Newest&nsfw=true&limit=3"


async def test_the_civitai_cursor_drops_one_model_per_page_boundary() -> None:
    async with running_hubs() as hubs, aiohttp.ClientSession() as session:
        fake_civitai.seed_from_fixtures(hubs.civitai)
        seen, cursor = [], ""
        while True:
            url = f"{hubs.civitai_url}/api/v1/models?{QUERY}{cursor}"
            async with session.get(url) as resp:
                page = await resp.json()
            seen += [item["id"] for item in page["items"]]
            if "nextCursor" not in page["metadata"]:
                break
            cursor = "&cursor=" + page["metadata"]["nextCursor"]
        assert seen[:3] == [3214770, 1980412, 3214101]
        assert 3213876 not in seen
        assert page["metadata"] == {}
        assert len(seen) == len(hubs.civitai.models) - 1


async def test_storage_rejects_authorization_and_can_ignore_range() -> None:
    async with running_hubs() as hubs, aiohttp.ClientSession() as session:
        fake_civitai.seed_from_fixtures(hubs.civitai)
        url = f"{hubs.civitai_url}/api/download/models/3221508"
        async with session.get(url, allow_redirects=False) as resp:
            assert resp.status == 307
            location = resp.headers["Location"]
        assert location.startswith(hubs.storage_url)
        async with session.get(location, headers={"Authorization": "Bearer x"}) as resp:
            assert resp.status == 400
        async with session.get(location, headers={"Range": "bytes=0-7"}) as resp:
            assert resp.status == 206
            assert len(await resp.read()) == 8
        hubs.storage.ignore_range.add(location.split("/obj/")[1].split("?")[0])
        async with session.get(location, headers={"Range": "bytes=0-7"}) as resp:
            assert resp.status == 200
            assert resp.content_length == 482218
            await resp.read()
        assert hubs.storage.received[0].headers.get("Authorization") == "Bearer x"


async def test_the_hub_pages_with_link_headers_on_its_own_origin() -> None:
    async with running_hubs() as hubs, aiohttp.ClientSession() as session:
        fake_hf.seed_from_fixtures(hubs.huggingface)
        url = f"{hubs.huggingface_url}/api/models?filter=lora&sort=createdAt&limit=2"
        async with session.get(url) as resp:
            first = await resp.json()
            link = resp.headers["Link"]
        assert len(first) == 2
        assert link.startswith(f"<{hubs.huggingface_url}/api/models?")
        async with session.get(link[1 : link.index(">")]) as resp:
            rest = await resp.json()
            assert "Link" not in resp.headers
        assert [m["id"] for m in rest] == ["tarn-w/mossgate-concept-lora"]
        missing = f"{hubs.huggingface_url}/api/models/nobody/nothing"
        async with session.get(missing) as resp:
            assert resp.status == 401
            assert resp.headers["X-Error-Code"] == "RepoNotFound"


async def test_civitai_search_pages_by_offset_and_cuts_pages_short() -> None:
    async with running_hubs() as hubs, aiohttp.ClientSession() as session:
        fake_civitai.seed_from_fixtures(hubs.civitai)
        hidden = hubs.civitai.models[3212490]
        hidden.tags.append("studio light")
        hidden.hidden = True
        older = datetime(2025, 1, 1, tzinfo=UTC)
        later = hubs.civitai.add_upload("Studio light kit", b"x", published_at=older)
        shown = next(m.id for m in hubs.civitai.models.values() if later in m.versions)
        base = f"{hubs.civitai_url}/api/v1/models?query=Studio+Light&limit=1"
        pages, cursor = [], ""
        while True:
            async with session.get(base + cursor) as resp:
                page = await resp.json()
            pages.append([item["id"] for item in page["items"]])
            if "nextCursor" not in page["metadata"]:
                break
            cursor = f"&cursor={page['metadata']['nextCursor']}"
        assert pages == [[], [shown]]  # the hidden model's page is empty; the cursor goes on
        async with session.get(base + "&page=2") as resp:
            assert resp.status == 400
        async with session.get(base + "&cursor=2026-01-01|12") as resp:
            assert resp.status == 400


async def test_huggingface_search_is_a_substring_of_the_repo_id() -> None:
    async with running_hubs() as hubs, aiohttp.ClientSession() as session:
        fake_hf.seed_from_fixtures(hubs.huggingface)
        url = f"{hubs.huggingface_url}/api/models?search=HASTMOOR"
        async with session.get(url) as resp:
            assert [m["id"] for m in await resp.json()] == ["gallowmere-ai/hastmoor-linocut-flux"]
        hubs.huggingface.repos["gallowmere-ai/hastmoor-linocut-flux"].private = True
        async with session.get(url) as resp:
            assert await resp.json() == []
