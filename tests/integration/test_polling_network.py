"""Polling through hubs that behave like a real network (tests.fakehubs.network): bodies in
small pieces, gzip, bodies cut mid-way, a storage host that ignores Range for some files;
and the uploads a creation-date feed never shows (a repo made public late, a file pushed to
an old repo). Every upload is recorded exactly once with its verdict, and no upload costs
more than its byte budget."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.build.sources import create_session
from monitor.pipeline.poll import MAX_BYTES_PER_UPLOAD, Poller
from monitor.runtime import Runtime
from monitor.sources.base import Source
from monitor.sources.civitai import CivitaiSource
from monitor.sources.http import HttpClient
from monitor.sources.huggingface import HuggingFaceSource
from storage.source_state import SourceState
from tests.fakehubs import civitai as fake_civitai
from tests.fakehubs import huggingface as fake_hf
from tests.fakehubs.civitai import generic_lora
from tests.fakehubs.harness import FAST, SleepLog, runtime_for
from tests.fakehubs.servers import Hubs, running_hubs
from tests.fakehubs.storage import Blob

pytestmark = pytest.mark.timeout(120)
NOW = datetime(2026, 8, 12, 12, 0, tzinfo=UTC)
BUDGET = MAX_BYTES_PER_UPLOAD


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
        CivitaiSource(config.civitai, http, page_limit=20, first_poll_pages=10, max_pages=10),
        HuggingFaceSource(config.huggingface, http, page_limit=20, first_poll_pages=10),
    ]
    return {s.name: Poller(s, runtime.store, state, threshold=0.5) for s in sources}


def named_lora(name: str) -> bytes:
    """A LoRA whose training tags credit Mara Quellbrook (a metadata finding)."""
    tags = json.dumps({"10_style": {"by mara quellbrook": 12, "landscape": 9}})
    return generic_lora(name, ss_tag_frequency=tags)


def deep_lora(modules: int = 48, rank: int = 64, width: int = 1280) -> Blob:
    """A ~30 MB kohya LoRA (zero weights, never materialised): its fingerprint's ranges lie
    deep in the file, so a host that ignores Range would have to send megabytes first."""
    header: dict[str, Any] = {"__metadata__": {"ss_output_name": "deep"}}
    offset = 0
    for i in range(modules):
        base = f"lora_unet_down_blocks_{i % 3}_attentions_{i}_transformer_blocks_0_attn1_to_q"
        for part, shape in (("lora_down", [rank, width]), ("lora_up", [width, rank])):
            size = 2 * rank * width
            header[f"{base}.{part}.weight"] = {
                "dtype": "F16",
                "shape": shape,
                "data_offsets": [offset, offset + size],
            }
            offset += size
        header[f"{base}.alpha"] = {
            "dtype": "F16",
            "shape": [],
            "data_offsets": [offset, offset + 2],
        }
        offset += 2
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    prefix = len(raw).to_bytes(8, "little") + raw
    return Blob(prefix, len(prefix) + offset)


async def test_a_deep_lora_behind_a_host_ignoring_range_stays_within_its_budget(hubs, runtime):
    version = hubs.civitai.add_upload("Deep Style", deep_lora(), published_at=NOW)
    hubs.storage.ignore_range.add(version.files[0].blob_key)
    async with create_session() as session:
        summary = await pollers(runtime, HttpClient(session, FAST, sleep=SleepLog()))[
            "civitai"
        ].poll()
    [deep] = [u for u in runtime.store.list_uploads("civitai") if u.upload_id == str(version.id)]
    assert deep.state == "screened"
    [file] = deep.files
    assert file.kind == "lora"
    assert file.fingerprint is not None
    assert file.fingerprint.startswith("not available:")
    assert "ignores Range" in file.fingerprint
    assert max(summary.bytes_per_upload) <= BUDGET
    # The host sent the header and whatever sat in socket buffers when the client hung up.
    assert hubs.storage.bytes_sent < 20 * BUDGET


def arrive(hubs: Hubs, n: int, when: datetime) -> tuple[set[str], set[str]]:
    """Upload ``n`` on each hub (every third names the artist); the flagged ids."""
    named = n % 3 == 0
    data = named_lora(f"arrival {n}") if named else generic_lora(f"arrival {n}")
    version = hubs.civitai.add_upload(f"Arrival {n}", data, published_at=when)
    repo = f"maker-{n}/arrival-{n}"
    hubs.huggingface.add_repo(repo, when, {f"arrival_{n}.safetensors": data})
    return ({str(version.id)} if named else set()), ({repo} if named else set())


def faults(hubs: Hubs, rng: random.Random) -> None:
    """About one request in five misbehaves: resets, bodies cut mid-way, 503s, 429s."""
    for fake in (hubs.civitai, hubs.huggingface):
        for prefix in ("/api/v1/models", "/api/v1/model-versions/", "/api/models"):
            for kind in ("cut", "reset", "503", "429", "slow"):
                if rng.random() < 0.2:
                    fake.faults.add(prefix, kind)


async def test_poll_cycles_under_faults_record_every_upload_once(hubs, runtime) -> None:
    rng = random.Random(15)
    flagged_cv: set[str] = set()
    flagged_hf: set[str] = set()
    fixtures = hubs.civitai.version_ids() | set(hubs.huggingface.repos)
    budgets: list[int] = []
    async with create_session() as session:
        chosen = pollers(runtime, HttpClient(session, FAST, sleep=SleepLog()))
        for cycle in range(8):
            for n in range(cycle * 4, cycle * 4 + 4):
                cv, hf = arrive(hubs, n, NOW + timedelta(minutes=n))
                flagged_cv |= cv
                flagged_hf |= hf
            keys = sorted(hubs.storage.blobs)
            hubs.storage.ignore_range = {k for k in keys if rng.random() < 0.2}
            faults(hubs, rng)
            for poller in chosen.values():
                budgets += (await poller.poll()).bytes_per_upload
        for fake in (hubs.civitai, hubs.huggingface):
            fake.faults.queued.clear()
        for _ in range(2):  # quiet polls let the retry queues drain
            for poller in chosen.values():
                budgets += (await poller.poll()).bytes_per_upload
    cv = runtime.store.list_uploads("civitai")
    hf = runtime.store.list_uploads("huggingface")
    assert max(Counter(u.upload_id for u in cv + hf).values()) == 1
    assert {u.upload_id for u in cv} == hubs.civitai.version_ids()
    adapters = {r.id for r in hubs.huggingface.repos.values() if "lora" in r.tags}
    assert {u.upload_id for u in hf if "@" not in u.upload_id} >= adapters
    failed = {(u.upload_id, u.error) for u in cv + hf if u.state != "screened"}
    # The fixture repo that holds no weights yet stays "failed" (not ready), and only it.
    assert failed == {
        (
            "tarn-w/mossgate-concept-lora",
            "huggingface repo tarn-w/mossgate-concept-lora has no model file yet",
        )
    }
    flagged = {u.upload_id for u in cv + hf if u.artists}
    assert flagged_cv | flagged_hf <= flagged
    assert flagged - fixtures == flagged_cv | flagged_hf  # no arrival flagged wrongly
    assert budgets
    assert max(budgets) <= BUDGET


async def test_a_repo_made_public_late_and_a_file_pushed_later_are_seen_once(hubs, runtime):
    old = NOW - timedelta(days=40)
    secret = hubs.huggingface.add_repo(
        "quiet-maker/held-back-style", old, {"held_back.safetensors": named_lora("held back")}
    )
    secret.private = True
    hubs.huggingface.add_repo(
        "old-maker/ink-wash-lora", old, {"ink_wash.safetensors": generic_lora("ink wash")}
    )
    async with create_session() as session:
        hf = pollers(runtime, HttpClient(session, FAST, sleep=SleepLog()))["huggingface"]
        await hf.poll()
        before = {u.upload_id for u in runtime.store.list_uploads("huggingface")}
        hubs.huggingface.make_public("quiet-maker/held-back-style", NOW)
        hubs.huggingface.push_file(
            "old-maker/ink-wash-lora",
            "ink_wash_quellbrook_v2.safetensors",
            named_lora("ink wash v2"),
            NOW,
        )
        await hf.poll()
        reads_after_second = len(hubs.storage.received)
        third = await hf.poll()
    uploads = {u.upload_id: u for u in runtime.store.list_uploads("huggingface")}
    new = set(uploads) - before
    assert {i.partition("@")[0] for i in new} == {
        "quiet-maker/held-back-style",
        "old-maker/ink-wash-lora",
    }
    assert len(new) == 2
    assert "old-maker/ink-wash-lora" in before  # the repo's first sight, by creation date
    pushed = next(uploads[i] for i in new if i.startswith("old-maker/"))
    assert [f.filename for f in pushed.files] == ["ink_wash_quellbrook_v2.safetensors"]
    assert pushed.artists == ("Mara Quellbrook",)
    public = next(uploads[i] for i in new if i.startswith("quiet-maker/"))
    assert public.artists == ("Mara Quellbrook",)
    # A third poll lists the same revisions again and reads no file byte for them.
    assert third.screened == 0
    assert len(hubs.storage.received) == reads_after_second
