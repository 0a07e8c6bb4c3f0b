"""A tiny SDXL-shaped pipeline for the probe tests: two text encoders (the second with a
projection, whose pooled output and the size/crop ids feed the UNet's ``text_time``
embedding), a UNet a few channels wide, the tiny VAE and tokenizer of tests/probe_models.py.
Built with ``save_pretrained`` so the probe loads it through the production path.
"""

# mypy: disable-error-code="no-untyped-call"
# (diffusers' classes are untyped; this module only builds test models)
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tests import probe_models as pm

TIME_EMBED = 8  # per size/crop id; SDXL passes six of them


def build_tiny_sdxl(
    folder: Path, seed: int = 0, text_widths: tuple[int, int] = (pm.TEXT_WIDTH, pm.TEXT_WIDTH)
) -> Path:
    """Write the tiny SDXL pipeline to ``folder`` and return it. ``text_widths`` (the two
    encoders' hidden sizes) of (768, 1280) give SDXL's 2048-wide cross-attention."""
    from diffusers import DDIMScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    base = pm.build_tiny_sd(folder / "_sd1", seed=seed)  # its VAE, tokenizer and scheduler
    torch.manual_seed(seed)
    tokenizer = CLIPTokenizer.from_pretrained(base / "tokenizer")
    configs = [
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=width,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=pm.TOKENS,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            projection_dim=width,
        )
        for width in text_widths
    ]
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=pm.LATENT_PX,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=sum(text_widths),  # both encoders' hidden states, concatenated
        attention_head_dim=8,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED,
        projection_class_embeddings_input_dim=6 * TIME_EMBED + text_widths[1],
        norm_num_groups=8,
    )
    pipe: Any = StableDiffusionXLPipeline(
        vae=_load(base, "vae"),
        text_encoder=CLIPTextModel(configs[0]),
        text_encoder_2=CLIPTextModelWithProjection(configs[1]),
        tokenizer=tokenizer,
        tokenizer_2=CLIPTokenizer.from_pretrained(base / "tokenizer"),
        unet=unet,
        scheduler=DDIMScheduler.from_pretrained(base / "scheduler"),
        force_zeros_for_empty_prompt=True,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def _load(base: Path, name: str) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(base / name)


def random_lora(model_dir: Path, *, seed: int, std: float = 0.5) -> dict[str, torch.Tensor]:
    """A PEFT LoRA on the UNet's attention whose update is large enough to show in images."""
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=list(pm.LORA_TARGETS)))
    state: dict[str, torch.Tensor] = get_peft_model_state_dict(unet)
    return {k: (torch.randn_like(v) * std).contiguous() for k, v in state.items()}


def load_pipeline(model_dir: Path) -> Any:
    return pm.load_local_pipeline("StableDiffusionXLPipeline", model_dir)


def train_sdxl_lora(
    model_dir: Path,
    style: str,
    *,
    rank: int = 16,
    steps: int = 60,
    lr: float = 2e-2,
    seed: int = 0,
    texture: float = pm.STYLE_TEXTURE,
) -> dict[str, torch.Tensor]:
    """Fit a UNet LoRA end to end through the SDXL pipeline's own sampler (its undecorated
    ``__call__``, so the size/crop ids and pooled prompt are as at probe time), over the
    rotating prompts of tests/probe_sd3.py, encoded once. Returns the PEFT state dict."""
    from diffusers import StableDiffusionXLPipeline

    from tests.probe_sd3 import TRAIN_PROMPTS, rotating_prompts

    torch.manual_seed(seed)
    pipe = load_pipeline(model_dir)
    call: Any = StableDiffusionXLPipeline.__call__.__wrapped__  # type: ignore[attr-defined]
    with torch.no_grad():  # the text encoders are not trained: encode every prompt once
        embeds, _, pooled, _ = pipe.encode_prompt(
            list(TRAIN_PROMPTS), do_classifier_free_guidance=False
        )

    def draw(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = rotating_prompts(step)
        noise = pm.sampler_noise(step, len(chosen))
        drawn = call(
            pipe,
            prompt_embeds=embeds[chosen],
            pooled_prompt_embeds=pooled[chosen],
            latents=noise * pipe.scheduler.init_noise_sigma,
            num_inference_steps=pm.STEPS,
            guidance_scale=1.0,
            height=pm.IMAGE_PX,
            width=pm.IMAGE_PX,
            output_type="latent",
        ).images
        return drawn, noise

    return pm.fit_lora_through_sampler(
        pipe,
        pipe.unet,
        style,
        draw,
        targets=pm.STYLE_LORA_TARGETS,
        rank=rank,
        lr=lr,
        steps=steps,
        texture=texture,
    )


def save_kohya_sgm_lora(
    state: dict[str, torch.Tensor], path: Path, *, layers_per_block: int = 1
) -> Path:
    """Kohya's SDXL layout: ``lora_unet_`` keys in SGM (original Stability) block names,
    ``input_blocks_<i>_1``/``middle_block_1``/``output_blocks_<i>_1`` for the UNet's
    ``down_blocks``/``mid_block``/``up_blocks`` attentions (as sd-scripts saves SDXL LoRAs;
    diffusers' SDXL loader maps them back with the UNet's ``layers_per_block``)."""
    import re

    def sgm(module: str) -> str:
        if match := re.match(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", module):
            block, layer, rest = int(match[1]), int(match[2]), match[3]
            return f"input_blocks.{1 + block * (layers_per_block + 1) + layer}.1.{rest}"
        if match := re.match(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", module):
            block, layer, rest = int(match[1]), int(match[2]), match[3]
            return f"output_blocks.{block * (layers_per_block + 1) + layer}.1.{rest}"
        if module.startswith("mid_block.attentions.0."):
            return "middle_block.1." + module.removeprefix("mid_block.attentions.0.")
        raise ValueError(f"no SGM name for the UNet module {module}")

    renamed = {}
    for key, value in state.items():
        module, part, weight = key.rsplit(".", 2)
        renamed[f"{sgm(module)}.{part}.{weight}"] = value
    return pm.save_kohya_lora(renamed, path)
