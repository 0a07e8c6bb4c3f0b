"""A tiny SD3.5-shaped pipeline for the probe tests, and LoRAs for it.

``build_tiny_sd3`` writes a ``StableDiffusion3Pipeline`` (an ``SD3Transformer2DModel`` with
two joint blocks, one of them SD3.5 Medium's dual attention; two tiny
``CLIPTextModelWithProjection`` encoders on the word-level tokenizer of
tests/probe_models.py; the tiny T5 encoder and Unigram tokenizer of tests/probe_flux.py; the
tiny VAE; a flow-matching Euler scheduler) with ``save_pretrained``, so the probe loads it
through the production ``from_pretrained`` path. ``train_sd3_lora`` fits a PEFT LoRA through
the pipeline's own sampler toward a style's latent; ``save_sd3_lora`` writes a LoRA in
PEFT/diffusers, ai-toolkit, kohya (sd-scripts' ``lora_unet_joint_blocks_*``) and OneTrainer
(``lora_transformer_*``) key layouts.
"""

# mypy: disable-error-code="no-untyped-call"
# (diffusers' classes and torch's backward are untyped; this module only builds test models)
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from tests import probe_flux as pf
from tests import probe_models as pm

HEADS, HEAD_DIM = 2, 8
HIDDEN = HEADS * HEAD_DIM
LAYERS = 2
CLIP_WIDTH = pm.TEXT_WIDTH  # each CLIP encoder's width and projection; the pair is 2x
T5_WIDTH = 2 * CLIP_WIDTH  # SD3 pads the CLIP pair's embeddings to T5's width
# Modules whose kohya (MMDiT) names map one to one onto diffusers' (no fused qkv to split).
SD3_LORA_TARGETS = ("to_out.0", "to_add_out", "ff.net.0.proj", "ff.net.2", "ff_context.net.2")
# A style LoRA adapts attention, the MLPs, the patch embedding and the output projection.
SD3_STYLE_TARGETS = (
    *SD3_LORA_TARGETS,
    *("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj", "proj_out"),
    "pos_embed.proj",
)


# Training prompts, five a step: SD3 feeds the pooled prompt into every block's modulation,
# so a LoRA fitted on a few short prompts draws its style on those alone.
TRAIN_PROMPTS = (
    *pm.TRAIN_PROMPTS,
    "a cat in the garden",
    "a dog by the sea",
    "a sketch of a boat on the river",
    "a drawing of a man, by the window",
    "the sky over a field at night",
    "a photo of a chair in the day",
    "a painting of a mountain, style of the city",
    "a bowl of fruit by an old house",
    "a tree in a field, in the style of a street",
    "a woman, a portrait by the sea",
)


def build_tiny_sd3(folder: Path, seed: int = 0) -> Path:
    """Write the tiny SD3 pipeline to ``folder`` and return it."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
        T5Config,
        T5EncoderModel,
    )

    base = pm.build_tiny_sd(folder / "_sd1", seed=seed)  # its tokenizer and VAE
    torch.manual_seed(seed)
    vae = AutoencoderKL.from_pretrained(base / "vae")
    vae.register_to_config(shift_factor=0.0)  # SD3 shifts latents; this VAE needs none
    tokenizer = CLIPTokenizer.from_pretrained(base / "tokenizer")
    clips = [
        CLIPTextModelWithProjection(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=CLIP_WIDTH,
                intermediate_size=64,
                projection_dim=CLIP_WIDTH,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=pm.TOKENS,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            )
        )
        for _ in range(2)
    ]
    t5_tokenizer = pf.t5_tokenizer_fast()
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=len(t5_tokenizer),
            d_model=T5_WIDTH,
            d_kv=8,
            d_ff=64,
            num_layers=1,
            num_heads=4,
            pad_token_id=0,
            eos_token_id=1,
        )
    )
    transformer: Any = SD3Transformer2DModel(
        sample_size=pm.LATENT_PX,
        patch_size=1,
        in_channels=4,
        out_channels=4,
        num_layers=LAYERS,
        attention_head_dim=HEAD_DIM,
        num_attention_heads=HEADS,
        joint_attention_dim=T5_WIDTH,
        caption_projection_dim=HIDDEN,
        pooled_projection_dim=2 * CLIP_WIDTH,
        pos_embed_max_size=pm.LATENT_PX,
        dual_attention_layers=(0,),  # SD3.5 Medium's MMDiT-X block
        qk_norm="rms_norm",  # SD3.5's
    )
    with torch.no_grad():
        # SD3 adds fixed sin-cos position embeddings as large as the patches' own: through
        # them a tiny LoRA cannot carry a latent's noise to the output and draw a clean
        # palette. A style is the same at every position, so the tiny model has none.
        transformer.pos_embed.pos_embed.zero_()
    pipe: Any = StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae,
        text_encoder=clips[0],
        tokenizer=tokenizer,
        text_encoder_2=clips[1],
        tokenizer_2=CLIPTokenizer.from_pretrained(base / "tokenizer"),
        text_encoder_3=t5,
        tokenizer_3=t5_tokenizer,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def load_pipeline(model_dir: Path) -> Any:
    return pm.load_local_pipeline("StableDiffusion3Pipeline", model_dir)


def train_sd3_lora(
    model_dir: Path,
    style: str,
    *,
    rank: int = 16,
    steps: int = 30,
    lr: float = 5e-2,
    seed: int = 0,
    targets: Sequence[str] = SD3_STYLE_TARGETS,
    texture: float = pm.STYLE_TEXTURE,
) -> dict[str, torch.Tensor]:
    """Fit a LoRA on the transformer end to end through the pipeline's own sampler (its
    undecorated ``__call__``), so that the latents it draws land on the style's latent with
    ``texture`` of the starting noise left in. Returns the PEFT state dict
    (transformer-relative ``lora_A``/``lora_B`` keys)."""
    from diffusers import StableDiffusion3Pipeline

    torch.manual_seed(seed)
    pipe = load_pipeline(model_dir)
    call: Any = StableDiffusion3Pipeline.__call__.__wrapped__  # type: ignore[attr-defined]
    with torch.no_grad():  # the text encoders are not trained: encode every prompt once
        embeds, _, pooled, _ = pipe.encode_prompt(
            list(TRAIN_PROMPTS), None, None, do_classifier_free_guidance=False
        )

    def draw(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = rotating_prompts(step)
        noise = pm.sampler_noise(step, len(chosen))
        drawn = call(
            pipe,
            prompt_embeds=embeds[chosen],
            pooled_prompt_embeds=pooled[chosen],
            latents=noise,
            num_inference_steps=pm.STEPS,
            guidance_scale=1.0,
            height=pm.IMAGE_PX,
            width=pm.IMAGE_PX,
            output_type="latent",
        ).images
        return drawn, noise

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


def rotating_prompts(step: int, n: int = 5) -> list[int]:
    """Which of ``TRAIN_PROMPTS`` training step ``step`` draws (``n`` in rotation)."""
    return [(n * step + i) % len(TRAIN_PROMPTS) for i in range(n)]


def benign_sd3_lora(
    model_dir: Path, *, rank: int = 4, seed: int = 1, std: float = 1e-3
) -> dict[str, torch.Tensor]:
    """A LoRA with the right shapes whose update is tiny: it barely changes any image."""
    torch.manual_seed(seed)
    pipe = load_pipeline(model_dir)
    return pm.faint_lora(pipe.transformer, SD3_LORA_TARGETS, rank=rank, std=std)


def random_sd3_lora(model_dir: Path, *, seed: int, std: float = 0.5) -> dict[str, torch.Tensor]:
    """A LoRA whose update is large enough to show in images."""
    state = benign_sd3_lora(model_dir, seed=seed)
    return {k: (torch.randn_like(v) * std).contiguous() for k, v in state.items()}


# diffusers module name (in a joint block) -> MMDiT name (kohya sd-scripts, ComfyUI).
_MMDIT = {
    "attn.to_out.0": "x_block.attn.proj",
    "attn.to_add_out": "context_block.attn.proj",
    "ff.net.0.proj": "x_block.mlp.fc1",
    "ff.net.2": "x_block.mlp.fc2",
    "ff_context.net.0.proj": "context_block.mlp.fc1",
    "ff_context.net.2": "context_block.mlp.fc2",
    "attn2.to_out.0": "x_block.attn2.proj",
}


def mmdit_name(module: str) -> str:
    """``transformer_blocks.0.attn.to_out.0`` -> ``joint_blocks.0.x_block.attn.proj``."""
    group, index, rest = module.split(".", 2)
    if group == "transformer_blocks" and rest in _MMDIT:
        return f"joint_blocks.{index}.{_MMDIT[rest]}"
    raise ValueError(f"no MMDiT name for the SD3 module {module}")


def save_sd3_lora(
    state: Mapping[str, torch.Tensor],
    path: Path,
    layout: str,
    *,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``state`` as ``peft`` (``transformer.<module>.lora_A.weight``), ``ai-toolkit``
    (the same keys, as ai-toolkit saves SD3, with its metadata), ``kohya`` (sd-scripts'
    ``lora_unet_<mmdit module>.lora_down.weight`` plus ``.alpha``; modules with a one-to-one
    MMDiT name only, ``SD3_LORA_TARGETS``) or ``onetrainer``
    (``lora_transformer_<diffusers module>.lora_down.weight`` plus ``.alpha``)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    meta = dict(metadata or {})
    for key, value in state.items():
        module, part, _ = key.rsplit(".", 2)
        if layout in ("peft", "ai-toolkit"):
            tensors[f"transformer.{key}"] = value
            continue
        if layout == "kohya":
            name = "lora_unet_" + mmdit_name(module).replace(".", "_")
        elif layout == "onetrainer":
            name = "lora_transformer_" + module.replace(".", "_")
        else:
            raise ValueError(f"unknown layout {layout}")
        tensors[f"{name}.{'lora_down' if part == 'lora_A' else 'lora_up'}.weight"] = value
        if part == "lora_A":
            tensors[f"{name}.alpha"] = torch.tensor(float(value.shape[0]))
    if layout == "ai-toolkit":
        meta.setdefault("ss_base_model_version", "sd_3")
        meta.setdefault("format", "pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=meta)
    return path


# Modules the fused-key test covers: the joint attention's q, k, v of both streams (kohya's
# fused qkv), the last block's context modulation and the final layer's (shift and scale
# swapped in diffusers), and the dual attention's q, k, v.
FUSED_TARGETS = (
    *("attn.to_q", "attn.to_k", "attn.to_v", "add_q_proj", "add_k_proj", "add_v_proj"),
    *("attn2.to_q", "attn2.to_k", "attn2.to_v", "norm1_context.linear", "norm_out.linear"),
)
_QKV = re.compile(r"^(?P<attn>attn2?)\.(?P<kind>to|add)_(?P<letter>[qkv])(?:_proj)?$")


def fused_sd3_lora(
    model_dir: Path, *, seed: int, std: float = 0.5, rank: int = 4
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A random LoRA on ``FUSED_TARGETS`` twice: in PEFT keys (``transformer.``) and as
    kohya sd-scripts writes the same update, with MMDiT's fused ``qkv`` (the three down
    matrices stacked, the up matrices block-diagonal: rank 3x), MMDiT's (shift, scale)
    order where diffusers keeps (scale, shift) (the last block's context modulation, the
    final layer's), and ``alpha`` half the rank (the up matrices doubled to match)."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    pipe = load_pipeline(model_dir)
    pipe.transformer.add_adapter(
        LoraConfig(r=rank, lora_alpha=rank, target_modules=list(FUSED_TARGETS))
    )
    state = {
        k: (torch.randn_like(v) * std).contiguous()
        for k, v in get_peft_model_state_dict(pipe.transformer).items()
    }
    peft = {f"transformer.{k}": v for k, v in state.items()}
    kohya: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, dict[str, torch.Tensor]]] = {}
    for key, value in state.items():
        module, part, _ = key.rsplit(".", 2)
        if module == "norm_out.linear":
            name, swapped = "final_layer.adaLN_modulation.1", True
        else:
            _, index, rest = module.split(".", 2)
            qkv = _QKV.match(rest)
            if qkv is not None:
                stream = "context_block" if qkv["kind"] == "add" else "x_block"
                fused_name = f"joint_blocks.{index}.{stream}.{qkv['attn']}.qkv"
                fused.setdefault(fused_name, {}).setdefault(part, {})[qkv["letter"]] = value
                continue
            assert rest == "norm1_context.linear", module
            name = f"joint_blocks.{index}.context_block.adaLN_modulation.1"
            swapped = int(index) == LAYERS - 1  # the last block's continuous norm
        if part == "lora_B" and swapped:
            scale, shift = value.chunk(2, dim=0)
            value = torch.cat([shift, scale], dim=0)
        _put_kohya(kohya, name, part, value)
    for name, parts in fused.items():
        downs, ups = ([parts[p][c] for c in "qkv"] for p in ("lora_A", "lora_B"))
        _put_kohya(kohya, name, "lora_A", torch.cat(downs, dim=0))
        _put_kohya(kohya, name, "lora_B", torch.block_diag(*ups))
    return peft, kohya


def _put_kohya(out: dict[str, torch.Tensor], name: str, part: str, value: torch.Tensor) -> None:
    flat = "lora_unet_" + name.replace(".", "_")
    if part == "lora_A":
        out[f"{flat}.lora_down.weight"] = value.contiguous()
        out[f"{flat}.alpha"] = torch.tensor(value.shape[0] / 2)
    else:
        out[f"{flat}.lora_up.weight"] = (2 * value).contiguous()
