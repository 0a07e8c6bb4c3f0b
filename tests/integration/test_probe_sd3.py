"""The probe on an SD3.5-shaped pipeline (an MMDiT transformer with joint and dual attention,
two CLIP encoders and T5, flow matching): it loads from a local folder, applies LoRAs in
PEFT/diffusers and ai-toolkit layouts through the pipeline's own loader, and kohya
sd-scripts' (``lora_unet_joint_blocks_*``, fused qkv) and OneTrainer's
(``lora_transformer_*``) converted to it first, and is exactly back to base afterwards; a
file none of whose keys fit, or a kohya key naming no SD3 module, is a probe error, never a
silent draw of the base model; the probe stage flags an SD3 style LoRA (no name in it) and
leaves a benign one clean."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from detectors.errors import ProbeError
from detectors.probe.diffusers_probe import DiffusersProbe
from tests import probe_models as pm
from tests import probe_sd3 as ps
from tests import probe_world as pw
from tests.probe_world import PROMPTS, SEEDS

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]
LAYOUTS = ("peft", "ai-toolkit", "kohya", "onetrainer")


@pytest.fixture(scope="module")
def sd3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return ps.build_tiny_sd3(tmp_path_factory.mktemp("sd3") / "base")


@pytest.fixture(scope="module")
def probe(sd3: Path) -> DiffusersProbe:
    return DiffusersProbe({"sd3": sd3}, device="cpu", generation=pw.GENERATION)


def test_sd3_loras_change_images_and_unload_bit_for_bit(sd3, probe, tmp_path):
    state = ps.random_sd3_lora(sd3, seed=5)
    pw.check_layouts_draw_alike_and_unload(probe, "sd3", state, ps.save_sd3_lora, LAYOUTS, tmp_path)


def test_a_lora_whose_keys_fit_nothing_is_a_probe_error(sd3, probe, tmp_path):
    pw.check_keys_that_fit_nothing_are_errors(probe, "sd3", tmp_path)


@pytest.fixture(scope="module")
def world(sd3: Path, tmp_path_factory: pytest.TempPathFactory):
    with pw.probe_world(sd3, "sd3", tmp_path_factory.mktemp("sd3-probe")) as world:
        yield world


def test_an_sd3_style_lora_is_a_probe_finding(world, sd3, tmp_path):
    # Trained toward "tide" (a distinct palette): its lift is 0.73 against a threshold of 0.49,
    # the other artists' below zero; CPU float32 draws repeat bit for bit. (The fit depends
    # on the LoRA's random start: seeds 1 and 2 reach 0.32 and 0.48 in these 30 steps.)
    style = ps.train_sd3_lora(sd3, "tide")
    path = ps.save_sd3_lora(style, tmp_path / "style.safetensors", "ai-toolkit")
    pw.assert_flagged_for(world.probe_unnamed(path), "Tide Marsh")


def test_a_benign_sd3_lora_is_clean(world, sd3, tmp_path):
    benign = ps.benign_sd3_lora(sd3, seed=1)
    path = ps.save_sd3_lora(benign, tmp_path / "benign.safetensors", "peft")
    pw.assert_clean(world.probe_unnamed(path))


def test_kohya_sd3_keys_are_converted_qkv_split_and_modulations_swapped(sd3, probe, tmp_path):
    from safetensors.torch import save_file

    peft, kohya = ps.fused_sd3_lora(sd3, seed=7)
    # The CLIP encoders' LoRAs as kohya names them (lora_te1_, lora_te2_), and T5's
    # (lora_te3_), which diffusers' SD3 loader cannot take: dropped with a warning.
    generator = torch.Generator().manual_seed(3)
    for te, prefix in (("text_encoder", "lora_te1"), ("text_encoder_2", "lora_te2")):
        module = "text_model.encoder.layers.1.self_attn.q_proj"
        a, b = (torch.randn(s, generator=generator) for s in ((4, 32), (32, 4)))
        peft |= {f"{te}.{module}.lora_A.weight": a, f"{te}.{module}.lora_B.weight": b}
        flat = f"{prefix}_{module.replace('.', '_')}"
        kohya |= {f"{flat}.lora_down.weight": a.clone(), f"{flat}.lora_up.weight": b.clone()}
    t5 = "lora_te3_encoder_block_0_layer_0_SelfAttention_q"
    kohya |= {
        f"{t5}.lora_down.weight": torch.ones(4, 64),
        f"{t5}.lora_up.weight": torch.ones(64, 4),
    }
    assert any(k.endswith("x_block_attn_qkv.lora_up.weight") for k in kohya)
    assert any(k.startswith("lora_unet_final_layer_adaLN") for k in kohya)
    save_file(peft, str(tmp_path / "peft.safetensors"))
    save_file(kohya, str(tmp_path / "kohya.safetensors"))
    before = probe.generate("sd3", PROMPTS, SEEDS)
    drawn = probe.generate("sd3", PROMPTS, SEEDS, lora=tmp_path / "peft.safetensors")
    converted = probe.generate("sd3", PROMPTS, SEEDS, lora=tmp_path / "kohya.safetensors")
    assert pm.grid_distance(before, drawn) > 1.0
    assert pm.grid_distance(drawn, converted) < 0.5
    assert probe.generate("sd3", PROMPTS, SEEDS)[0].tobytes() == before[0].tobytes()


def test_a_kohya_key_naming_no_sd3_module_is_a_probe_error(sd3, probe, tmp_path):
    from safetensors.torch import save_file

    state = ps.random_sd3_lora(sd3, seed=5)
    path = ps.save_sd3_lora(state, tmp_path / "sdxl-named.safetensors", "kohya")
    tensors = load_file(str(path))
    down = next(v for k, v in tensors.items() if k.endswith("lora_down.weight"))
    name = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"
    tensors |= {
        f"{name}.lora_down.weight": down.clone(),
        f"{name}.lora_up.weight": down.T.contiguous(),
    }
    save_file(tensors, str(path))
    with pytest.raises(ProbeError, match=f"no SD3 module is named by the LoRA key {name}"):
        probe.generate("sd3", PROMPTS[:1], SEEDS[:1], lora=path)


def test_a_full_sd3_checkpoint_is_a_probe_error_not_a_crash(sd3, probe, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "finetune.safetensors"
    save_file(
        {"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": torch.ones(48, 16)},
        str(path),
    )
    with (
        pytest.raises(ProbeError, match="full sd3 checkpoints are not probed"),
        probe.checkpoint("sd3", path),
    ):
        pass
