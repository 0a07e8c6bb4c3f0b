"""A tiny Flux.1-shaped pipeline for the probe tests, and LoRAs for it.

``build_tiny_flux`` writes a ``FluxPipeline`` (a ``FluxTransformer2DModel`` with one double
and one single block, the tiny CLIP text encoder and VAE of tests/probe_models.py, a tiny T5
encoder whose tokenizer is built from a written Unigram vocabulary, since T5's own needs
sentencepiece, and a flow-matching Euler scheduler) with ``save_pretrained``, so the probe
loads it through the production ``from_pretrained`` path. ``train_flux_lora`` fits a PEFT
LoRA through the pipeline's own sampler toward a style's latent; ``save_flux_lora`` writes
a LoRA in PEFT/diffusers, ai-toolkit and kohya key layouts.
"""

# mypy: disable-error-code="no-untyped-call"
# (diffusers' classes and torch's backward are untyped; this module only builds test models)
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from tests import probe_models as pm

T5_TOKENS = 16  # the tiny T5 tokenizer's own limit (Flux pads its prompts to 512)
# Modules whose kohya names map one to one onto diffusers' (no fused qkv to split).
FLUX_LORA_TARGETS = ("to_out.0", "to_add_out", "ff.net.0.proj", "ff.net.2", "ff_context.net.2")
# A style LoRA adapts attention, the MLPs, the patch embedding and the output projections:
# through fewer the untrained tiny transformer's saturated draws do not reach a palette.
FLUX_STYLE_TARGETS = (
    *FLUX_LORA_TARGETS,
    *("to_q", "to_k", "to_v", "proj_mlp", "proj_out", "x_embedder"),
)


def build_tiny_flux(folder: Path, seed: int = 0) -> Path:
    """Write the tiny Flux pipeline to ``folder`` and return it."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel

    base = pm.build_tiny_sd(folder / "_sd1", seed=seed)  # its CLIP encoder, tokenizer, VAE
    torch.manual_seed(seed)
    vae = AutoencoderKL.from_pretrained(base / "vae")
    vae.register_to_config(shift_factor=0.0)  # Flux shifts latents; this VAE needs none
    t5_tokenizer = t5_tokenizer_fast()
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=len(t5_tokenizer),
            d_model=pm.TEXT_WIDTH,
            d_kv=8,
            d_ff=64,
            num_layers=1,
            num_heads=4,
            pad_token_id=0,
            eos_token_id=1,
        )
    )
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 latent channels, 2x2 packed
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=pm.TEXT_WIDTH,
        pooled_projection_dim=pm.TEXT_WIDTH,
        guidance_embeds=False,
        axes_dims_rope=(2, 2, 4),
    )
    pipe: Any = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=CLIPTextModel.from_pretrained(base / "text_encoder"),
        tokenizer=CLIPTokenizer.from_pretrained(base / "tokenizer"),
        text_encoder_2=t5,
        tokenizer_2=t5_tokenizer,
        transformer=transformer,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def t5_tokenizer_fast() -> Any:
    """A T5 tokenizer over ``pm.WORDS`` (one Unigram piece each, letters as a fallback), built
    from its vocabulary in memory: the sentencepiece model T5 ships needs sentencepiece."""
    from transformers import T5Tokenizer

    pieces = ["<pad>", "</s>", "<unk>", "\u2581"]
    pieces += [f"\u2581{w}" for w in pm.WORDS] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = [(p, 0.0 if i < 3 else -1.0 - (i > 3 + len(pm.WORDS))) for i, p in enumerate(pieces)]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=T5_TOKENS)


def load_pipeline(model_dir: Path) -> Any:
    return pm.load_local_pipeline("FluxPipeline", model_dir)


def train_flux_lora(
    model_dir: Path,
    style: str,
    *,
    rank: int = 16,
    steps: int = 60,
    lr: float = 5e-2,
    seed: int = 0,
    targets: Sequence[str] = FLUX_STYLE_TARGETS,
    texture: float = pm.STYLE_TEXTURE,
) -> dict[str, torch.Tensor]:
    """Fit a LoRA on the transformer (saved in PEFT layout: its fused-in-BFL modules have no
    one-to-one kohya name), end to end through the pipeline's own sampler (its
    undecorated ``__call__``), so that the latents it draws land on the style's latent with
    ``texture`` of the starting noise left in. Returns the PEFT state dict
    (transformer-relative ``lora_A``/``lora_B`` keys)."""
    from diffusers import FluxPipeline

    torch.manual_seed(seed)
    pipe = load_pipeline(model_dir)
    call: Any = FluxPipeline.__call__.__wrapped__  # type: ignore[attr-defined]  # no no_grad
    prompts = list(pm.TRAIN_PROMPTS)

    def draw(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        noise = pm.sampler_noise(step, len(prompts))
        packed = pipe._pack_latents(noise, len(prompts), 4, pm.LATENT_PX, pm.LATENT_PX)
        out = call(
            pipe,
            prompt=prompts,
            latents=packed,
            num_inference_steps=pm.STEPS,
            height=pm.IMAGE_PX,
            width=pm.IMAGE_PX,
            output_type="latent",
        ).images
        return pipe._unpack_latents(out, pm.IMAGE_PX, pm.IMAGE_PX, pipe.vae_scale_factor), noise

    return pm.fit_lora_through_sampler(
        pipe,
        pipe.transformer,
        style,
        draw,
        targets=targets,
        rank=rank,
        lr=lr,
        steps=steps,
        texture=texture,
    )


def benign_flux_lora(
    model_dir: Path, *, rank: int = 4, seed: int = 1, std: float = 1e-3
) -> dict[str, torch.Tensor]:
    """A LoRA with the right shapes whose update is tiny: it barely changes any image."""
    torch.manual_seed(seed)
    pipe = load_pipeline(model_dir)
    return pm.faint_lora(pipe.transformer, FLUX_LORA_TARGETS, rank=rank, std=std)


def random_flux_lora(model_dir: Path, *, seed: int, std: float = 0.5) -> dict[str, torch.Tensor]:
    """A LoRA whose update is large enough to show in images."""
    state = benign_flux_lora(model_dir, seed=seed)
    return {k: (torch.randn_like(v) * std).contiguous() for k, v in state.items()}


# diffusers module name (in the double block) -> kohya/BFL name; single-block ones below.
_DOUBLE = {
    "attn.to_out.0": "img_attn_proj",
    "attn.to_add_out": "txt_attn_proj",
    "ff.net.0.proj": "img_mlp_0",
    "ff.net.2": "img_mlp_2",
    "ff_context.net.0.proj": "txt_mlp_0",
    "ff_context.net.2": "txt_mlp_2",
}
_SINGLE = {"proj_out": "linear2"}


def _bfl_name(module: str) -> str:
    """``transformer_blocks.0.attn.to_out.0`` -> ``double_blocks.0.img_attn_proj``."""
    if module == "proj_out":
        return "final_layer.linear"
    group, index, rest = module.split(".", 2)
    if group == "transformer_blocks":
        return f"double_blocks.{index}.{_DOUBLE[rest]}"
    if group == "single_transformer_blocks" and rest in _SINGLE:
        return f"single_blocks.{index}.{_SINGLE[rest]}"
    raise ValueError(f"no kohya name for the Flux module {module}")


def save_flux_lora(
    state: Mapping[str, torch.Tensor],
    path: Path,
    layout: str,
    *,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``state`` as ``peft`` (``transformer.<module>.lora_A.weight``), ``ai-toolkit``
    (``diffusion_model.<bfl module>.lora_A.weight``) or ``kohya``
    (``lora_unet_<bfl_module>.lora_down.weight`` plus ``.alpha``). The BFL layouts keep to
    modules with a one-to-one name (``FLUX_LORA_TARGETS``)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        module, part, _ = key.rsplit(".", 2)
        if layout == "peft":
            tensors[f"transformer.{key}"] = value
        elif layout == "ai-toolkit":
            tensors[f"diffusion_model.{_bfl_name(module)}.{part}.weight"] = value
        elif layout == "kohya":
            name = "lora_unet_" + _bfl_name(module).replace(".", "_")
            tensors[f"{name}.{'lora_down' if part == 'lora_A' else 'lora_up'}.weight"] = value
            if part == "lora_A":
                tensors[f"{name}.alpha"] = torch.tensor(float(value.shape[0]))
        else:
            raise ValueError(f"unknown layout {layout}")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=dict(metadata or {})
    )
    return path


def config_json(model_dir: Path, component: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((model_dir / component / "config.json").read_text())
    return data
