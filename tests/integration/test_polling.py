"""Polling end to end against the fake hubs: every upload recorded once with its verdict,
however the hubs misbehave; credentials stay off the storage host; bytes stay bounded;
a restart resumes from the saved watermark."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from detectors.fingerprint import MAX_FINGERPRINT_BYTES
from monitor.build.sources import build_sources
from monitor.pipeline.poll import Poller
from monitor.runtime import Runtime
from monitor.services.polling import create_scheduler, poll_once
from monitor.sources.base import Source
from monitor.sources.civitai import CivitaiSource
from monitor.sources.http import HttpClient
from monitor.sources.huggingface import HuggingFaceSource
from storage.source_state import SourceState
from tests.fakehubs import civitai as fake_civitai
from tests.fakehubs import huggingface as fake_hf
from tests.fakehubs.civitai import FakeCivitai, generic_lora
from tests.fakehubs.harness import CIVITAI_KEY, FAST, HF_TOKEN, SleepLog, runtime_for
from tests.fakehubs.servers import Hubs, running_hubs
from tests.modelfiles import fixture_bytes

pytestmark = pytest.mark.timeout(60)
HEADER_BUDGET = 256 * 1024


@pytest.fixture
async def hubs() -> AsyncIterator[Hubs]:
    async with running_hubs() as hubs:
        fake_civitai.seed_from_fixtures(hubs.civitai)
        fake_hf.seed_from_fixtures(hubs.huggingface)
        yield hubs


@pytest.fixture
def runtime(hubs: Hubs, tmp_path) -> Iterator[Runtime]:
    runtime = runtime_for(hubs, tmp_path)
    yield runtime
    runtime.close()


def pollers(runtime: Runtime, http: HttpClient) -> dict[str, Poller]:
    config = runtime.settings.sources
    state = SourceState(runtime.engine)
    sources: list[Source] = [
        CivitaiSource(config.civitai, http, page_limit=3, first_poll_pages=10, max_pages=10),
        HuggingFaceSource(config.huggingface, http, page_limit=2, first_poll_pages=10),
    ]
    return {s.name: Poller(s, runtime.store, state, threshold=0.5) for s in sources}


def assert_credentials_stayed_home(hubs: Hubs) -> None:
    assert hubs.storage.received
    for request in hubs.storage.received:
        assert "Authorization" not in request.headers
        assert "token" not in request.query
        assert CIVITAI_KEY not in str(request)
        assert HF_TOKEN not in str(request)


async def test_fixture_hubs_are_recorded_once_with_their_verdicts(hubs, runtime) -> None:
    async with aiohttp.ClientSession() as session:
        chosen = pollers(runtime, HttpClient(session, FAST, sleep=SleepLog()))
        first = {name: await p.poll() for name, p in chosen.items()}
        again = {name: await p.poll() for name, p in chosen.items()}
    uploads = runtime.store.list_uploads()
    keys = Counter((u.source, u.upload_id) for u in uploads)
    assert max(keys.values()) == 1
    assert {u.upload_id for u in uploads if u.source == "civitai"} == hubs.civitai.version_ids()
    by_id = {u.upload_id: u for u in uploads}
    assert by_id["3221508"].artists == ("Mara Quellbrook",)
    assert by_id["3221508"].state == "screened"
    flux = by_id["gallowmere-ai/hastmoor-linocut-flux"]
    assert flux.artists == ("Oriel Hastmoor",)
    assert flux.base_family == "flux"
    assert by_id["tarn-w/mossgate-concept-lora"].state == "failed"  # no weights yet: retried
    sdxl = by_id["pell-studio/soft-rimlight-sdxl"]
    assert sdxl.reupload_of is not None
    assert sdxl.reupload_of.upload_id == "3219871"
    assert first["civitai"].flagged == 1
    assert again["civitai"].screened == 0
    # the header, then the few tensors a LoRA's weight fingerprint sketches
    budget = HEADER_BUDGET + MAX_FINGERPRINT_BYTES
    assert all(b <= budget for s in first.values() for b in s.bytes_per_upload)
    assert_credentials_stayed_home(hubs)


def arrivals(start: datetime, names: itertools.count[int]) -> Callable[[FakeCivitai], None]:
    """An on_list hook: a new upload lands on Civitai while a poll is paging."""

    def land(fake: FakeCivitai) -> None:
        n = next(names)
        when = start + timedelta(minutes=n)
        fake.add_upload(f"Arrival {n}", generic_lora(f"arrival_{n}"), published_at=when)
        if n % 4 == 0:  # and an old model gets a new version: it jumps to the top
            fake.add_upload(
                f"Bump {n}", generic_lora(f"bump_{n}"), published_at=when, model_id=3212555
            )

    return land


async def test_no_upload_lost_or_doubled_while_uploads_arrive_and_faults_hit(hubs, runtime):
    start = datetime(2026, 8, 11, 22, 0, tzinfo=UTC)
    hubs.civitai.on_list = arrivals(start, itertools.count(1))
    hubs.civitai.duplicate_across_pages = True
    some_file = next(iter(hubs.storage.blobs))
    hubs.storage.ignore_range.add(some_file)
    async with aiohttp.ClientSession() as session:
        chosen = pollers(runtime, HttpClient(session, FAST, sleep=SleepLog()))
        for round_ in range(6):
            hubs.civitai.faults.add("/api/v1/models", "429")
            hubs.civitai.faults.add("/api/v1/model-versions/", "503")
            hubs.civitai.faults.add("/api/v1/model-versions/", "reset")
            if round_ == 2:  # a hydrate that keeps failing past the client's retries
                hubs.civitai.faults.add("/api/v1/model-versions/", "503", times=8)
            await chosen["civitai"].poll()
        hubs.civitai.on_list = None
        for _ in range(2):  # quiet polls let the retry queue drain
            await chosen["civitai"].poll()
    uploads = runtime.store.list_uploads("civitai")
    keys = Counter(u.upload_id for u in uploads)
    assert max(keys.values()) == 1
    assert set(keys) == hubs.civitai.version_ids()
    assert {u.state for u in uploads} == {"screened"}
    assert_credentials_stayed_home(hubs)


async def test_a_failing_header_is_recorded_then_retried_not_lost(hubs, runtime) -> None:
    async with aiohttp.ClientSession() as session:
        civitai = pollers(runtime, HttpClient(session, FAST, sleep=SleepLog()))["civitai"]
        hubs.civitai.faults.add("/api/download/models/3221508", "503", times=FAST.max_attempts)
        first = await civitai.poll()
        failed = [u for u in runtime.store.list_uploads("civitai") if u.state == "failed"]
        assert first.failed == 1
        assert len(failed) == 1
        assert "503" in (failed[0].error or "")
        second = await civitai.poll()
    assert second.retried == 1
    assert second.screened == 1
    uploads = runtime.store.list_uploads("civitai")
    assert max(Counter(u.upload_id for u in uploads).values()) == 1
    assert {u.state for u in uploads} == {"screened"}
    assert all(u.error is None for u in uploads)
    assert runtime.store.get_source("civitai").state["retry"] == {}


async def test_a_restart_resumes_from_the_watermark(hubs, tmp_path) -> None:
    runtime = runtime_for(hubs, tmp_path)
    async with aiohttp.ClientSession() as session:
        await pollers(runtime, HttpClient(session, FAST, sleep=SleepLog()))["civitai"].poll()
    runtime.close()
    late = datetime(2026, 8, 11, 23, 0, tzinfo=UTC)
    version = hubs.civitai.add_upload("Late one", generic_lora("late"), published_at=late)
    hubs.civitai.received.clear()

    from monitor.runtime import open_runtime

    restarted = open_runtime(runtime.settings)
    try:
        assert (
            restarted.store.get_source("civitai").high_water == "2026-08-11T21:47:09.114000+00:00"
        )
        async with aiohttp.ClientSession() as session:
            http = HttpClient(session, FAST, sleep=SleepLog())
            summary = await pollers(restarted, http)["civitai"].poll()
        assert summary.screened == 1
        assert restarted.store.get_upload("civitai", str(version.id)) is not None
        hydrated = [r.path for r in hubs.civitai.received if "model-versions" in r.path]
        assert hydrated == [f"/api/v1/model-versions/{version.id}"]  # nothing old again
        assert (restarted.store.get_source("civitai").high_water or "").startswith("2026-08-11T23")
    finally:
        restarted.close()


async def test_one_failing_hub_never_stops_the_others(hubs, runtime) -> None:
    hubs.civitai.faults.add("/api/v1/models", "503", times=50)
    policy = FAST
    async with aiohttp.ClientSession() as session:
        summaries = await poll_once(
            runtime, ["civitai", "huggingface"], session=session, policy=policy
        )
    by_source = {s.source: s for s in summaries}
    assert not by_source["civitai"].complete
    assert by_source["civitai"].error
    assert by_source["huggingface"].screened == 2
    assert runtime.store.get_source("civitai").high_water is None  # not advanced


async def test_scheduler_has_one_guarded_job_per_source(hubs, runtime) -> None:
    async with aiohttp.ClientSession() as session:
        sources = build_sources(runtime.settings, HttpClient(session, FAST))
        chosen = {
            s.name: Poller(s, runtime.store, SourceState(runtime.engine), threshold=0.5)
            for s in sources
        }
        scheduler = create_scheduler(chosen, {"civitai": 600, "huggingface": 900})
        jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"poll:civitai", "poll:huggingface"}
    assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())


def test_fixture_bytes_are_real_files() -> None:
    assert len(fixture_bytes("kohya_sd15_style_lora")) == 482218


async def test_the_hubs_base_model_names_the_family_the_file_leaves_open(hubs, runtime):
    from tests.modelfiles import build_safetensors

    # An SD3 LoRA on its text embedder alone: no joint block, no metadata, so only the hub's
    # baseModel says what it is for.
    module = "lora_unet_context_embedder"
    silent = build_safetensors(
        {
            f"{module}.lora_down.weight": ("F16", (4, 4096)),
            f"{module}.lora_up.weight": ("F16", (2432, 4)),
        }
    )
    late = datetime(2026, 8, 11, 23, 0, tzinfo=UTC)
    sd35 = hubs.civitai.add_upload("Sd35 one", silent, published_at=late, base_model="SD 3.5 Large")
    other = hubs.civitai.add_upload("Sd15 one", silent, published_at=late, base_model="SD 1.5")
    async with aiohttp.ClientSession() as session:
        await pollers(runtime, HttpClient(session, FAST, sleep=SleepLog()))["civitai"].poll()
    family = {u.upload_id: u.base_family for u in runtime.store.list_uploads("civitai")}
    assert family[str(sd35.id)] == "sd3"
    assert family[str(other.id)] == "unknown"  # only SD3's hub names are read as a hint
