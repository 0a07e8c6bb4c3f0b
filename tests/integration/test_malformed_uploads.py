"""Uploads with malformed metadata: polled, recorded (nothing lost), left for the probe like
any other, counted in /metrics and listed in the moderators' queue with their reason."""

# ruff: noqa: F811  (pytest fixtures imported from tests.web_env are test parameters here)

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import aiohttp
import pytest

from monitor.pipeline.poll import Poller
from monitor.runtime import Runtime
from monitor.sources.civitai import CivitaiSource
from monitor.sources.http import HttpClient
from storage.probe_jobs import probe_candidates
from storage.records import FileRecord
from storage.source_state import SourceState
from tests.fakehubs.harness import FAST, SleepLog, runtime_for
from tests.fakehubs.servers import Hubs, running_hubs
from tests.modelfiles import materialise
from tests.web_env import (  # noqa: F401
    seeded,
    visitors,
    web_runtime,
    web_server,
    web_template,
)

pytestmark = pytest.mark.timeout(60)
DEEP_TAGS = "[" * 10_000 + "]" * 10_000


def lora_with_metadata(metadata: dict[str, object]) -> bytes:
    base = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    header = {
        "__metadata__": metadata,
        f"{base}.alpha": {"dtype": "F16", "shape": [], "data_offsets": [0, 2]},
        f"{base}.lora_down.weight": {"dtype": "F16", "shape": [4, 768], "data_offsets": [2, 6146]},
        f"{base}.lora_up.weight": {
            "dtype": "F16",
            "shape": [320, 4],
            "data_offsets": [6146, 8706],
        },
    }
    return materialise(header)


@pytest.fixture
async def hubs() -> AsyncIterator[Hubs]:
    async with running_hubs() as hubs:
        when = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        hubs.civitai.add_upload(
            "Odd Numbers",
            lora_with_metadata({"ss_output_name": "odd", "ss_epoch": 10}),
            published_at=when,
        )
        hubs.civitai.add_upload(
            "Deep Tags",
            lora_with_metadata({"ss_output_name": "deep", "ss_tag_frequency": DEEP_TAGS}),
            published_at=when,
        )
        hubs.civitai.add_upload(
            "Plain", lora_with_metadata({"ss_output_name": "plain"}), published_at=when
        )
        yield hubs


@pytest.fixture
def runtime(hubs: Hubs, tmp_path) -> Iterator[Runtime]:
    runtime = runtime_for(hubs, tmp_path)
    yield runtime
    runtime.close()


async def test_a_poll_records_malformed_uploads_with_their_reason(hubs, runtime):
    async with aiohttp.ClientSession() as session:
        http = HttpClient(session, FAST, sleep=SleepLog())
        source = CivitaiSource(runtime.settings.sources.civitai, http, first_poll_pages=2)
        poller = Poller(source, runtime.store, SourceState(runtime.engine), threshold=0.5)
        summary = await poller.poll()
    assert summary.malformed == 2
    assert poller.counters.malformed == 2
    by_name = {u.name.removesuffix(" v1.0"): u for u in runtime.store.list_uploads("civitai")}
    assert {by_name[n].state for n in ("Odd Numbers", "Deep Tags", "Plain")} == {"screened"}
    assert by_name["Odd Numbers"].malformed == (
        "odd_numbers.safetensors: __metadata__ 'ss_epoch' is a number, not a string"
    )
    assert by_name["Deep Tags"].malformed == (
        "deep_tags.safetensors: metadata 'ss_tag_frequency' nests deeper than the 16-level cap"
    )
    assert by_name["Plain"].malformed is None
    (odd_file,) = by_name["Odd Numbers"].files
    assert odd_file.kind == "lora"  # the tensors were read: the probe can take it
    waiting = probe_candidates(runtime.engine, {"sd1"})
    assert by_name["Odd Numbers"].id in waiting and by_name["Deep Tags"].id in waiting


async def test_queue_and_metrics_show_malformed_uploads(web_runtime, visitors):
    reason = "__metadata__ 'ss_epoch' is a number, not a string"
    web_runtime.store.record_upload(
        "civitai",
        "990001",
        "Odd Numbers LoRA",
        files=[FileRecord("odd.safetensors", format="safetensors", malformed=reason)],
    )
    metrics = await (await visitors()).get("/metrics")
    assert 'stylewatch_uploads_malformed{source="civitai"} 1.0' in metrics.text
    mod = await visitors("mod@example.org")
    queue = await mod.get("/queue")
    assert "Malformed metadata" in queue.text
    page = await mod.get("/queue/malformed")
    assert page.status == 200
    assert "Odd Numbers LoRA" in page.text
    assert f"odd.safetensors: {reason}".replace("'", "&#39;") in page.text
