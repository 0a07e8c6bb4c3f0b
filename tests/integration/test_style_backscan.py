"""Back-scan by style on the tiny pipeline: LoRAs polled from the (fake) Civitai hub and
probed by the worker keep their probe runs; an artist's reference images added later score
those runs again without drawing anything, and uploads without a run are probed again as a
back-scan."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from detectors.probe.base import GenerationSettings
from detectors.probe.diffusers_probe import DiffusersProbe
from detectors.results import ArtistRef
from detectors.style.base import StyleEmbedder
from detectors.style.gram import GramEmbedder
from monitor.backscan.style import StyleScoring, prober_scoring, style_backscan
from monitor.pipeline.poll import Poller
from monitor.pipeline.probe import Prober
from monitor.pipeline.probe_worker import ProbeWorker
from monitor.runtime import Runtime, open_runtime
from monitor.settings import ProbeSettings, load_settings
from monitor.sources.civitai import CivitaiSource
from monitor.sources.http import HttpClient
from storage.probe_cache import ProbeCache
from storage.source_state import SourceState
from tests.fakehubs.harness import FAST, settings_for
from tests.fakehubs.servers import Hubs, running_hubs
from tests.probe_fixtures import TinySD
from tests.probe_models import IMAGE_PX, STEPS, style_references

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]
TINY = GenerationSettings(steps=STEPS, guidance_scale=1.0, size_px=IMAGE_PX, batch_images=8)
FAMILY = "unknown"  # the tiny LoRAs are too narrow to be recognised as SD1
STYLE, BENIGN = "Warm Glow", "Plain Things"


class EarlierGram(GramEmbedder):
    """The built-in embedder under another name: runs kept with it are not today's."""

    name = "gram-earlier"


@pytest.fixture
async def hubs(tiny_sd: TinySD) -> AsyncIterator[Hubs]:
    when = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    async with running_hubs() as hubs:
        hubs.civitai.add_upload(STYLE, tiny_sd.style_kohya.read_bytes(), published_at=when)
        hubs.civitai.add_upload(BENIGN, tiny_sd.benign_kohya.read_bytes(), published_at=when)
        yield hubs


@pytest.fixture
def runtime(hubs: Hubs, tmp_path: Path, tiny_sd: TinySD) -> Iterator[Runtime]:
    settings = settings_for(hubs, tmp_path).model_copy(
        update={"probe": ProbeSettings(device="cpu", base_models={FAMILY: tiny_sd.base})}
    )
    runtime = open_runtime(settings)
    tide = runtime.store.add_artist("Tide Marsh")
    _add_references(runtime, tide.id, tiny_sd, "tide")
    yield runtime
    runtime.close()


def _add_references(runtime: Runtime, artist_id: int, tiny_sd: TinySD, style: str) -> None:
    for image in style_references(tiny_sd.base, style, n=4, seed=1):
        out = io.BytesIO()
        image.save(out, format="PNG")
        sha = runtime.blobs.put(out.getvalue())
        runtime.store.add_reference_image(
            artist_id, sha, mime="image/png", width=image.width, height=image.height, size=0
        )


def _prober(runtime: Runtime, tiny_sd: TinySD, embedder: StyleEmbedder) -> Prober:
    backend = DiffusersProbe({FAMILY: tiny_sd.base}, device="cpu", generation=TINY)
    cache = ProbeCache(runtime.settings.data_dir / "probe-cache", runtime.blobs)
    return Prober(backend, embedder, cache, runtime.blobs)


async def _poll_and_probe(runtime: Runtime, prober: Prober) -> int:
    """Poll the hub, then probe every upload waiting; returns how many were probed."""
    async with aiohttp.ClientSession() as session:
        source = CivitaiSource(runtime.settings.sources.civitai, HttpClient(session, FAST))
        await Poller(source, runtime.store, SourceState(runtime.engine), threshold=0.5).poll()
        worker = ProbeWorker(runtime, prober, {"civitai": source})
        queued = await worker.sweep()
        for _ in range(queued):
            upload_pk = await worker.queue.take("probe")
            outcome = await worker.probe_upload(upload_pk)
            assert outcome is not None and outcome.ran
            worker.queue.done("probe", upload_pk)
    return queued


def _register(runtime: Runtime, name: str) -> ArtistRef:
    artist = runtime.store.add_artist(name)
    return ArtistRef(artist.id, artist.name, artist.aliases)


def _states(runtime: Runtime) -> dict[str, str]:
    return {u.name: u.state for u in runtime.store.list_uploads("civitai")}


async def test_new_references_rescore_kept_probe_runs_without_drawing(runtime, tiny_sd):
    ember = _register(runtime, "Ember Vale")
    prober = _prober(runtime, tiny_sd, GramEmbedder())
    try:
        assert await _poll_and_probe(runtime, prober) == 2
        assert [f for f in runtime.store.list_findings() if f.artist == "Ember Vale"] == []
        _add_references(runtime, ember.artist_id, tiny_sd, "ember")
        drawn = prober.backend.unet_evaluations
        result = style_backscan(runtime, prober_scoring(prober), [ember])
        again = style_backscan(runtime, prober_scoring(prober), [ember])
        assert prober.backend.unet_evaluations == drawn  # scored, not drawn
    finally:
        prober.close()
    assert (result.rescored, result.queued, result.flagged) == (2, 0, {"Ember Vale": 1})
    assert 1 <= result.closer <= 2
    assert "1 flagged" in result.summary()[0]
    found = [f for f in runtime.store.list_findings() if f.artist == "Ember Vale"]
    assert [(f.name.split(" v")[0], f.stage, f.backscan) for f in found] == [(STYLE, "probe", True)]
    assert any(e.source == "style" and "lift" in e.text for e in found[0].evidence)
    sheets = [e.blob_sha256 for e in found[0].evidence if e.blob_sha256]
    assert sheets and runtime.blobs.exists(sheets[0])
    assert again.flagged == {"Ember Vale": 1}
    assert len([f for f in runtime.store.list_findings() if f.artist == "Ember Vale"]) == 1
    assert set(_states(runtime).values()) == {"probed"}


async def test_uploads_without_a_kept_run_are_probed_again_as_a_backscan(runtime, tiny_sd):
    ember = _register(runtime, "Ember Vale")
    earlier = _prober(runtime, tiny_sd, EarlierGram())
    try:
        assert await _poll_and_probe(runtime, earlier) == 2
    finally:
        earlier.close()
    _add_references(runtime, ember.artist_id, tiny_sd, "ember")
    today = _prober(runtime, tiny_sd, GramEmbedder())
    try:
        queued = style_backscan(runtime, prober_scoring(today), [ember])
        assert (queued.rescored, queued.queued, queued.flagged) == (0, 2, {})
        assert set(_states(runtime).values()) == {"requeued"}
        assert style_backscan(runtime, prober_scoring(today), [ember]).queued == 0
        assert await _poll_and_probe(runtime, today) == 2
        rescored = style_backscan(runtime, prober_scoring(today), [ember])
    finally:
        today.close()
    assert set(_states(runtime).values()) == {"probed"}
    found = [f for f in runtime.store.list_findings() if f.artist == "Ember Vale"]
    assert [(f.name.split(" v")[0], f.stage, f.backscan) for f in found] == [(STYLE, "probe", True)]
    assert (rescored.rescored, rescored.queued) == (2, 0)


def test_nothing_to_score_says_why(tmp_path, runtime):
    unconfigured = open_runtime(load_settings(None, data_dir=tmp_path / "other"))
    try:
        artist = _register(unconfigured, "Ember Vale")
        no_base = style_backscan(unconfigured, _scoring(unconfigured), [artist])
    finally:
        unconfigured.close()
    assert no_base.summary() == [
        "probe back-scan: skipped: no base model is configured ([probe] base_models)"
    ]
    no_references = style_backscan(runtime, _scoring(runtime), [_register(runtime, "Ember")])
    assert no_references.skipped == "no reference images to compare with"


def _scoring(runtime: Runtime) -> StyleScoring:
    cache = ProbeCache(runtime.settings.data_dir / "probe-cache", runtime.blobs)
    return StyleScoring(GramEmbedder(), cache, threshold=0.1)
