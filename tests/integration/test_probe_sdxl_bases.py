"""SDXL derivatives on their own base: two tiny SDXL-shaped bases (the family's and a "pony"
one), LoRAs whose training metadata names one or the other. The base comes from the file's
metadata, and the chosen key draws on that base's folder, bit for bit as that folder alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.probe.base import GenerationSettings
from detectors.probe.bases import DerivativeBase
from detectors.probe.diffusers_probe import DiffusersProbe
from detectors.style.gram import GramEmbedder
from monitor.pipeline.probe import Prober
from monitor.sources.local_files import read_local_file
from storage.file_blobs import FileBlobStore
from storage.probe_cache import ProbeCache
from tests import probe_models as pm
from tests.probe_checkpoints import save_checkpoint
from tests.probe_sdxl import build_tiny_sdxl, random_lora

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]
GENERATION = GenerationSettings(
    steps=pm.STEPS, guidance_scale=1.0, size_px=pm.IMAGE_PX, batch_images=4
)
PONY = DerivativeBase("pony", "sdxl", ("pony",), "score_9, score_8_up")
PROMPTS, SEEDS = ["a house", "a boat"], [1, 2]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("sdxl-bases")
    sdxl = build_tiny_sdxl(root / "sdxl", seed=0)
    pony = build_tiny_sdxl(root / "pony", seed=1)
    state = random_lora(sdxl, seed=5)
    plain = {"ss_base_model_version": "sdxl_base_v1-0"}
    ponied = {**plain, "ss_sd_model_name": "ponyDiffusionV6XL_v6StartWithThisOne.safetensors"}
    return {
        "sdxl": sdxl,
        "pony": pony,
        "plain_lora": pm.save_kohya_lora(state, root / "plain.safetensors", metadata=plain),
        "pony_lora": pm.save_kohya_lora(state, root / "pony.safetensors", metadata=ponied),
    }


def test_the_metadata_picks_the_base_and_the_key_draws_on_its_folder(world, tmp_path):
    backend = DiffusersProbe(
        {"sdxl": world["sdxl"], "sdxl/pony": world["pony"]}, device="cpu", generation=GENERATION
    )
    blobs = FileBlobStore(tmp_path / "blobs")
    prober = Prober(
        backend, GramEmbedder(), ProbeCache(tmp_path / "cache", blobs), blobs, bases=(PONY,)
    )
    try:
        keys = {
            name: prober.base_for("sdxl", read_local_file(world[name]).header.metadata, None)
            for name in ("plain_lora", "pony_lora")
        }
    finally:
        prober.close()
    assert keys == {"plain_lora": "sdxl", "pony_lora": "sdxl/pony"}
    with backend.lora(keys["pony_lora"], world["pony_lora"]) as draw:
        on_pony = draw(PROMPTS, SEEDS)
    with backend.lora(keys["plain_lora"], world["plain_lora"]) as draw:
        on_sdxl = draw(PROMPTS, SEEDS)
    alone = DiffusersProbe({"sdxl": world["pony"]}, device="cpu", generation=GENERATION)
    expected = alone.generate("sdxl", PROMPTS, SEEDS, lora=world["pony_lora"])
    assert [i.tobytes() for i in on_pony] == [i.tobytes() for i in expected]
    assert pm.grid_distance(on_pony, on_sdxl) > 0.5  # the two bases draw apart
    assert backend.settings_key("sdxl/pony") != backend.settings_key("sdxl")


def test_an_sdxl_checkpoint_draws_what_its_fused_lora_draws_and_leaves_the_base(world, tmp_path):
    """An ldm-layout SDXL checkpoint (the LoRA fused into the UNet, add_embedding included)
    loads onto the SDXL base; the base draws bit for bit as before afterwards."""
    checkpoint = save_checkpoint(world["sdxl"], tmp_path / "merge.safetensors", world["plain_lora"])
    backend = DiffusersProbe({"sdxl": world["sdxl"]}, device="cpu", generation=GENERATION)
    before = backend.generate("sdxl", PROMPTS, SEEDS)
    with_lora = backend.generate("sdxl", PROMPTS, SEEDS, lora=world["plain_lora"])
    with backend.checkpoint("sdxl", checkpoint) as draw:
        merged = draw(PROMPTS, SEEDS)
    after = backend.generate("sdxl", PROMPTS, SEEDS)
    assert pm.grid_distance(before, merged) > 1.0  # the merge shows
    assert pm.grid_distance(merged, with_lora) < 0.5  # and is the LoRA's drawing
    assert [i.tobytes() for i in after] == [i.tobytes() for i in before]
