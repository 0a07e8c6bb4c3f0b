"""Full checkpoints through the probe worker: a Civitai checkpoint version on the fake hub is
downloaded (resumed after a reset mid-body, checked against the hub's SHA-256), its UNet
swapped into the tiny base pipeline and probed on the LoRA plan. The style checkpoint is a
probe finding, the benign one is not; one over the size budget is recorded as such; a
download whose hash differs is retried later, never probed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from detectors.probe.base import GenerationSettings
from detectors.probe.bases import DerivativeBase, probe_key
from detectors.probe.diffusers_probe import DiffusersProbe
from detectors.style.gram import GramEmbedder
from monitor.pipeline.poll import Poller
from monitor.pipeline.probe import ProbeOutcome, Prober
from monitor.pipeline.probe_worker import ProbeWorker
from monitor.runtime import Runtime, open_runtime
from monitor.settings import ProbeSettings
from monitor.sources.civitai import CivitaiSource
from monitor.sources.http import HttpClient
from storage.probe_cache import ProbeCache
from storage.probe_jobs import PROBE_ASKED
from storage.source_state import SourceState
from tests.fakehubs.civitai import CvVersion
from tests.fakehubs.harness import FAST, settings_for
from tests.fakehubs.servers import Hubs, running_hubs
from tests.fakehubs.storage import Blob
from tests.probe_checkpoints import save_checkpoint
from tests.probe_fixtures import TinySD, register_ember
from tests.probe_models import IMAGE_PX, STEPS

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]
TINY = GenerationSettings(steps=STEPS, guidance_scale=1.0, size_px=IMAGE_PX, batch_images=8)
FAMILY = "unknown"  # the tiny UNet's 32-wide context names no real family
BUDGET = 64 * 1024**2
WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Checkpoints:
    style: Path
    benign: Path


@pytest.fixture(scope="module")
def checkpoints(tiny_sd: TinySD, tmp_path_factory: pytest.TempPathFactory) -> Checkpoints:
    root = tmp_path_factory.mktemp("tiny-checkpoints")
    return Checkpoints(
        style=save_checkpoint(tiny_sd.base, root / "style.safetensors", tiny_sd.style_peft),
        benign=save_checkpoint(tiny_sd.base, root / "benign.safetensors", tiny_sd.benign_peft),
    )


@pytest.fixture
async def hubs() -> AsyncIterator[Hubs]:
    async with running_hubs() as hubs:
        yield hubs


@pytest.fixture
def runtime(hubs: Hubs, tmp_path: Path, tiny_sd: TinySD) -> Iterator[Runtime]:
    probe = ProbeSettings(
        device="cpu", base_models={FAMILY: tiny_sd.base}, checkpoint_max_bytes=BUDGET
    )
    runtime = open_runtime(settings_for(hubs, tmp_path).model_copy(update={"probe": probe}))
    register_ember(runtime, tiny_sd)
    runtime.store.add_artist("Tide Marsh")
    yield runtime
    runtime.close()


def _checkpoint(hubs: Hubs, name: str, data: bytes | Blob) -> CvVersion:
    version = hubs.civitai.add_upload(name, data, published_at=WHEN, base_model="SD 1.5")
    model = next(m for m in hubs.civitai.models.values() if version in m.versions)
    model.type = "Checkpoint"
    return version


async def _probe_all(
    hubs: Hubs,
    runtime: Runtime,
    tiny_sd: TinySD,
    cut: str | None = None,
    bases: tuple[DerivativeBase, ...] = (),
) -> dict[str, ProbeOutcome | None]:
    """Poll, then probe every queued upload; ``cut``: a storage key whose first download
    answer resets half way (after the poll's header reads)."""
    folders = {FAMILY: tiny_sd.base, **{probe_key(b.family, b.name): tiny_sd.base for b in bases}}
    backend = DiffusersProbe(folders, device="cpu", generation=TINY)
    cache = ProbeCache(runtime.settings.data_dir / "probe-cache", runtime.blobs)
    prober = Prober(backend, GramEmbedder(), cache, runtime.blobs, bases=bases)
    try:
        async with aiohttp.ClientSession() as session:
            source = CivitaiSource(runtime.settings.sources.civitai, HttpClient(session, FAST))
            poller = Poller(source, runtime.store, SourceState(runtime.engine), threshold=0.5)
            await poller.poll()
            if cut is not None:
                hubs.storage.cut.add(cut)
            worker = ProbeWorker(runtime, prober, {"civitai": source})
            outcomes: dict[str, ProbeOutcome | None] = {}
            by_pk = {u.id: u.upload_id for u in runtime.store.list_uploads("civitai")}
            await worker.sweep()
            while (pk := await _next(worker)) is not None:
                outcomes[by_pk[pk]] = await worker.probe_upload(pk)
                worker.queue.done("probe", pk)
            return outcomes
    finally:
        prober.close()


def _padded(data: bytes, size: int) -> Blob:
    """The checkpoint with one more (zero, never materialised) tensor that makes the file
    ``size`` bytes long: a valid header, as a multi-GB merge on the hub has."""
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    end = len(data) - 8 - length
    raw, pad = b"", 0
    while 8 + len(raw) + end + pad != size:  # the header's length moves with the pad's digits
        pad = size - 8 - len(raw) - end
        header["cond_stage_model.padding"] = {
            "dtype": "U8",
            "shape": [pad],
            "data_offsets": [end, end + pad],
        }
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
    prefix = len(raw).to_bytes(8, "little") + raw + data[8 + length :]
    return Blob(prefix, size)


async def _next(worker: ProbeWorker) -> int | None:
    import asyncio

    try:
        return await asyncio.wait_for(worker.queue.take("probe"), 0.2)
    except TimeoutError:
        return None


@pytest.mark.parametrize("ignore_range", [False, True], ids=["range", "range-ignored"])
async def test_a_style_checkpoint_is_a_probe_finding_and_a_benign_one_is_not(
    hubs, runtime, tiny_sd, checkpoints, ignore_range
):
    style_version = _checkpoint(hubs, "Warm Merge", checkpoints.style.read_bytes())
    benign = str(_checkpoint(hubs, "Plain Merge", checkpoints.benign.read_bytes()).id)
    style, style_key = str(style_version.id), style_version.files[0].blob_key
    if ignore_range:  # the CDN sends the whole body again: the retry writes it over
        hubs.storage.ignore_range.add(style_key)
    # The storage host resets the style file's download half way: the retry resumes.
    outcomes = await _probe_all(hubs, runtime, tiny_sd, cut=style_key)
    uploads = {u.upload_id: u for u in runtime.store.list_uploads("civitai")}
    assert {uploads[style].kind, uploads[benign].kind} == {"checkpoint"}
    assert set(outcomes) == {style, benign}
    assert all(o is not None and o.ran for o in outcomes.values())
    assert {u.state for u in uploads.values()} == {"probed"}
    findings = runtime.store.list_findings()
    assert [(f.artist, f.stage, f.upload_id) for f in findings] == [("Ember Vale", "probe", style)]
    assert not hubs.storage.cut  # the cut happened
    assert not list((runtime.settings.data_dir / "probe-downloads").iterdir())
    ranges = [
        r.headers.get("Range", "") for r in hubs.storage.received if r.path.endswith(style_key)
    ]
    # The retry asked for the rest only (a Range-ignoring host answered with it all anyway).
    assert any(r.startswith("bytes=") and not r.startswith("bytes=0-") for r in ranges)


async def test_over_budget_and_hash_mismatch_are_recorded_not_probed(
    hubs, runtime, tiny_sd, checkpoints
):
    data = checkpoints.benign.read_bytes()
    huge = str(_checkpoint(hubs, "Huge Merge", _padded(data, 12 * 1024**3)).id)
    mangled = _checkpoint(hubs, "Mangled Merge", data)
    mangled.files[0].sha256 = "AB" * 32
    wrong = str(mangled.id)
    outcomes = await _probe_all(hubs, runtime, tiny_sd)
    uploads = {u.upload_id: u for u in runtime.store.list_uploads("civitai")}
    over = outcomes[huge]
    assert over is not None and not over.ran
    assert uploads[huge].state == "failed"
    assert uploads[huge].error == (
        "not probed: over the size budget (0.1 GB): the checkpoint is 12.88 GB"
    )
    assert outcomes[wrong] is None  # waits for a later sweep
    assert uploads[wrong].state == "screened"
    assert "SHA-256" in (uploads[wrong].error or "")
    assert "\n" not in (uploads[wrong].error or "")
    assert not runtime.store.list_findings()
    assert not list((runtime.settings.data_dir / "probe-downloads").iterdir())
    # A moderator queues the huge one (POST /findings/N/probe): the budget no longer stops
    # it, the free-disk floor still does (here set above any disk), and it waits.
    runtime.store.set_upload_state(uploads[huge].id, "screened", error=PROBE_ASKED)
    probe = runtime.settings.probe.model_copy(update={"checkpoint_min_free_bytes": 1024**4})
    floored = replace(runtime, settings=runtime.settings.model_copy(update={"probe": probe}))
    again = await _probe_all(hubs, floored, tiny_sd)
    assert again == {huge: None, wrong: None}
    record = next(u for u in runtime.store.list_uploads("civitai") if u.upload_id == huge)
    assert record.state == "screened"
    assert (record.error or "").startswith(f"{PROBE_ASKED}; not enough disk for the checkpoint")
    assert hubs.storage.streamed_bytes < 1024**3  # nothing near 12 GB was fetched


async def test_an_upload_the_hub_calls_pony_is_drawn_on_the_pony_base_with_its_prefix(
    hubs, runtime, tiny_sd
):
    """The hub's baseModel is stored with the upload and picks the configured derivative;
    every prompt drawn starts with its score tags (base images cached under those)."""
    pony = DerivativeBase("pony", FAMILY, ("pony",), "score_9, score_8_up")
    plain = hubs.civitai.add_upload("Plain", tiny_sd.benign_kohya.read_bytes(), published_at=WHEN)
    ponied = hubs.civitai.add_upload(
        "Ponied", tiny_sd.benign_peft.read_bytes(), published_at=WHEN, base_model="Pony"
    )
    outcomes = await _probe_all(hubs, runtime, tiny_sd, bases=(pony,))
    uploads = {u.upload_id: u for u in runtime.store.list_uploads("civitai")}
    assert uploads[str(ponied.id)].hub_base_model == "Pony"
    assert uploads[str(plain.id)].hub_base_model == "SD 1.5"
    assert all(o is not None and o.ran for o in outcomes.values())
    cache = ProbeCache(runtime.settings.data_dir / "probe-cache", runtime.blobs)
    backend = DiffusersProbe(
        {FAMILY: tiny_sd.base, f"{FAMILY}/pony": tiny_sd.base}, generation=TINY
    )
    subject, seed = "a portrait of a woman", 1234
    pony_key = backend.settings_key(f"{FAMILY}/pony")
    own_key = backend.settings_key(FAMILY)
    assert cache.base_image(f"{FAMILY}/pony", pony_key, f"score_9, score_8_up, {subject}", seed)
    assert cache.base_image(f"{FAMILY}/pony", pony_key, subject, seed) is None
    assert cache.base_image(FAMILY, own_key, subject, seed)
    assert cache.base_image(FAMILY, own_key, f"score_9, score_8_up, {subject}", seed) is None


def test_a_checkpoint_that_does_not_fit_is_one_clear_error_and_leaves_the_base(
    tiny_sd, checkpoints, tmp_path
):
    from safetensors.torch import load_file, save_file

    from detectors.errors import ProbeError

    backend = DiffusersProbe({FAMILY: tiny_sd.base}, device="cpu", generation=TINY)
    before = backend.generate(FAMILY, ["a boat"], [7])
    tensors = load_file(str(checkpoints.benign))
    vae_only = tmp_path / "vae.safetensors"
    save_file({"first_stage_model.decoder.conv_in.weight": next(iter(tensors.values()))}, vae_only)
    narrow = tmp_path / "narrow.safetensors"
    key = next(k for k in tensors if k.endswith("attn2.to_k.weight"))
    save_file({**tensors, key: tensors[key][:, :8].contiguous()}, narrow)
    pickle = tmp_path / "merge.ckpt"
    pickle.write_bytes(b"not read")
    for path, message in (
        (vae_only, "holds no UNet weights"),
        (narrow, "does not fit the base model's UNet"),
        (pickle, "never loads pickles"),
    ):
        with pytest.raises(ProbeError, match=message) as caught, backend.checkpoint(FAMILY, path):
            pass
        assert "\n" not in str(caught.value)
    assert backend.generate(FAMILY, ["a boat"], [7])[0].tobytes() == before[0].tobytes()
