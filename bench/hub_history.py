"""Hub history and takedown checks against the fake hubs: what one artist's search costs
(pages, requests, seconds), what a resume after a mid-search outage repeats, and how fast
takedown checks go.

Run ``python bench/hub_history.py``. Civitai holds ``CIVITAI_NAMING`` models naming the
artist among ``CIVITAI_OTHER`` that do not; Hugging Face ``HF_NAMING`` adapter repos. The
HTTP client runs without the per-host spacing (the fakes do not need it), so the time is
stylewatch's own; ``requests`` says what the spacing would add on a real hub (the default
0.2 s a request per host). Ends with one line of JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.results import ArtistRef
from monitor.backscan.hub_history import search_keys
from monitor.build.hubs import build_checker, build_history
from monitor.runtime import open_runtime
from monitor.sources.base import Source
from monitor.sources.civitai import CivitaiSource
from monitor.sources.http import HttpClient, HttpPolicy
from monitor.sources.huggingface import HuggingFaceSource
from storage.store import Store
from storage.triage import TriageStore
from storage.users import UserStore
from tests.fakehubs.civitai import generic_lora
from tests.fakehubs.harness import settings_for
from tests.fakehubs.servers import Hubs, running_hubs

CIVITAI_NAMING = 1_000
CIVITAI_OTHER = 200
HF_NAMING = 300
POLICY = HttpPolicy(per_host_interval_s=0.0, per_host_concurrency=8, backoff_max_s=0.01)
START = datetime(2026, 1, 1, tzinfo=UTC)
ARTIST = "Ilse Varnhagen"


def seed(hubs: Hubs) -> None:
    for n in range(CIVITAI_NAMING):
        when = START + timedelta(minutes=n)
        hubs.civitai.add_upload(f"{ARTIST} ink {n}", generic_lora(f"i{n}"), published_at=when)
    for n in range(CIVITAI_OTHER):
        hubs.civitai.add_upload(f"Harbour {n}", generic_lora(f"h{n}"), published_at=START)
    for n in range(HF_NAMING):
        lora = generic_lora(f"v{n}", ss_training_comment=f"after {ARTIST}")
        hubs.huggingface.add_repo(f"fan{n}/varnhagen-{n}", START, {"v.safetensors": lora})


def requests(hubs: Hubs) -> dict[str, int]:
    return {
        "civitai": len(hubs.civitai.received),
        "huggingface": len(hubs.huggingface.received),
        "storage": len(hubs.storage.received),
    }


async def measure(hubs: Hubs, data_dir: Path) -> dict[str, Any]:
    runtime = open_runtime(settings_for(hubs, data_dir))
    try:
        record = runtime.store.add_artist(ARTIST)
        ref = ArtistRef(record.id, record.name)
        async with aiohttp.ClientSession() as session:
            http = HttpClient(session, POLICY)
            config = runtime.settings.sources
            sources: list[Source] = [
                CivitaiSource(config.civitai, http),
                HuggingFaceSource(config.huggingface, http),
            ]
            history = build_history(runtime, sources)
            assert history is not None
            keys = search_keys([ref], history.sources)

            def outage(source: str, query: str, pages: int, found: int) -> None:
                if source == "civitai" and pages == 5:  # the hub goes down mid-search
                    hubs.civitai.faults.add("/api/v1/models", "503", times=POLICY.max_attempts)

            began = time.perf_counter()
            first = await history.run(keys, progress=outage)
            stopped_s = time.perf_counter() - began
            mark = len(hubs.civitai.received)
            began = time.perf_counter()
            resumed = await history.run(keys)
            resumed_s = time.perf_counter() - began
            searched = requests(hubs)
            reread = [r for r in hubs.civitai.received[mark:] if r.path == "/api/v1/models"]
            _confirm_all(runtime.engine)
            began = time.perf_counter()
            checks = await build_checker(runtime, sources).check_due()
            check_s = time.perf_counter() - began
        uploads = len(runtime.store.list_uploads())
    finally:
        runtime.close()
    return {
        "uploads_recorded": uploads,
        "pages_before_outage": sum(s.pages for s in first),
        "pages_after_resume": sum(s.pages for s in resumed),
        "search_s": round(stopped_s + resumed_s, 2),
        "uploads_per_s": round(uploads / (stopped_s + resumed_s), 1),
        "requests_by_host": searched,
        # what the default spacing (0.2 s a request per host) adds on the real hubs
        "spacing_floor_s": round(max(searched.values()) * HttpPolicy().per_host_interval_s),
        "resume_first_pages_read_again": sum("cursor" not in r.query for r in reread),
        "takedown_checks": checks.checked,
        "takedown_checks_per_s": round(checks.checked / check_s, 1),
    }


def _confirm_all(engine: Any) -> None:
    moderator = UserStore(engine).add_user("mod@example.org", "moderator", "x")
    triage = TriageStore(engine)
    for finding in Store(engine).list_findings():
        triage.decide(finding.id, moderator.id, "confirm", "bench")


async def main() -> None:
    logging.getLogger("monitor").setLevel(logging.ERROR)  # the outage's retries are expected
    async with running_hubs() as hubs:
        seed(hubs)
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(await measure(hubs, Path(tmp))))


if __name__ == "__main__":
    asyncio.run(main())
