"""The probe on a Flux.1-shaped pipeline (a transformer denoiser, CLIP and T5 encoders, flow
matching): it loads from a local folder, applies LoRAs in PEFT, ai-toolkit and kohya layouts
through the pipeline's own loader and is exactly back to base afterwards; a file none of
whose keys fit is a probe error, never a silent draw of the base model; the probe stage flags a
Flux style LoRA (no name in it) and leaves a benign one clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.probe.diffusers_probe import DiffusersProbe
from tests import probe_flux as pf
from tests import probe_world as pw

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]
LAYOUTS = ("peft", "ai-toolkit", "kohya")


@pytest.fixture(scope="module")
def flux(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    return pf.build_tiny_flux(tmp_path_factory.mktemp("flux") / "base")


@pytest.fixture(scope="module")
def probe(flux: Path) -> DiffusersProbe:
    return DiffusersProbe({"flux": flux}, device="cpu", generation=pw.GENERATION)


def test_flux_loras_in_every_layout_change_images_and_unload_bit_for_bit(flux, probe, tmp_path):
    state = pf.random_flux_lora(flux, seed=5)
    pw.check_layouts_draw_alike_and_unload(
        probe, "flux", state, pf.save_flux_lora, LAYOUTS, tmp_path
    )


def test_a_lora_whose_keys_fit_nothing_is_a_probe_error(flux, probe, tmp_path):
    pw.check_keys_that_fit_nothing_are_errors(probe, "flux", tmp_path)


@pytest.fixture(scope="module")
def world(flux: Path, tmp_path_factory: pytest.TempPathFactory):
    with pw.probe_world(flux, "flux", tmp_path_factory.mktemp("flux-probe")) as world:
        yield world


def test_a_flux_style_lora_is_a_probe_finding(world, flux, tmp_path):
    # Trained toward "tide" (a distinct palette): its lift is 0.52 against a threshold of 0.49,
    # the other artists' below zero; CPU float32 draws repeat bit for bit.
    style = pf.train_flux_lora(flux, "tide")
    path = pf.save_flux_lora(style, tmp_path / "style.safetensors", "peft")
    pw.assert_flagged_for(world.probe_unnamed(path), "Tide Marsh")


def test_a_benign_flux_lora_is_clean(world, flux, tmp_path):
    benign = pf.benign_flux_lora(flux, seed=1)
    path = pf.save_flux_lora(benign, tmp_path / "benign.safetensors", "kohya")
    pw.assert_clean(world.probe_unnamed(path))
