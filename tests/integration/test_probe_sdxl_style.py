"""The probe stage on the tiny SDXL: a style LoRA with no name in it is a probe finding for
its artist, a benign LoRA is clean (issue #21's end-to-end test for the sdxl family). The
tiny SDXL here has SDXL's text widths (768 + 1280: 2048-wide cross-attention), so screening
reads the family "sdxl" from each LoRA's own widths."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests import probe_models as pm
from tests import probe_sdxl as px
from tests import probe_world as pw

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return px.build_tiny_sdxl(tmp_path_factory.mktemp("sdxl") / "base", text_widths=(768, 1280))


@pytest.fixture(scope="module")
def world(sdxl: Path, tmp_path_factory: pytest.TempPathFactory):
    with pw.probe_world(sdxl, "sdxl", tmp_path_factory.mktemp("sdxl-probe")) as world:
        yield world


def test_an_sdxl_style_lora_is_a_probe_finding(world, sdxl, tmp_path):
    # Trained toward "tide" (60 steps at lr 2e-2, rank 16, 15 rotating prompts encoded once,
    # through the pipeline's own 2-step sampler): its detection is 0.86 against a threshold
    # of 0.49, the other artists' below zero; CPU float32 draws repeat bit for bit. LoRA
    # seeds 1 and 2 reach 0.92 and 0.86. On 32-wide text encoders the same recipe gave
    # 0.95, 0.91, 0.96 for seeds 0, 1, 2
    # (30 steps at lr 5e-2, the SD3 recipe, left tide below zero; 60 at 5e-2 gave 0.78).
    style = px.train_sdxl_lora(sdxl, "tide")
    path = pm.save_peft_lora(style, tmp_path / "style.safetensors", rank=16)
    pw.assert_flagged_for(world.probe_unnamed(path, family_from_file=True), "Tide Marsh")


def test_a_benign_sdxl_lora_is_clean(world, sdxl, tmp_path):
    benign = pm.benign_lora(sdxl, seed=1)
    path = pm.save_peft_lora(benign, tmp_path / "benign.safetensors")
    pw.assert_clean(world.probe_unnamed(path, family_from_file=True))
