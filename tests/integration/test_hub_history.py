"""Hub history searches against the fake hubs: every page read (short and empty pages,
numeric cursors, Link paging), each upload recorded once with back-scan findings, an
interrupted search resumed from its page, a finished one not repeated, a hub that is down
reported and left for later."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from detectors.results import ArtistRef
from monitor.backscan.hub_history import HubHistory, search_keys
from monitor.build.hubs import build_history
from monitor.pipeline.poll import Poller
from monitor.runtime import Runtime, open_runtime
from monitor.services.schedules import add_hub_jobs, sweep_history
from monitor.settings import HubHistorySettings, HuggingFaceSettings, TakedownSettings
from monitor.sources.base import SearchableSource, Source
from monitor.sources.civitai import CivitaiSource
from monitor.sources.http import HttpClient
from monitor.sources.huggingface import HuggingFaceSource
from storage.hub_searches import HubSearches
from storage.source_state import SourceState
from tests.fakehubs.civitai import generic_lora
from tests.fakehubs.harness import FAST, SleepLog, settings_for
from tests.fakehubs.servers import Hubs, running_hubs

pytestmark = pytest.mark.timeout(60)
START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ARTIST = "Ilse Varnhagen"


@pytest.fixture
async def hubs() -> AsyncIterator[Hubs]:
    async with running_hubs() as hubs:
        yield hubs


@pytest.fixture
def runtime(hubs: Hubs, tmp_path: Path) -> Iterator[Runtime]:
    runtime = open_runtime(settings_for(hubs, tmp_path))
    yield runtime
    runtime.close()


def artist(runtime: Runtime) -> ArtistRef:
    record = runtime.store.add_artist(ARTIST, aliases=["varnhagen_ink"])
    return ArtistRef(record.id, record.name, record.aliases)


def seed_civitai(hubs: Hubs, naming: int = 8, other: int = 3) -> set[str]:
    """``naming`` models whose text names the artist (one with two versions), ``other``
    unrelated ones; the version ids of the naming ones."""
    versions = set()
    for n in range(naming):
        when = START + timedelta(hours=n)
        v = hubs.civitai.add_upload(
            f"Ilse Varnhagen ink style {n}", generic_lora(f"ink_{n}"), published_at=when
        )
        versions.add(str(v.id))
        if n == 0:
            model_id = next(m.id for m in hubs.civitai.models.values() if v in m.versions)
            second = hubs.civitai.add_upload(
                "v2", generic_lora("ink_0b"), published_at=when, model_id=model_id
            )
            versions.add(str(second.id))
    for n in range(other):
        hubs.civitai.add_upload(f"Harbour scenes {n}", generic_lora(f"h_{n}"), published_at=START)
    return versions


def history(runtime: Runtime, http: HttpClient, page_limit: int = 3) -> HubHistory:
    config = runtime.settings.sources
    sources: list[SearchableSource] = [
        CivitaiSource(config.civitai, http, page_limit=page_limit),
        HuggingFaceSource(config.huggingface, http, page_limit=page_limit),
    ]
    state = SourceState(runtime.engine)
    pollers = {
        s.name: Poller(s, runtime.store, state, threshold=0.5, history=True) for s in sources
    }
    return HubHistory(sources, pollers, HubSearches(runtime.engine))


def civitai_searches(hubs: Hubs) -> list[Mapping[str, str]]:
    return [r.query for r in hubs.civitai.received if r.path == "/api/v1/models"]


async def test_every_page_is_read_and_each_upload_recorded_once(hubs, runtime) -> None:
    expected = seed_civitai(hubs)
    hubs.civitai.numeric_search_cursor = True  # cursors as JSON numbers on some endpoints
    ref = artist(runtime)
    pages: list[tuple[str, int]] = []
    async with aiohttp.ClientSession() as session:
        chosen = history(runtime, HttpClient(session, FAST, sleep=SleepLog()))
        keys = search_keys([ref], chosen.sources)
        first = await chosen.run(keys, progress=lambda s, q, p, f: pages.append((s, p)))
        hubs.civitai.received.clear()
        again = await chosen.run(keys)
    assert [k.query for k in keys if k.source == "civitai"] == [ARTIST, "varnhagen_ink"]
    civitai = {s.source: s for s in first}["civitai"]
    assert civitai.pages == 3 + 1  # 8 models at 3 a page; the alias finds nothing
    assert civitai.complete and civitai.error is None
    uploads = runtime.store.list_uploads("civitai")
    assert {u.upload_id for u in uploads} == expected
    assert max(Counter(u.upload_id for u in uploads).values()) == 1
    assert {u.state for u in uploads} == {"screened"}
    findings = runtime.store.list_findings()
    assert {f.upload_id for f in findings} == expected
    assert all(f.backscan and f.artist == ARTIST for f in findings)
    assert ("civitai", 3) in pages
    assert civitai_searches(hubs) == []  # finished searches are not run again
    assert {s.source: s.finished_before for s in again} == {"civitai": 2, "huggingface": 1}


async def test_short_and_empty_pages_do_not_end_a_search(hubs, runtime) -> None:
    expected = seed_civitai(hubs, naming=7)
    hidden = [m for m in hubs.civitai.models.values() if m.name.endswith(("5", "4", "3"))]
    for model in hidden:  # filtered after the page was cut: page 2 comes back empty
        model.hidden = True
        expected -= {str(v.id) for v in model.versions}
    ref = artist(runtime)
    async with aiohttp.ClientSession() as session:
        chosen = history(runtime, HttpClient(session, FAST, sleep=SleepLog()))
        [civitai, _] = await chosen.run(search_keys([ref], chosen.sources))
    assert civitai.complete
    assert {u.upload_id for u in runtime.store.list_uploads("civitai")} == expected
    assert [q.get("cursor") for q in civitai_searches(hubs) if q["query"] == ARTIST] == [
        None,
        "3",
        "6",
    ]


async def test_a_search_interrupted_midway_resumes_from_its_page(hubs, runtime) -> None:
    expected = seed_civitai(hubs)
    ref = artist(runtime)

    def fail_after_first_page(source: str, query: str, pages: int, found: int) -> None:
        if source == "civitai" and pages == 1:  # the hub goes down past the retries
            hubs.civitai.faults.add("/api/v1/models", "503", times=FAST.max_attempts)

    async with aiohttp.ClientSession() as session:
        chosen = history(runtime, HttpClient(session, FAST, sleep=SleepLog()))
        keys = search_keys([ref], chosen.sources)
        [stopped, _] = await chosen.run(keys, progress=fail_after_first_page)
        recorded_first = {u.upload_id for u in runtime.store.list_uploads("civitai")}
        row = HubSearches(runtime.engine).of_artist(ref.artist_id)[0]
        hubs.civitai.received.clear()
        [resumed, _] = await chosen.run(keys)
    assert not stopped.complete
    assert stopped.waiting == 2  # this search and the alias's, both left for the next run
    assert "503" in (stopped.error or "")
    assert (row.pages, row.cursor, row.done) == (1, "3", False)
    assert len(recorded_first) == 3  # the first page's models, newest first
    assert [q.get("cursor") for q in civitai_searches(hubs)][:1] == ["3"]  # not page 1 again
    assert resumed.complete
    uploads = runtime.store.list_uploads("civitai")
    assert {u.upload_id for u in uploads} == expected
    assert max(Counter(u.upload_id for u in uploads).values()) == 1
    hydrated = Counter(r.path for r in hubs.civitai.received if "model-versions" in r.path)
    assert not any(path.endswith(tuple(recorded_first)) for path in hydrated)


async def test_huggingface_search_follows_link_paging_and_keeps_adapters(hubs, runtime) -> None:
    repos = []
    for n in range(5):
        lora = generic_lora(f"varnhagen_{n}", ss_training_comment="by Ilse Varnhagen")
        repo = hubs.huggingface.add_repo(
            f"inkfan{n}/varnhagen-ink-lora-{n}", START + timedelta(days=n), {"v.safetensors": lora}
        )
        repos.append(repo.id)
    hubs.huggingface.add_repo(
        "bert/varnhagen-text", START, {"m.safetensors": generic_lora("t")}, tags=["fill-mask"]
    )
    ref = artist(runtime)
    async with aiohttp.ClientSession() as session:
        chosen = history(runtime, HttpClient(session, FAST, sleep=SleepLog()), page_limit=2)
        keys = search_keys([ref], chosen.sources)
        [_, hf] = await chosen.run(keys)
    assert [k.query for k in keys if k.source == "huggingface"] == ["varnhagen"]
    assert hf.pages == 3 and hf.found == 5 and hf.complete
    uploads = runtime.store.list_uploads("huggingface")
    assert sorted(u.upload_id for u in uploads) == sorted(repos)  # the text model is skipped
    assert all(u.artists == (ARTIST,) for u in uploads)
    searches = [r.query for r in hubs.huggingface.received if r.path == "/api/models"]
    assert all(q["search"] == "varnhagen" for q in searches)
    assert sum("cursor" in q for q in searches) == 2


async def test_an_unreachable_hub_is_reported_and_the_other_hub_finishes(hubs, tmp_path) -> None:
    expected = seed_civitai(hubs, naming=2, other=0)
    settings = settings_for(hubs, tmp_path)
    closed = HuggingFaceSettings(endpoint="http://127.0.0.1:9")  # nothing listens there
    sources = settings.sources.model_copy(update={"huggingface": closed})
    runtime = open_runtime(settings.model_copy(update={"sources": sources}))
    try:
        ref = artist(runtime)
        async with aiohttp.ClientSession() as session:
            chosen = history(runtime, HttpClient(session, FAST, sleep=SleepLog()))
            by_source = {s.source: s for s in await chosen.run(search_keys([ref], chosen.sources))}
        assert by_source["civitai"].complete
        assert {u.upload_id for u in runtime.store.list_uploads("civitai")} == expected
        hf = by_source["huggingface"]
        assert not hf.complete and hf.waiting == 1 and "connection failed" in (hf.error or "")
        rows = {r.key.source: r for r in HubSearches(runtime.engine).of_artist(ref.artist_id)}
        assert rows["huggingface"].error and not rows["huggingface"].done
    finally:
        runtime.close()


async def test_serves_sweep_runs_the_searches_artists_still_need(hubs, runtime) -> None:
    expected = seed_civitai(hubs, naming=2, other=0)
    artist(runtime)
    async with aiohttp.ClientSession() as session:
        sources: list[Source] = [
            CivitaiSource(runtime.settings.sources.civitai, HttpClient(session, FAST)),
            HuggingFaceSource(runtime.settings.sources.huggingface, HttpClient(session, FAST)),
        ]
        chosen = build_history(runtime, sources)
        assert chosen is not None
        ran = await sweep_history(chosen, runtime, limit=2)
        runtime.store.add_alias(ARTIST, "Varnhagen Studio")  # a new alias, say from the portal
        later = await sweep_history(chosen, runtime, limit=10)
        idle = await sweep_history(chosen, runtime, limit=10)
    assert ran == 2  # of the three searches the artist needs, as the limit says
    # the one left, and the new alias on Civitai (on Hugging Face it is "varnhagen" again)
    assert later == 1 + 1
    assert idle == 0
    assert {u.upload_id for u in runtime.store.list_uploads("civitai")} == expected


async def test_a_repo_without_weights_does_not_hold_a_search_up(hubs, runtime) -> None:
    lora = generic_lora("v", ss_training_comment="by Ilse Varnhagen")
    hubs.huggingface.add_repo("fan/varnhagen-soon", START, {})  # card pushed, weights not yet
    hubs.huggingface.add_repo("fan/varnhagen-ink", START, {"v.safetensors": lora})
    ref = artist(runtime)
    async with aiohttp.ClientSession() as session:
        chosen = history(runtime, HttpClient(session, FAST, sleep=SleepLog()))
        [_, hf] = await chosen.run(search_keys([ref], chosen.sources))
    assert hf.complete and (hf.screened, hf.failed) == (1, 1)
    states = {u.upload_id: u.state for u in runtime.store.list_uploads("huggingface")}
    assert states == {"fan/varnhagen-soon": "failed", "fan/varnhagen-ink": "screened"}
    assert runtime.store.get_source("huggingface").state.get("retry", {}) == {}  # poll's queue


async def test_serve_schedules_the_sweep_and_the_takedown_checks(hubs, runtime) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    async with aiohttp.ClientSession() as session:
        sources: list[Source] = [
            CivitaiSource(runtime.settings.sources.civitai, HttpClient(session, FAST))
        ]
        scheduler = AsyncIOScheduler(timezone=UTC)
        assert add_hub_jobs(scheduler, runtime, sources) == ["hub_history", "takedowns"]
        jobs = {job.id: job for job in scheduler.get_jobs()}
        off = runtime.settings.model_copy(
            update={
                "hub_history": HubHistorySettings(enabled=False),
                "takedown": TakedownSettings(enabled=False),
            }
        )
        quiet = Runtime(off, runtime.engine, runtime.store, runtime.blobs)
        assert add_hub_jobs(AsyncIOScheduler(timezone=UTC), quiet, sources) == []
    assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())
    assert jobs["takedowns"].trigger.interval == timedelta(hours=1)  # each run: what is due


async def test_a_refused_query_is_given_up_and_a_refused_cursor_starts_over(hubs, runtime):
    expected = seed_civitai(hubs)
    ref = artist(runtime)

    def refuse_the_cursor(source: str, query: str, pages: int, found: int) -> None:
        if source == "civitai" and query == ARTIST and pages == 1:
            hubs.civitai.faults.add("/api/v1/models", "400")  # "Invalid cursor", say

    hubs.civitai.faults.queued.append(("/api/v1/models", "400"))  # the first query's 1st page
    async with aiohttp.ClientSession() as session:
        chosen = history(runtime, HttpClient(session, FAST, sleep=SleepLog()))
        keys = [k for k in search_keys([ref], chosen.sources) if k.source == "civitai"]
        keys.reverse()  # the alias first: its query is the one refused
        refused = (await chosen.run(keys, progress=refuse_the_cursor))[0]
        rows = {r.key.query: r for r in HubSearches(runtime.engine).of_artist(ref.artist_id)}
        hubs.civitai.received.clear()
        again = (await chosen.run(keys))[0]
    assert (refused.source, refused.waiting, again.waiting) == ("civitai", 1, 0)
    assert rows["varnhagen_ink"].done and "HTTP 400" in (rows["varnhagen_ink"].error or "")
    assert (rows[ARTIST].done, rows[ARTIST].cursor) == (False, None)  # back to page one
    assert [q.get("cursor") for q in civitai_searches(hubs)] == [None, "3", "6"]
    assert {u.upload_id for u in runtime.store.list_uploads("civitai")} == expected
