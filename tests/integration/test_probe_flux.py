"""The probe on a Flux.1-shaped pipeline (a transformer denoiser, CLIP and T5 encoders, flow
matching): it loads from a local folder, applies LoRAs in PEFT, ai-toolkit and kohya layouts
through the pipeline's own loader and is exactly back to base afterwards; a file none of
whose keys fit is a probe error, never a silent draw of the base model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from detectors.errors import ProbeError
from detectors.probe.base import GenerationSettings
from detectors.probe.diffusers_probe import DiffusersProbe
from tests import probe_flux as pf
from tests import probe_models as pm

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]
GENERATION = GenerationSettings(
    steps=pm.STEPS, guidance_scale=1.0, size_px=pm.IMAGE_PX, batch_images=4
)
PROMPTS = ["a house", "a tree by the river", "a boat"]
SEEDS = [1, 2, 3]
LAYOUTS = ("peft", "ai-toolkit", "kohya")


@pytest.fixture(scope="module")
def flux(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    return pf.build_tiny_flux(tmp_path_factory.mktemp("flux") / "base")


@pytest.fixture(scope="module")
def probe(flux: Path) -> DiffusersProbe:
    return DiffusersProbe({"flux": flux}, device="cpu", generation=GENERATION)


def test_flux_loras_in_every_layout_change_images_and_unload_bit_for_bit(flux, probe, tmp_path):
    state = pf.random_flux_lora(flux, seed=5)
    files = {k: pf.save_flux_lora(state, tmp_path / f"{k}.safetensors", k) for k in LAYOUTS}
    before = probe.generate("flux", PROMPTS, SEEDS)
    assert [im.size for im in before] == [(pm.IMAGE_PX, pm.IMAGE_PX)] * 3
    drawn = {k: probe.generate("flux", PROMPTS, SEEDS, lora=f) for k, f in files.items()}
    after = probe.generate("flux", PROMPTS, SEEDS)
    assert pm.grid_distance(before, drawn["peft"]) > 1.0  # the LoRA shows
    # The same weights in each key layout draw the same images.
    for layout in ("ai-toolkit", "kohya"):
        assert pm.grid_distance(drawn["peft"], drawn[layout]) < 0.5, layout
    assert [im.tobytes() for im in after] == [im.tobytes() for im in before]
    # One transformer evaluation per image per step (no guidance halves at scale 1).
    assert probe.unet_evaluations == 5 * len(PROMPTS) * pm.STEPS


def test_a_lora_whose_keys_fit_nothing_is_a_probe_error(flux, probe, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "stranger.safetensors"
    stranger = {"lora_A": torch.ones(4, 8), "lora_B": torch.ones(8, 4)}
    save_file({f"transformer.no_such_block.{k}.weight": v for k, v in stranger.items()}, str(path))

    before = probe.generate("flux", PROMPTS[:1], SEEDS[:1])
    with pytest.raises(ProbeError, match="cannot apply the LoRA stranger"):
        probe.generate("flux", PROMPTS[:1], SEEDS[:1], lora=path)
    # An SD1 UNet LoRA: the Flux loader skips every key with only a warning.
    unet = tmp_path / "unet.safetensors"
    save_file(
        {f"unet.down_blocks.0.attn.to_q.{k}.weight": v for k, v in stranger.items()}, str(unet)
    )
    with pytest.raises(ProbeError, match="none of its keys fit the base model"):
        probe.generate("flux", PROMPTS[:1], SEEDS[:1], lora=unet)
    assert probe.generate("flux", PROMPTS[:1], SEEDS[:1])[0].tobytes() == before[0].tobytes()
