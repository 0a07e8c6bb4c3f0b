"""The probe worker in ``serve``: a LoRA the poller recorded from a (fake) hub is downloaded,
probed on the tiny pipeline and recorded as a probe finding; crashes resume."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import aiohttp
import pytest

from detectors.probe.base import GenerationSettings
from detectors.probe.diffusers_probe import DiffusersProbe
from detectors.style.gram import GramEmbedder
from monitor.pipeline.poll import Poller
from monitor.pipeline.probe import Prober
from monitor.pipeline.probe_worker import ProbeWorker
from monitor.runtime import Runtime, open_runtime
from monitor.settings import ProbeSettings
from monitor.sources.civitai import CivitaiSource
from monitor.sources.http import HttpClient
from storage.probe_cache import ProbeCache
from storage.source_state import SourceState
from tests.fakehubs.harness import FAST, settings_for
from tests.fakehubs.servers import Hubs, running_hubs
from tests.probe_fixtures import TinySD, register_ember
from tests.probe_models import IMAGE_PX, STEPS

pytestmark = [
    pytest.mark.timeout(180),
    # diffusers warns that saved configs carry keys newer or older than its classes know.
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]
TINY = GenerationSettings(steps=STEPS, guidance_scale=1.0, size_px=IMAGE_PX, batch_images=8)
# The tiny test LoRAs are too narrow to be recognised as SD1 (their family is "unknown"),
# so the base model is configured under that family name here.
FAMILY = "unknown"


@pytest.fixture
async def hubs() -> AsyncIterator[Hubs]:
    async with running_hubs() as hubs:
        yield hubs


@pytest.fixture
def runtime(hubs: Hubs, tmp_path, tiny_sd: TinySD) -> Iterator[Runtime]:
    settings = settings_for(hubs, tmp_path).model_copy(
        update={"probe": ProbeSettings(device="cpu", base_models={FAMILY: tiny_sd.base})}
    )
    runtime = open_runtime(settings)
    register_ember(runtime, tiny_sd)
    runtime.store.add_artist("Tide Marsh")
    yield runtime
    runtime.close()


def _prober(runtime: Runtime, tiny_sd: TinySD) -> Prober:
    backend = DiffusersProbe({FAMILY: tiny_sd.base}, device="cpu", generation=TINY)
    cache = ProbeCache(runtime.settings.data_dir / "probe-cache", runtime.blobs)
    return Prober(backend, GramEmbedder(), cache, runtime.blobs)


async def _poll_and_probe(hubs: Hubs, runtime: Runtime, prober: Prober, tiny_sd: TinySD):
    when = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    hubs.civitai.add_upload("Warm Glow", tiny_sd.style_kohya.read_bytes(), published_at=when)
    benign = hubs.civitai.add_upload(
        "Plain Things", tiny_sd.benign_kohya.read_bytes(), published_at=when
    )
    async with aiohttp.ClientSession() as session:
        source = CivitaiSource(runtime.settings.sources.civitai, HttpClient(session, FAST))
        poller = Poller(source, runtime.store, SourceState(runtime.engine), threshold=0.5)
        await poller.poll()
        worker = ProbeWorker(runtime, prober, {"civitai": source})
        queued = await worker.sweep()
        outcomes = {}
        for _ in range(queued):
            pk = await worker.queue.take("probe")
            outcomes[pk] = await worker.probe_upload(pk)
            worker.queue.done("probe", pk)
        again = await worker.sweep()
        # As a kill -9 mid-probe leaves it: the next sweep finds it and probes it again.
        first = runtime.store.list_uploads("civitai")[0]
        runtime.store.set_upload_state(first.id, "probing")
        resumed = await worker.sweep()
        redo = await worker.probe_upload(await worker.queue.take("probe"))
    return outcomes, again, str(benign.id), (resumed, redo)


async def test_a_polled_style_lora_becomes_a_probe_finding(hubs, runtime, tiny_sd):
    prober = _prober(runtime, tiny_sd)
    try:
        outcomes, again, benign_id, (resumed, redo) = await _poll_and_probe(
            hubs, runtime, prober, tiny_sd
        )
    finally:
        prober.close()
    assert len(outcomes) == 2
    assert all(o is not None and o.ran for o in outcomes.values())
    assert again == 0  # probed uploads are not queued again
    uploads = {u.name: u for u in runtime.store.list_uploads("civitai")}
    assert {u.state for u in uploads.values()} == {"probed"}
    findings = runtime.store.list_findings()
    assert [(f.artist, f.stage) for f in findings] == [("Ember Vale", "probe")]
    assert findings[0].upload_id != benign_id
    sheets = [e.blob_sha256 for e in findings[0].evidence if e.blob_sha256]
    assert sheets
    assert runtime.blobs.exists(sheets[0])
    assert not list((runtime.settings.data_dir / "probe-downloads").iterdir())
    assert resumed == 1
    assert redo is not None
    assert redo.ran
    assert {u.state for u in runtime.store.list_uploads("civitai")} == {"probed"}
    assert len(runtime.store.list_findings()) == 1  # probing again adds no duplicate
