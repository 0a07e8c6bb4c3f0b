from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest

from detectors.architecture import UNKNOWN, infer_architecture
from detectors.results import Architecture
from detectors.safetensors_header import parse_header
from tests.modelfiles import build_safetensors, fixture_bytes

R = 4  # LoRA rank in the synthetic files


Shapes = dict[str, tuple[int, ...]]


def arch(shapes: Shapes, metadata: Mapping[str, str] | None = None) -> Architecture:
    """Architecture of a file with these tensor shapes (all F16)."""
    data = build_safetensors({name: ("F16", shape) for name, shape in shapes.items()}, metadata)
    return infer_architecture(parse_header(data))


def kohya(
    module: str, width_in: int, width_out: int, extra: Iterable[tuple[str, tuple[int, ...]]] = ()
) -> Shapes:
    tensors: Shapes = {
        f"{module}.lora_down.weight": (R, width_in),
        f"{module}.lora_up.weight": (width_out, R),
        f"{module}.alpha": (),
    }
    tensors.update({f"{module}.{part}": shape for part, shape in extra})
    return tensors


def peft(module: str, width_in: int, width_out: int) -> Shapes:
    return {f"{module}.lora_A.weight": (R, width_in), f"{module}.lora_B.weight": (width_out, R)}


SD1_ATTN2 = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
SDXL_ATTN2 = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_v"
LEGACY_ATTN2 = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_lora"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("kohya_sd15_style_lora", Architecture("lora", "sd1", "kohya")),
        ("kohya_sdxl_lora", Architecture("lora", "sdxl", "kohya")),
        ("aitoolkit_flux_lora", Architecture("lora", "flux", "peft")),
    ],
)
def test_fixtures(name, expected):
    assert infer_architecture(parse_header(fixture_bytes(name))) == expected


CASES = {
    "sd1 kohya": (
        kohya(SD1_ATTN2, 768, 320)
        | kohya("lora_te_text_model_encoder_layers_0_mlp_fc1", 768, 3072),
        None,
        Architecture("lora", "sd1", "kohya"),
    ),
    "sd2 kohya": (
        kohya(SD1_ATTN2, 1024, 320),
        None,
        Architecture("lora", "sd2", "kohya"),
    ),
    "sdxl kohya": (
        kohya(SDXL_ATTN2, 2048, 640),
        None,
        Architecture("lora", "sdxl", "kohya"),
    ),
    "flux kohya": (
        kohya("lora_unet_double_blocks_0_img_attn_qkv", 3072, 9216)
        | kohya("lora_unet_single_blocks_37_linear1", 3072, 21504)
        | kohya("lora_unet_double_blocks_18_img_mlp_2", 12288, 3072),
        {"ss_base_model_version": "flux1", "ss_network_module": "networks.lora_flux"},
        Architecture("lora", "flux", "kohya"),
    ),
    "flux peft": (
        peft("transformer.transformer_blocks.0.attn.to_q", 3072, 3072)
        | peft("transformer.transformer_blocks.0.attn.add_k_proj", 3072, 3072)
        | peft("transformer.single_transformer_blocks.3.proj_out", 15360, 3072),
        None,
        Architecture("lora", "flux", "peft"),
    ),
    "flux comfy peft": (
        peft("diffusion_model.double_blocks.2.img_attn.qkv", 3072, 9216),
        None,
        Architecture("lora", "flux", "peft"),
    ),
    "sdxl diffusers (peft keys)": (
        peft("unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", 2048, 640)
        | peft("text_encoder.text_model.encoder.layers.0.self_attn.q_proj", 768, 768)
        | peft("text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj", 1280, 1280),
        None,
        Architecture("lora", "sdxl", "peft"),
    ),
    "sd1 legacy diffusers": (
        {f"{LEGACY_ATTN2}.down.weight": (R, 768), f"{LEGACY_ATTN2}.up.weight": (320, R)},
        None,
        Architecture("lora", "sd1", "diffusers"),
    ),
    "raw peft sd2": (
        peft(
            "base_model.model.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v", 1024, 320
        ),
        None,
        Architecture("lora", "sd2", "peft"),
    ),
    "locon by module": (
        kohya(SDXL_ATTN2, 2048, 640),
        {"ss_network_module": "lycoris.kohya", "ss_network_args": '{"algo": "lora"}'},
        Architecture("lycoris", "sdxl", "locon"),
    ),
    "locon by algo": (
        kohya(SD1_ATTN2, 768, 320),
        {
            "ss_network_module": "networks.lora",
            "ss_network_args": '{"algo": "locon", "conv_dim": "8"}',
        },
        Architecture("lycoris", "sd1", "locon"),
    ),
    "locon tucker": (
        kohya(
            "lora_unet_down_blocks_0_resnets_0_conv1", 320, 320, [("lora_mid.weight", (R, R, 3, 3))]
        )
        | kohya(SD1_ATTN2, 768, 320),
        None,
        Architecture("lycoris", "sd1", "locon"),
    ),
    "kohya conv lora is not lycoris": (
        kohya(SD1_ATTN2, 768, 320),
        {"ss_network_module": "networks.lora", "ss_network_args": '{"conv_dim": "8"}'},
        Architecture("lora", "sd1", "kohya"),
    ),
    "loha": (
        {
            f"{SD1_ATTN2}.hada_w1_a": (320, R),
            f"{SD1_ATTN2}.hada_w1_b": (R, 768),
            f"{SD1_ATTN2}.hada_w2_a": (320, R),
            f"{SD1_ATTN2}.hada_w2_b": (R, 768),
            f"{SD1_ATTN2}.alpha": (),
        },
        None,
        Architecture("lycoris", "sd1", "loha"),
    ),
    "lokr": (
        {
            f"{SDXL_ATTN2}.lokr_w1": (16, 8),
            f"{SDXL_ATTN2}.lokr_w2_a": (80, R),
            f"{SDXL_ATTN2}.lokr_w2_b": (R, 256),
            f"{SDXL_ATTN2}.alpha": (),
        },
        None,
        Architecture("lycoris", "sdxl", "lokr"),
    ),
    "dora": (
        kohya(SD1_ATTN2, 768, 320, [("dora_scale", (1, 768))]),
        None,
        Architecture("lora", "sd1", "dora"),
    ),
    "sd1 ldm checkpoint": (
        {
            "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (
                320,
                768,
            ),
            "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_q.weight": (
                320,
                320,
            ),
            "model.diffusion_model.input_blocks.0.0.bias": (320,),
            "first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3),
            "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (
                49408,
                768,
            ),
        },
        None,
        Architecture("checkpoint", "sd1", "ldm"),
    ),
    "sdxl ldm checkpoint": (
        {
            "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (
                640,
                2048,
            ),
            "conditioner.embedders.1.model.ln_final.weight": (1280,),
        },
        None,
        Architecture("checkpoint", "sdxl", "ldm"),
    ),
    "sd2 diffusers unet": (
        {
            "conv_in.weight": (320, 4, 3, 3),
            "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v.weight": (320, 1024),
        },
        None,
        Architecture("checkpoint", "sd2", "diffusers"),
    ),
    "flux bfl checkpoint": (
        {
            "double_blocks.0.img_attn.qkv.weight": (9216, 3072),
            "double_blocks.0.img_attn.norm.query_norm.scale": (128,),
            "double_blocks.0.img_mlp.2.weight": (3072, 12288),
            "single_blocks.0.linear2.weight": (3072, 15360),
            "img_in.weight": (3072, 64),
        },
        None,
        Architecture("checkpoint", "flux", "bfl"),
    ),
    "flux diffusers transformer": (
        {
            "transformer_blocks.0.attn.add_q_proj.weight": (3072, 3072),
            "single_transformer_blocks.0.proj_mlp.weight": (12288, 3072),
        },
        None,
        Architecture("checkpoint", "flux", "diffusers"),
    ),
    "sd1 embedding": (
        {"emb_params": (4, 768)},
        None,
        Architecture("embedding", "sd1", "textual_inversion"),
    ),
    "sd2 embedding": (
        {"string_to_param.*": (2, 1024)},
        None,
        Architecture("embedding", "sd2", "textual_inversion"),
    ),
    "sdxl embedding": (
        {"clip_l": (4, 768), "clip_g": (4, 1280)},
        None,
        Architecture("embedding", "sdxl", "textual_inversion"),
    ),
    "sd3 embedding is not guessed": (
        {"clip_l": (4, 768), "clip_g": (4, 1280), "t5": (4, 4096)},
        None,
        Architecture("embedding", "unknown", "textual_inversion"),
    ),
    "bert is unknown": (
        {
            "encoder.layer.0.attention.self.query.weight": (768, 768),
            "embeddings.word_embeddings.weight": (30522, 768),
        },
        None,
        UNKNOWN,
    ),
    "vae is unknown": (
        {"encoder.down_blocks.0.resnets.0.conv1.weight": (128, 128, 3, 3)},
        None,
        UNKNOWN,
    ),
    "sd3 kohya (sd-scripts)": (
        kohya("lora_unet_joint_blocks_0_x_block_attn_qkv", 1536, 4608)
        | kohya("lora_unet_joint_blocks_23_context_block_mlp_fc2", 6144, 1536)
        | kohya("lora_unet_joint_blocks_5_x_block_adaLN_modulation_1", 1536, 9216)
        | kohya("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768),
        {"ss_base_model_version": "sd3_m", "ss_network_module": "networks.lora_sd3"},
        Architecture("lora", "sd3", "kohya"),
    ),
    "sd3.5 large kohya": (
        kohya("lora_unet_joint_blocks_37_x_block_attn_proj", 2432, 2432)
        | kohya("lora_unet_joint_blocks_0_x_block_mlp_fc2", 9728, 2432),
        None,
        Architecture("lora", "sd3", "kohya"),
    ),
    "sd3 peft (diffusers, ai-toolkit)": (
        peft("transformer.transformer_blocks.0.attn.to_q", 1536, 1536)
        | peft("transformer.transformer_blocks.0.attn.add_k_proj", 1536, 1536)
        | peft("transformer.transformer_blocks.23.ff_context.net.2", 6144, 1536),
        {"ss_base_model_version": "sd_3"},
        Architecture("lora", "sd3", "peft"),
    ),
    "sd3.5 large peft": (
        peft("transformer.transformer_blocks.37.attn.to_out.0", 2432, 2432)
        | peft("transformer.transformer_blocks.3.ff.net.2", 9728, 2432)
        | peft("transformer.transformer_blocks.3.norm1_context.linear", 2432, 14592),
        None,
        Architecture("lora", "sd3", "peft"),
    ),
    "sd3.5 medium dual attention": (
        peft("transformer.transformer_blocks.12.attn2.to_q", 1536, 1536)
        | peft("transformer.transformer_blocks.12.attn.add_q_proj", 1536, 1536),
        None,
        Architecture("lora", "sd3", "peft"),
    ),
    "sd3 comfy peft": (
        peft("diffusion_model.joint_blocks.3.x_block.attn.qkv", 2432, 7296)
        | peft("diffusion_model.joint_blocks.3.context_block.mlp.fc2", 9728, 2432),
        None,
        Architecture("lora", "sd3", "peft"),
    ),
    "sd3 diffusers names kohya-flattened (OneTrainer)": (
        kohya("lora_transformer_transformer_blocks_0_attn_to_q", 1536, 1536)
        | kohya("lora_transformer_transformer_blocks_0_attn_add_q_proj", 1536, 1536),
        None,
        Architecture("lora", "sd3", "kohya"),
    ),
    "sd3-wide joint blocks past sd3's count": (
        kohya("lora_unet_joint_blocks_24_x_block_attn_qkv", 1536, 4608),
        {"ss_base_model_version": "sd3"},
        Architecture("lora", "unknown", "kohya"),
    ),
    "joint blocks of another width": (
        kohya("lora_unet_joint_blocks_0_x_block_attn_qkv", 3072, 9216),
        {"ss_base_model_version": "sd3"},
        Architecture("lora", "unknown", "kohya"),
    ),
    "sd3 widths mixed": (
        peft("transformer.transformer_blocks.0.attn.add_q_proj", 1536, 1536)
        | peft("transformer.transformer_blocks.0.attn.to_q", 2432, 2432),
        None,
        Architecture("lora", "unknown", "peft"),
    ),
    "sd3 by its kohya metadata": (
        kohya("lora_unet_context_embedder", 4096, 1536),
        {"ss_base_model_version": "sd3_m"},
        Architecture("lora", "sd3", "kohya"),
    ),
    "sd3 by its modelspec": (
        kohya("lora_unet_context_embedder", 4096, 1536),
        {"modelspec.architecture": "stable-diffusion-3-medium/lora"},
        Architecture("lora", "sd3", "kohya"),
    ),
    "sd3.5 by a v3 modelspec": (
        kohya("lora_unet_context_embedder", 4096, 2432),
        {"modelspec.architecture": "stable-diffusion-v3-5-large/lora"},
        Architecture("lora", "sd3", "kohya"),
    ),
    "sd3 ldm checkpoint": (
        {
            "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": (4608, 1536),
            "model.diffusion_model.joint_blocks.23.context_block.mlp.fc2.weight": (1536, 6144),
            "model.diffusion_model.x_embedder.proj.weight": (1536, 16, 2, 2),
        },
        None,
        Architecture("checkpoint", "sd3", "ldm"),
    ),
    "attn2 of another width": (
        kohya(SD1_ATTN2, 4096, 320),
        {"ss_base_model_version": "sd_v1"},
        Architecture("lora", "unknown", "kohya"),
    ),
    "conflicting context widths": (
        kohya(SD1_ATTN2, 768, 320) | kohya(SDXL_ATTN2, 2048, 640),
        None,
        Architecture("lora", "unknown", "kohya"),
    ),
    "hunyuan-sized double blocks": (
        kohya("lora_unet_double_blocks_19_img_attn_qkv", 3072, 9216),
        None,
        Architecture("lora", "unknown", "kohya"),
    ),
    "flux shapes but hunyuan metadata": (
        kohya("lora_unet_double_blocks_0_img_attn_qkv", 3072, 9216),
        {"ss_base_model_version": "hunyuan_video"},
        Architecture("lora", "unknown", "kohya"),
    ),
    "plain transformer_blocks (cogvideox-like)": (
        peft("transformer.transformer_blocks.3.attn1.to_q", 3072, 3072),
        None,
        Architecture("lora", "unknown", "peft"),
    ),
    "pixart-width joint blocks": (
        peft("transformer.transformer_blocks.3.attn.add_q_proj", 1152, 1152),
        None,
        Architecture("lora", "unknown", "peft"),
    ),
    "sdxl by its two text encoders": (
        kohya("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768)
        | kohya("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 1280, 1280),
        None,
        Architecture("lora", "sdxl", "kohya"),
    ),
    "sd2 text encoder only": (
        kohya("lora_te_text_model_encoder_layers_0_self_attn_q_proj", 1024, 1024),
        None,
        Architecture("lora", "sd2", "kohya"),
    ),
    "metadata breaks the tie": (
        kohya("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", 640, 640),
        {"ss_base_model_version": "sdxl_base_v1-0"},
        Architecture("lora", "sdxl", "kohya"),
    ),
    "modelspec breaks the tie": (
        kohya("lora_unet_down_blocks_0_attentions_0_proj_in", 320, 320),
        {"modelspec.architecture": "stable-diffusion-v1/lora"},
        Architecture("lora", "sd1", "kohya"),
    ),
    "metadata never overrides widths": (
        kohya(SD1_ATTN2, 768, 320),
        {"ss_base_model_version": "sdxl_base_v1-0", "modelspec.architecture": "flux-1-dev/lora"},
        Architecture("lora", "sd1", "kohya"),
    ),
    "disagreeing metadata is no tie-breaker": (
        kohya("lora_unet_down_blocks_0_attentions_0_proj_in", 320, 320),
        {"ss_base_model_version": "sd_v1", "modelspec.architecture": "stable-diffusion-v2/lora"},
        Architecture("lora", "unknown", "kohya"),
    ),
    "no widths, no metadata": (
        kohya("lora_unet_down_blocks_0_attentions_0_proj_in", 320, 320),
        None,
        Architecture("lora", "unknown", "kohya"),
    ),
    "an unknown adapter is unknown": (
        {"lora_unet_x.oft_blocks": (4, 8, 8), "lora_unet_x.alpha": ()},
        None,
        UNKNOWN,
    ),
    "empty file": ({}, None, UNKNOWN),
}


@pytest.mark.parametrize(("shapes", "metadata", "expected"), CASES.values(), ids=CASES.keys())
def test_synthetic_key_sets(shapes, metadata, expected):
    assert arch(shapes, metadata) == expected


SILENT = kohya("lora_unet_context_embedder", 4096, 1536)  # no block: the widths say nothing


@pytest.mark.parametrize(
    ("hub", "shapes", "metadata", "family"),
    [
        ("SD 3.5 Large", SILENT, None, "sd3"),
        ("SD 3.5 Medium", SILENT, None, "sd3"),
        ("SD 3.5", SILENT, None, "sd3"),
        ("SD 3", SILENT, None, "sd3"),
        ("stabilityai/stable-diffusion-3.5-large", SILENT, None, "sd3"),
        ("SDXL 1.0", SILENT, None, "unknown"),  # only SD3's names are read from the hub
        (None, SILENT, None, "unknown"),
        # A tie-breaker like metadata: it never overrides widths, and a disagreement is no tie.
        ("SD 3.5 Large", kohya(SD1_ATTN2, 768, 320), None, "sd1"),
        ("SD 3.5", SILENT, {"ss_base_model_version": "sdxl_base_v1-0"}, "unknown"),
    ],
)
def test_the_hubs_base_model_breaks_a_tie(hub, shapes, metadata, family):
    data = build_safetensors({name: ("F16", shape) for name, shape in shapes.items()}, metadata)
    assert infer_architecture(parse_header(data), hub).base_family == family
