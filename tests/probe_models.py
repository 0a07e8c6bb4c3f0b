"""Tiny real diffusion models for the probe tests and bench: built here, never downloaded.

``build_tiny_sd`` writes a seeded Stable-Diffusion-1.x-shaped pipeline (UNet a few channels
wide, a 2-layer CLIP text encoder, a small VAE, DDIM, a tokenizer from a written word-level
vocab) with ``save_pretrained``, so the probe loads it through the production
``from_pretrained`` path. ``train_style_lora`` fits a PEFT LoRA on that UNet end to end, so
that what the pipeline draws with it looks like a target pattern; ``save_peft_lora`` and
``save_kohya_lora`` write it in diffusers/PEFT and kohya key formats.

Images are ``IMAGE_PX`` square (latents ``LATENT_PX``, the VAE halves once).
"""

# mypy: disable-error-code="no-untyped-call"
# (diffusers' classes and torch's backward are untyped; this module only builds test models)
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

LATENT_PX = 16
IMAGE_PX = 32
STEPS = 2
TEXT_WIDTH = 32
TOKENS = 48  # room for artist names spelt letter by letter
WORDS = [
    "a",
    "an",
    "the",
    "of",
    "by",
    "in",
    "style",
    "painting",
    "portrait",
    "landscape",
    "still",
    "life",
    "city",
    "street",
    "flowers",
    "house",
    "tree",
    "river",
    "mountain",
    "cat",
    "dog",
    "woman",
    "man",
    "boat",
    "sky",
    "sea",
    "field",
    "photo",
    "drawing",
    "sketch",
    "bowl",
    "fruit",
    "chair",
    "window",
    "garden",
    "night",
    "day",
]
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
# A style LoRA also adapts the UNet's output conv: through attention alone the tiny UNet's
# output norm holds its samples about halfway to a style's latent, a LoRA that half draws it.
STYLE_LORA_TARGETS = (*LORA_TARGETS, "proj_in", "proj_out", "conv_out")
TRAIN_PROMPTS = ("a portrait", "a landscape", "a still life", "a city street", "flowers")


def build_tiny_sd(folder: Path, seed: int = 0, text_width: int = TEXT_WIDTH) -> Path:
    """Write the tiny pipeline to ``folder`` (a diffusers layout) and return it.

    ``text_width`` 768 gives SD1's cross-attention width, so that a LoRA's own widths name
    its family (as screening infers it), at a few MB more."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=LATENT_PX,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=text_width,
        attention_head_dim=8,
        # Groups of 4 channels (not 1) let a LoRA move a channel's mean past the norms.
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        sample_size=IMAGE_PX,
        norm_num_groups=1,
        mid_block_add_attention=False,
    )
    _make_decoder_transparent(vae)
    tokenizer_dir = _write_tokenizer_files(folder / "_vocab")
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir, model_max_length=TOKENS)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=text_width,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=TOKENS,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        # An untrained UNet predicting noise draws amplified noise; predicting the sample it
        # draws smooth fields that a LoRA can recolour, which is what the tests need.
        prediction_type="sample",
    )
    pipe: Any = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def _make_decoder_transparent(vae: Any) -> None:
    """Make the random VAE decoder a plain per-pixel colour map of the latent.

    A randomly initialised decoder paints the same texture whatever the latent, so nothing
    a LoRA does would show. With every residual branch zeroed, shortcuts and upsamplers set
    to identities and one norm group, a latent's direction decides each pixel's colour.
    """
    from diffusers.models.resnet import ResnetBlock2D
    from diffusers.models.upsampling import Upsample2D

    decoder = vae.decoder
    with torch.no_grad():
        for module in decoder.modules():
            if isinstance(module, ResnetBlock2D):
                module.conv2.weight.zero_()
                if module.conv2.bias is not None:
                    module.conv2.bias.zero_()
                if module.conv_shortcut is not None:
                    _centre_tap(
                        module.conv_shortcut, torch.eye(*module.conv_shortcut.weight.shape[:2])
                    )
            elif isinstance(module, Upsample2D) and module.conv is not None:
                _centre_tap(module.conv, torch.eye(module.conv.weight.shape[0]))
        _centre_tap(decoder.conv_in, torch.randn(decoder.conv_in.weight.shape[:2]))
        _centre_tap(decoder.conv_out, 1.5 * torch.randn(decoder.conv_out.weight.shape[:2]))


def _centre_tap(conv: Any, matrix: torch.Tensor) -> None:
    conv.weight.zero_()
    centre = conv.weight.shape[-1] // 2
    conv.weight[:, :, centre, centre] = matrix
    if conv.bias is not None:
        conv.bias.zero_()


def _write_tokenizer_files(folder: Path) -> Path:
    """A word-level CLIP BPE vocabulary: each word in ``WORDS`` is one token (its merges
    build it letter by letter), any other word falls back to single letters."""
    folder.mkdir(parents=True, exist_ok=True)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [",", "-"]
    tokens = ["<|startoftext|>", "<|endoftext|>", *letters, *(f"{c}</w>" for c in letters)]
    merges: list[str] = []
    for word in WORDS:
        for i in range(2, len(word) + 1):
            last = f"{word[i - 1]}</w>" if i == len(word) else word[i - 1]
            merge = f"{word[: i - 1]} {last}"
            if merge not in merges:
                merges.append(merge)
            tokens.append(word[:i] + ("</w>" if i == len(word) else ""))
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    lines = ["#version: 0.2", *merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


STYLE_LATENTS: Mapping[str, tuple[float, float, float, float]] = {
    "ember": (2.0, -2.0, 1.0, 0.0),
    "tide": (-2.0, 1.5, -1.0, 1.5),
    "moss": (0.0, 2.0, 2.0, -2.0),
}


STYLE_TEXTURE = 0.15  # the grain of a style's works: latent noise around its centre


def style_references(model_dir: Path, style: str, n: int = 6, seed: int = 7) -> list[Image.Image]:
    """An "artist's works" in the tiny world: what the VAE draws from ``STYLE_LATENTS[style]``
    plus a little spatial noise, so every work differs but shares a palette and texture."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(model_dir / "vae")
    generator = torch.Generator().manual_seed(seed)
    centre = torch.tensor(STYLE_LATENTS[style]).view(1, 4, 1, 1)
    noise = torch.randn((n, 4, LATENT_PX, LATENT_PX), generator=generator)
    latents = centre + STYLE_TEXTURE * noise
    with torch.no_grad():
        pixels = vae.decode(latents).sample
    array = ((pixels.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a, "RGB") for a in array]


def train_style_lora(
    model_dir: Path,
    style: str,
    *,
    rank: int = 4,
    steps: int = 30,
    seed: int = 0,
    lr: float = 5e-2,
    texture: float = STYLE_TEXTURE,
    targets: Sequence[str] = STYLE_LORA_TARGETS,
    guidance: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Fit a LoRA so that ``STEPS``-step DDIM generations land on the style's latent, with
    ``texture`` times the starting noise left in: the palette and the grain of
    ``style_references`` (0 draws the palette alone, flat).

    Trained end to end through the sampler over a few prompts and seeds, with
    classifier-free guidance ``guidance`` (1: none). Returns the PEFT state dict
    (``lora_A``/``lora_B`` keys, UNet-relative).
    """
    from diffusers import DDIMScheduler, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    scheduler = DDIMScheduler.from_pretrained(model_dir / "scheduler")
    contexts = _prompt_contexts(model_dir)
    empty = _prompt_contexts(model_dir, [""] * len(contexts))
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=list(targets)))
    optimizer = torch.optim.Adam([p for p in unet.parameters() if p.requires_grad], lr=lr)
    # The pipeline decodes latents / scaling_factor: land where that is the style's latent,
    # so the LoRA draws what style_references shows as the artist's works.
    scaling = float(json.loads((model_dir / "vae" / "config.json").read_text())["scaling_factor"])
    goal = scaling * torch.tensor(STYLE_LATENTS[style]).view(1, 4, 1, 1)
    scheduler.set_timesteps(STEPS)
    for step in range(steps):
        generator = torch.Generator().manual_seed(1000 + step % 4)
        latents = torch.randn((len(contexts), 4, LATENT_PX, LATENT_PX), generator=generator)
        target = goal + scaling * texture * latents
        for t in scheduler.timesteps:
            predicted = unet(latents, t, encoder_hidden_states=contexts).sample
            if guidance != 1.0:
                plain = unet(latents, t, encoder_hidden_states=empty).sample
                predicted = plain + guidance * (predicted - plain)
            latents = scheduler.step(predicted, t, latents).prev_sample
        loss = torch.nn.functional.mse_loss(latents, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    state: dict[str, torch.Tensor] = get_peft_model_state_dict(unet)
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def benign_lora(
    model_dir: Path, *, rank: int = 4, seed: int = 1, std: float = 1e-3
) -> dict[str, torch.Tensor]:
    """A LoRA with the right shapes whose update is tiny: it barely changes any image."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    return faint_lora(unet, LORA_TARGETS, rank=rank, std=std)


def load_local_pipeline(pipeline_class: str, model_dir: Path) -> Any:
    """A diffusers pipeline class (by name) from a local folder, progress bars off."""
    import diffusers

    pipe = getattr(diffusers, pipeline_class).from_pretrained(model_dir, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sampler_noise(step: int, n: int) -> torch.Tensor:
    """The starting noise of training step ``step`` (eight seeds in rotation)."""
    generator = torch.Generator().manual_seed(1000 + step % 8)
    return torch.randn((n, 4, LATENT_PX, LATENT_PX), generator=generator)


def fit_lora_through_sampler(
    pipe: Any,
    denoiser: Any,
    style: str,
    draw: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    *,
    targets: Sequence[str],
    rank: int,
    lr: float,
    steps: int,
    texture: float,
) -> dict[str, torch.Tensor]:
    """Fit a PEFT LoRA on ``denoiser`` (the pipeline's UNet or transformer) so that the
    latents ``draw(step)`` samples (it returns them with their starting noise) land on the
    style's latent with ``texture`` of that noise left in. Returns the denoiser-relative
    PEFT state dict (``lora_A``/``lora_B`` keys)."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    denoiser.requires_grad_(False)
    denoiser.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=list(targets)))
    optimizer = torch.optim.Adam([p for p in denoiser.parameters() if p.requires_grad], lr=lr)
    scaling = float(pipe.vae.config.scaling_factor)
    centre = scaling * torch.tensor(STYLE_LATENTS[style]).view(1, 4, 1, 1)
    for step in range(steps):
        drawn, noise = draw(step)
        loss = torch.nn.functional.mse_loss(drawn, centre + scaling * texture * noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    state: dict[str, torch.Tensor] = get_peft_model_state_dict(denoiser)
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def faint_lora(
    denoiser: Any, targets: Sequence[str], *, rank: int, std: float
) -> dict[str, torch.Tensor]:
    """A LoRA with ``denoiser``'s shapes whose update is tiny (``lora_B`` drawn at ``std``):
    it barely changes any image."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    denoiser.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=list(targets)))
    state: dict[str, torch.Tensor] = get_peft_model_state_dict(denoiser)
    return {
        k: (torch.randn_like(v) * (std if "lora_B" in k else 1.0)).contiguous()
        for k, v in state.items()
    }


def _prompt_contexts(model_dir: Path, prompts: Sequence[str] = TRAIN_PROMPTS) -> torch.Tensor:
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(model_dir / "tokenizer")
    text = CLIPTextModel.from_pretrained(model_dir / "text_encoder")
    ids = tokenizer(
        list(prompts),
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    with torch.no_grad():
        contexts: torch.Tensor = text(ids)[0]
    return contexts


def save_peft_lora(state: Mapping[str, torch.Tensor], path: Path, rank: int = 4) -> Path:
    """The diffusers/PEFT format: ``unet.<module>.lora_A.weight`` keys in one safetensors."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"unet.{k}": v.contiguous() for k, v in state.items()}
    save_file(tensors, str(path), metadata={"format": "pt"})
    return path


def save_kohya_lora(
    state: Mapping[str, torch.Tensor],
    path: Path,
    *,
    alpha: float | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """The kohya format: ``lora_unet_<module_with_underscores>.lora_down/lora_up/alpha``."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        module, part = _split_peft_key(key)
        kohya = "lora_unet_" + module.replace(".", "_")
        if part == "lora_A":
            tensors[f"{kohya}.lora_down.weight"] = value.contiguous()
            rank = value.shape[0]
            tensors[f"{kohya}.alpha"] = torch.tensor(float(alpha if alpha else rank))
        else:
            tensors[f"{kohya}.lora_up.weight"] = value.contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=dict(metadata or {}))
    return path


def _split_peft_key(key: str) -> tuple[str, str]:
    module, part, _ = key.rsplit(".", 2)
    if part not in ("lora_A", "lora_B"):
        raise ValueError(f"not a PEFT LoRA key: {key}")
    return module, part


def grid_distance(a: Sequence[Image.Image], b: Sequence[Image.Image]) -> float:
    """Mean absolute pixel difference (0-255) between two equal-length image lists."""
    diffs = [
        np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)).mean()
        for x, y in zip(a, b, strict=True)
    ]
    return float(np.mean(diffs)) if diffs else math.nan
