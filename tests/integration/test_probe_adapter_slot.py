"""The probe's adapter slot (detectors/probe/adapter_slot.py) on the tiny SD1, SDXL, Flux and
SD3 pipelines: a LoRA swapped into the slot draws what the same file loaded fresh draws;
smaller ranks, other alphas, fewer layers and SDXL's SGM-named kohya keys swap in place;
switching the slot off gives the base model's images bit for bit; DoRA and text-encoder
LoRAs take the logged slow path (unload, normal load)."""

# mypy: disable-error-code="no-untyped-call"
# (diffusers' model classes are untyped; the DoRA LoRA is built from its UNet)

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from detectors.probe.base import GenerationSettings
from detectors.probe.diffusers_probe import DiffusersProbe
from tests import probe_models as pm
from tests.probe_fixtures import TinySD

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]
GENERATION = GenerationSettings(
    steps=pm.STEPS, guidance_scale=1.0, size_px=pm.IMAGE_PX, batch_images=4
)
PROMPTS = ["a house", "a tree by the river", "a boat"]
SEEDS = [1, 2, 3]
SLOT_LOG = "detectors.probe.adapter_slot"


def _pixels(images) -> np.ndarray:
    return np.stack([np.asarray(im, np.int16) for im in images])


def _draw(probe: DiffusersProbe, family: str, lora: Path | None = None) -> np.ndarray:
    return _pixels(probe.generate(family, PROMPTS, SEEDS, lora=lora))


def _fresh(base: Path, family: str, lora: Path) -> np.ndarray:
    """The LoRA loaded into a new probe's empty slot (diffusers' normal load)."""
    probe = DiffusersProbe({family: base}, device="cpu", generation=GENERATION)
    images = _draw(probe, family, lora)
    assert probe.adapter_slot(family).loads == 1
    return images


def _assert_close(a: np.ndarray, b: np.ndarray) -> None:
    # uint8 pixels: float rounding moves a pixel by one step at most.
    assert np.abs(a - b).max() <= 1


def _swapped_in(probe: DiffusersProbe, family: str, lora: Path) -> np.ndarray:
    """Draw with ``lora`` and check it went into the slot in place."""
    slot = probe.adapter_slot(family)
    swaps, loads = slot.swaps, slot.loads
    images = _draw(probe, family, lora)
    assert (slot.swaps, slot.loads) == (swaps + 1, loads)
    return images


@pytest.fixture(scope="module")
def sd1_loras(tiny_sd: TinySD, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("slot-sd1")
    base = tiny_sd.base
    attention = pm.benign_lora(base, rank=4, seed=11, std=0.3)
    small = pm.benign_lora(base, rank=2, seed=12, std=0.3)
    return {
        "attention": pm.save_kohya_lora(attention, root / "attention.safetensors"),
        # rank 2 under the slot's 4, alpha 1 (scale 0.5) where the slot's layers have 1.0
        "small": pm.save_kohya_lora(small, root / "small.safetensors", alpha=1.0),
        "dora": _dora_lora(base, root / "dora.safetensors"),
        "text": _text_encoder_lora(base, attention, root / "text.safetensors"),
    }


def _dora_lora(base: Path, path: Path) -> Path:
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(13)
    unet = UNet2DConditionModel.from_pretrained(base / "unet")
    config = LoraConfig(r=4, lora_alpha=4, target_modules=list(pm.LORA_TARGETS), use_dora=True)
    unet.add_adapter(config)
    state = get_peft_model_state_dict(unet)
    # DoRA starts with lora_B at zero (no change): make it draw something.
    out = {
        k: (torch.randn_like(v) * 0.3 if "lora_B" in k else v).contiguous()
        for k, v in state.items()
    }
    return pm.save_peft_lora(out, path)


def _text_encoder_lora(base: Path, unet_state: dict[str, torch.Tensor], path: Path) -> Path:
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file
    from transformers import CLIPTextModel

    torch.manual_seed(14)
    text = CLIPTextModel.from_pretrained(base / "text_encoder")
    adapted = inject_adapter_in_model(LoraConfig(r=4, target_modules=["q_proj", "v_proj"]), text)
    tensors = {f"unet.{k}": v for k, v in unet_state.items()}
    for key, value in get_peft_model_state_dict(adapted).items():
        tensors[f"text_encoder.{key}"] = (torch.randn_like(value) * 0.3).contiguous()
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


@pytest.fixture
def sd1_probe(tiny_sd: TinySD) -> DiffusersProbe:
    """A probe whose slot holds the style LoRA (rank 4 on attention, proj_in/out, conv_out)."""
    probe = DiffusersProbe({"sd1": tiny_sd.base}, device="cpu", generation=GENERATION)
    probe.generate("sd1", PROMPTS[:1], SEEDS[:1], lora=tiny_sd.style_peft)
    assert probe.adapter_slot("sd1").loads == 1
    return probe


def test_a_swapped_lora_draws_what_a_fresh_load_draws(sd1_probe, tiny_sd, sd1_loras):
    base = _draw(sd1_probe, "sd1")
    # Fewer layers than the slot holds: proj_in/out and conv_out are switched off.
    swapped = _swapped_in(sd1_probe, "sd1", sd1_loras["attention"])
    assert np.abs(swapped - base).mean() > 1.0  # the LoRA shows
    _assert_close(swapped, _fresh(tiny_sd.base, "sd1", sd1_loras["attention"]))
    # And back to the slot's first LoRA, every layer on again.
    again = _swapped_in(sd1_probe, "sd1", tiny_sd.style_peft)
    _assert_close(again, _fresh(tiny_sd.base, "sd1", tiny_sd.style_peft))


def test_a_smaller_rank_and_other_alpha_swap_in_zero_padded(sd1_probe, tiny_sd, sd1_loras):
    swapped = _swapped_in(sd1_probe, "sd1", sd1_loras["small"])
    assert np.abs(swapped - _draw(sd1_probe, "sd1")).mean() > 1.0
    _assert_close(swapped, _fresh(tiny_sd.base, "sd1", sd1_loras["small"]))


def test_switching_the_slot_off_gives_the_base_bit_for_bit(sd1_probe, tiny_sd, sd1_loras):
    raw = DiffusersProbe({"sd1": tiny_sd.base}, device="cpu", generation=GENERATION)
    never_adapted = _draw(raw, "sd1")  # a pipeline that was never given a LoRA
    for lora in (sd1_loras["attention"], sd1_loras["small"], tiny_sd.style_kohya):
        _swapped_in(sd1_probe, "sd1", lora)
        assert np.array_equal(_draw(sd1_probe, "sd1"), never_adapted)
        assert sd1_probe.adapter_slot("sd1").is_clean()


@pytest.mark.parametrize(("name", "reason"), [("dora", "a DoRA LoRA"), ("text", "text-encoder")])
def test_dora_and_text_encoder_loras_take_the_logged_slow_path(
    sd1_probe, tiny_sd, sd1_loras, caplog, name, reason
):
    slot = sd1_probe.adapter_slot("sd1")
    caplog.set_level(logging.INFO, logger=SLOT_LOG)
    images = _draw(sd1_probe, "sd1", sd1_loras[name])
    assert (slot.swaps, slot.loads) == (0, 2)
    slow = [r.getMessage() for r in caplog.records if r.name == SLOT_LOG]
    assert len(slow) == 1 and "slow path" in slow[0] and reason in slow[0]
    assert np.abs(images - _draw(sd1_probe, "sd1")).mean() > 1.0
    _assert_close(images, _fresh(tiny_sd.base, "sd1", sd1_loras[name]))
    # A plain LoRA after the slow one: loaded afresh again for a DoRA slot, swapped else.
    _draw(sd1_probe, "sd1", sd1_loras["attention"])
    assert slot.loads == (3 if name == "dora" else 2)
    assert np.array_equal(_draw(sd1_probe, "sd1"), _fresh_base(tiny_sd.base))


def _fresh_base(base: Path) -> np.ndarray:
    return _draw(DiffusersProbe({"sd1": base}, device="cpu", generation=GENERATION), "sd1")


def test_sdxl_kohya_sgm_keys_swap_in_place(tmp_path: Path):
    from tests.probe_sdxl import build_tiny_sdxl, random_lora, save_kohya_sgm_lora

    base = build_tiny_sdxl(tmp_path / "base")
    first = pm.save_peft_lora(random_lora(base, seed=1), tmp_path / "first.safetensors")
    state = random_lora(base, seed=2)
    sgm = save_kohya_sgm_lora(state, tmp_path / "sgm.safetensors")
    diffusers_named = pm.save_kohya_lora(state, tmp_path / "kohya.safetensors")
    probe = DiffusersProbe({"sdxl": base}, device="cpu", generation=GENERATION)
    before = _draw(probe, "sdxl")
    _draw(probe, "sdxl", first)
    swapped = _swapped_in(probe, "sdxl", sgm)
    assert np.abs(swapped - before).mean() > 1.0
    _assert_close(swapped, _fresh(base, "sdxl", diffusers_named))
    assert np.array_equal(_draw(probe, "sdxl"), before)


@pytest.mark.parametrize("family", ["flux", "sd3"])
def test_transformer_families_swap_in_place(tmp_path: Path, family: str):
    if family == "flux":
        from tests import probe_flux as pf

        base = pf.build_tiny_flux(tmp_path / "base")
        first = pf.save_flux_lora(
            pf.random_flux_lora(base, seed=1), tmp_path / "a.safetensors", "peft"
        )
        second = pf.save_flux_lora(
            pf.random_flux_lora(base, seed=2), tmp_path / "b.safetensors", "kohya"
        )
    else:
        from tests import probe_sd3 as ps

        base = ps.build_tiny_sd3(tmp_path / "base")
        first = ps.save_sd3_lora(
            ps.random_sd3_lora(base, seed=1), tmp_path / "a.safetensors", "peft"
        )
        second = ps.save_sd3_lora(
            ps.random_sd3_lora(base, seed=2), tmp_path / "b.safetensors", "kohya"
        )
    probe = DiffusersProbe({family: base}, device="cpu", generation=GENERATION)
    before = _draw(probe, family)
    _draw(probe, family, first)
    swapped = _swapped_in(probe, family, second)
    assert np.abs(swapped - before).mean() > 0.5
    _assert_close(swapped, _fresh(base, family, second))
    assert np.array_equal(_draw(probe, family), before)
