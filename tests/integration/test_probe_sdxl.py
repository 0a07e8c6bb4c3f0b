"""The probe on an SDXL-family pipeline (two text encoders, size/crop conditioning): it
loads from a local folder, applies LoRAs in PEFT and kohya key formats through diffusers'
loaders, and is exactly back to base afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.errors import ProbeError
from detectors.probe.base import GenerationSettings
from detectors.probe.diffusers_probe import DiffusersProbe
from tests import probe_models as pm
from tests.probe_sdxl import build_tiny_sdxl, random_lora

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]
GENERATION = GenerationSettings(
    steps=pm.STEPS, guidance_scale=1.0, size_px=pm.IMAGE_PX, batch_images=4
)
PROMPTS = ["a house", "a tree by the river", "a boat"]
SEEDS = [1, 2, 3]


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("sdxl")
    base = build_tiny_sdxl(root / "base")
    state = random_lora(base, seed=5)
    peft = pm.save_peft_lora(state, root / "peft.safetensors")
    kohya = pm.save_kohya_lora(state, root / "kohya.safetensors")
    return base, peft, kohya


def test_sdxl_lora_changes_images_and_unloads_bit_for_bit(sdxl):
    base, peft, kohya = sdxl
    probe = DiffusersProbe({"sdxl": base}, device="cpu", generation=GENERATION)
    before = probe.generate("sdxl", PROMPTS, SEEDS)
    assert [im.size for im in before] == [(pm.IMAGE_PX, pm.IMAGE_PX)] * 3
    with_peft = probe.generate("sdxl", PROMPTS, SEEDS, lora=peft)
    with_kohya = probe.generate("sdxl", PROMPTS, SEEDS, lora=kohya)
    after = probe.generate("sdxl", PROMPTS, SEEDS)
    assert pm.grid_distance(before, with_peft) > 1.0  # the LoRA shows
    # The same weights in either key format draw the same images.
    assert pm.grid_distance(with_peft, with_kohya) < 0.5
    assert [im.tobytes() for im in after] == [im.tobytes() for im in before]
    assert probe.unet_evaluations == 4 * len(PROMPTS) * pm.STEPS


def test_an_sd1_lora_on_the_sdxl_base_is_a_probe_error(sdxl, tiny_sd):
    base, _, _ = sdxl
    probe = DiffusersProbe({"sdxl": base}, device="cpu", generation=GENERATION)
    before = probe.generate("sdxl", PROMPTS[:1], SEEDS[:1])
    with pytest.raises(ProbeError, match="cannot apply the LoRA"):
        probe.generate("sdxl", PROMPTS[:1], SEEDS[:1], lora=tiny_sd.style_peft)
    assert probe.generate("sdxl", PROMPTS[:1], SEEDS[:1])[0].tobytes() == before[0].tobytes()
