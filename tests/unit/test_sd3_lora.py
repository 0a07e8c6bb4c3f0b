"""kohya-style SD3 LoRA keys in diffusers' names: the fused qkv split, alpha folded in, the
swapped modulations, T5's keys dropped, and a key naming no SD3 module refused."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest
import torch

from detectors.probe.sd3_lora import is_kohya_sd3, kohya_sd3_as_diffusers

MODULES = {
    "transformer": ["transformer_blocks.0.attn.to_q", "transformer_blocks.0.ff.net.0.proj"],
    "text_encoder": ["text_model.encoder.layers.0.self_attn.q_proj"],
    "text_encoder_2": ["text_model.encoder.layers.0.mlp.fc1"],
}


def pair(
    name: str, down: torch.Tensor, up: torch.Tensor, alpha: float | None = None
) -> dict[str, torch.Tensor]:
    out = {f"{name}.lora_down.weight": down, f"{name}.lora_up.weight": up}
    if alpha is not None:
        out[f"{name}.alpha"] = torch.tensor(alpha)
    return out


def convert(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return kohya_sd3_as_diffusers(state, num_layers=2, modules=MODULES)


def delta(state: Mapping[str, torch.Tensor], module: str) -> torch.Tensor:
    product: torch.Tensor = state[f"{module}.lora_B.weight"] @ state[f"{module}.lora_A.weight"]
    return product


def test_a_fused_qkv_is_split_with_alpha_folded_into_the_up_matrix():
    down, up = torch.randn(4, 8), torch.randn(24, 4)
    out = convert(pair("lora_unet_joint_blocks_0_x_block_attn_qkv", down, up, alpha=2.0))
    scaled = up * 2.0 / 4
    for i, letter in enumerate("qkv"):
        module = f"transformer.transformer_blocks.0.attn.to_{letter}"
        assert torch.equal(out[f"{module}.lora_A.weight"], down)
        assert torch.allclose(delta(out, module), scaled[8 * i : 8 * (i + 1)] @ down)


def test_the_context_streams_qkv_maps_onto_the_added_projections():
    out = convert(
        pair("lora_unet_joint_blocks_1_context_block_attn_qkv", torch.ones(2, 8), torch.ones(24, 2))
    )
    assert sorted(k.removesuffix(".lora_A.weight") for k in out if k.endswith("A.weight")) == [
        f"transformer.transformer_blocks.1.attn.add_{c}_proj" for c in "kqv"
    ]


@pytest.mark.parametrize(
    ("name", "module", "swapped"),
    [
        ("lora_unet_final_layer_adaLN_modulation_1", "norm_out.linear", True),
        (
            "lora_unet_joint_blocks_1_context_block_adaLN_modulation_1",
            "transformer_blocks.1.norm1_context.linear",
            True,
        ),
        (
            "lora_unet_joint_blocks_0_context_block_adaLN_modulation_1",
            "transformer_blocks.0.norm1_context.linear",
            False,
        ),
        (
            "lora_unet_joint_blocks_1_x_block_adaLN_modulation_1",
            "transformer_blocks.1.norm1.linear",
            False,
        ),
    ],
)
def test_modulations_swap_shift_and_scale_only_where_diffusers_does(name, module, swapped):
    up = torch.arange(8.0).view(8, 1)
    out = convert(pair(name, torch.ones(1, 8), up))
    got = out[f"transformer.{module}.lora_B.weight"].flatten().tolist()
    assert got == ([4.0, 5, 6, 7, 0, 1, 2, 3] if swapped else list(range(8)))


def test_flattened_diffusers_and_text_encoder_names_find_their_modules(caplog):
    state = {
        **pair(
            "lora_transformer_transformer_blocks_0_ff_net_0_proj",
            torch.ones(2, 8),
            torch.ones(8, 2),
        ),
        **pair(
            "lora_te1_text_model_encoder_layers_0_self_attn_q_proj",
            torch.ones(2, 8),
            torch.ones(8, 2),
        ),
        **pair("lora_te2_text_model_encoder_layers_0_mlp_fc1", torch.ones(2, 8), torch.ones(8, 2)),
        **pair(
            "lora_te3_encoder_block_0_layer_0_SelfAttention_q", torch.ones(2, 8), torch.ones(8, 2)
        ),
        "transformer.transformer_blocks.0.attn.to_q.lora_A.weight": torch.ones(2, 8),
    }
    assert is_kohya_sd3(state)
    with caplog.at_level(logging.WARNING):
        out = convert(state)
    assert sorted(k.removesuffix(".lora_A.weight") for k in out if k.endswith("lora_A.weight")) == [
        "text_encoder.text_model.encoder.layers.0.self_attn.q_proj",
        "text_encoder_2.text_model.encoder.layers.0.mlp.fc1",
        "transformer.transformer_blocks.0.attn.to_q",  # a PEFT key passes as it is
        "transformer.transformer_blocks.0.ff.net.0.proj",
    ]
    assert "T5 encoder" in caplog.text


@pytest.mark.parametrize(
    ("state", "error"),
    [
        (
            pair("lora_unet_input_blocks_4_1_proj_in", torch.ones(2, 8), torch.ones(8, 2)),
            "no SD3 module",
        ),
        (
            pair("lora_unet_joint_blocks_2_x_block_attn_proj", torch.ones(2, 8), torch.ones(8, 2)),
            "no SD3 module",
        ),
        (
            pair("lora_transformer_no_such_block", torch.ones(2, 8), torch.ones(8, 2)),
            "no SD3 module",
        ),
        (
            {"lora_unet_context_embedder.lora_down.weight": torch.ones(2, 8)},
            "no lora_down/lora_up pair",
        ),
        (
            pair("lora_unet_joint_blocks_0_x_block_attn_qkv", torch.ones(2, 8), torch.ones(25, 2)),
            "three equal parts",
        ),
    ],
    ids=["sdxl name", "past the last block", "unknown module", "half a pair", "uneven qkv"],
)
def test_what_names_no_sd3_module_is_refused(state, error):
    with pytest.raises(ValueError, match=error):
        convert(state)


def test_peft_files_are_not_kohya():
    assert not is_kohya_sd3(
        {"transformer.transformer_blocks.0.attn.to_q.lora_A.weight": torch.ones(1)}
    )
