"""The planted benchmark's models: a tiny base trained on the neutral world, and PEFT LoRAs.

``build_base`` writes tests/probe_models.py's tiny SD1-style pipeline, then trains its whole
UNet on captioned neutral-world scenes (``a house``, ``a tree``, ...) with the ordinary
denoising loss, and saves it back in diffusers format. ``train_lora`` fits a PEFT LoRA on the
attention, projection, feed-forward and conv_in/conv_out layers of that UNet with the
same loss on one artist's (or one benign set's) captioned images, the way a hub uploader's
trainer does, plus (every ``STYLE_EVERY``-th step) a style term on generations sampled end
to end through the probe's sampler, so that a LoRA draws its set's palette mix and stroke
texture, not only its mean colour; planted and benign LoRAs are trained alike.
Both train only at the ``SAMPLER_STEPS`` timesteps the probe samples at (the first, from
near-pure noise, most often), which is what makes so few training steps enough.
"""

# mypy: disable-error-code="no-untyped-call"
# (diffusers' classes and torch's backward are untyped; this module only builds bench models)
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench.planted_world import Field
from tests import probe_models as pm

SAMPLER_STEPS = 4
BATCH = 8
FIRST_STEP_SHARE = 0.6
DECODER_GAIN = 0.08
DECODER_SHIFT = 3.0
LORA_TARGETS = (
    *pm.LORA_TARGETS,
    "proj_in",
    "proj_out",
    "ff.net.0.proj",
    "ff.net.2",
    "conv_out",
    "conv_in",
)
# The style term: generations drawn end to end through the SAMPLER_STEPS-step sampler must
# match the training fields' latent statistics (channel means, channel covariance and the
# covariance of horizontal and vertical differences: palette, its mix, stroke texture and
# direction), which a per-image MSE cannot ask for (it regresses onto the mean colour).
STYLE_WEIGHT = 1.0
LORA_TRAINING = "style-stats"  # names the bench's cache folder, so old LoRAs are not reused
STYLE_EVERY = 4


def build_base(
    folder: Path, captions: Sequence[str], fields: Field, *, steps: int, seed: int
) -> Path:
    """The tiny pipeline at ``folder``, its UNet trained on ``(captions, fields)``."""
    from diffusers import UNet2DConditionModel

    pm.build_tiny_sd(folder, seed=seed)
    _soften_decoder(folder)
    unet = UNet2DConditionModel.from_pretrained(folder / "unet")
    params = [p for p in unet.parameters()]
    _fit(unet, params, folder, captions, fields, steps=steps, lr=2e-3, seed=seed)
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    return folder


def _soften_decoder(folder: Path) -> None:
    """Make the decoder's colour map nearly linear and unclipped.

    The test model's map (tests/probe_models.py) ends in SiLU then a 1.5-gain projection, so
    most latents saturate to a few tints. Shifting the normalised features into SiLU's
    near-linear range (and the projection's bias back by as much) and lowering the gain
    gives each latent direction its own colour, which is what lets artists' palettes differ.
    """
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(folder / "vae")
    decoder = vae.decoder
    with torch.no_grad():
        decoder.conv_norm_out.bias.fill_(DECODER_SHIFT)
        decoder.conv_out.weight.mul_(DECODER_GAIN)
        centre = decoder.conv_out.weight.shape[-1] // 2
        tint = decoder.conv_out.weight[:, :, centre, centre].sum(1) * DECODER_SHIFT
        decoder.conv_out.bias.copy_(-tint)
    vae.save_pretrained(folder / "vae", safe_serialization=True)


def train_lora(
    model_dir: Path,
    captions: Sequence[str],
    fields: Field,
    *,
    steps: int,
    seed: int,
    rank: int = 4,
    lr: float = 5e-2,
) -> dict[str, torch.Tensor]:
    """A PEFT LoRA (UNet-relative ``lora_A``/``lora_B`` keys) fitted on the captioned fields."""
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=list(LORA_TARGETS)))
    params = [p for p in unet.parameters() if p.requires_grad]
    _fit(unet, params, model_dir, captions, fields, steps=steps, lr=lr, seed=seed, style=True)
    state: dict[str, torch.Tensor] = get_peft_model_state_dict(unet)
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def _fit(
    unet: Any,
    params: list[torch.nn.Parameter],
    model_dir: Path,
    captions: Sequence[str],
    fields: Field,
    *,
    steps: int,
    lr: float,
    seed: int,
    style: bool = False,
) -> None:
    """Denoising loss (the model predicts the clean latent) at the sampler's timesteps; with
    ``style``, every ``STYLE_EVERY``-th step adds the sampled generations' style term."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_pretrained(model_dir / "scheduler")
    scheduler.set_timesteps(SAMPLER_STEPS)
    timesteps = scheduler.timesteps.clone()
    contexts = encode(model_dir, captions)
    targets = torch.from_numpy(fields)
    optimizer = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    unet.train()
    for step in range(steps):
        pick = torch.randint(len(targets), (BATCH,), generator=generator)
        # The first step, from near-pure noise, decides most of what the sampler draws.
        first = torch.rand(BATCH, generator=generator) < FIRST_STEP_SHARE
        t = torch.where(
            first,
            timesteps[0],
            timesteps[torch.randint(len(timesteps), (BATCH,), generator=generator)],
        )
        noise = torch.randn(targets[pick].shape, generator=generator)
        noisy = scheduler.add_noise(targets[pick], noise, t)
        predicted = unet(noisy, t, encoder_hidden_states=contexts[pick]).sample
        loss = torch.nn.functional.mse_loss(predicted, targets[pick])
        if style and step % STYLE_EVERY == 0:
            drawn = _sample(unet, scheduler, contexts[pick], generator)
            loss = loss + STYLE_WEIGHT * _style_distance(drawn, targets[pick])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    unet.eval()


def _sample(
    unet: Any, scheduler: Any, context: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """The probe's DDIM sampler from fresh noise, differentiable (scheduler steps already set)."""
    latents = torch.randn((len(context), 4, pm.LATENT_PX, pm.LATENT_PX), generator=generator)
    for t in scheduler.timesteps:
        predicted = unet(latents, t, encoder_hidden_states=context).sample
        latents = scheduler.step(predicted, t, latents).prev_sample
    return latents


def _statistics(latents: torch.Tensor) -> list[torch.Tensor]:
    """Channel means, channel covariance, and covariance of x and y differences."""
    flat = latents.permute(1, 0, 2, 3).reshape(latents.shape[1], -1)
    mean = flat.mean(1)
    out = [mean, torch.cov(flat)]
    for diff in (latents.diff(dim=-1), latents.diff(dim=-2)):
        d = diff.permute(1, 0, 2, 3).reshape(latents.shape[1], -1)
        out.append(d @ d.T / d.shape[1])
    return out


def _style_distance(drawn: torch.Tensor, fields: torch.Tensor) -> torch.Tensor:
    """How far the drawn batch's latent statistics are from the training fields'."""
    pairs = zip(_statistics(drawn), _statistics(fields), strict=True)
    return sum((torch.mean((a - b) ** 2) for a, b in pairs), torch.zeros(()))


def encode(model_dir: Path, captions: Sequence[str]) -> torch.Tensor:
    """The text encoder's hidden states for each caption, ``(len, tokens, width)``."""
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(model_dir / "tokenizer")
    text = CLIPTextModel.from_pretrained(model_dir / "text_encoder")
    unique = list(dict.fromkeys(captions))
    ids = tokenizer(
        unique,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    with torch.no_grad():
        hidden: torch.Tensor = text(ids)[0]
    row = {c: i for i, c in enumerate(unique)}
    return hidden[[row[c] for c in captions]]


def render(model_dir: Path, fields: Field) -> list[Image.Image]:
    """What the pipeline's VAE decode makes of latent fields (as if the UNet had drawn them)."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(model_dir / "vae")
    with torch.no_grad():
        pixels = vae.decode(torch.from_numpy(fields) / vae.config.scaling_factor).sample
    array = ((pixels.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(np.ascontiguousarray(a), "RGB") for a in array]
