"""Tiny SD1 and SDXL checkpoints in the original (ldm) single-file layout, built from the
tiny pipelines of tests/probe_models.py and tests/probe_sdxl.py: the UNet's diffusers keys
written back as ``model.diffusion_model.*`` (the inverse of diffusers'
``convert_ldm_unet_checkpoint``, for any depth), with a LoRA fused into the weights first,
as the merges and fine-tunes on the hubs are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

LDM_UNET = "model.diffusion_model."
_TOP = (
    ("time_embed.0.", "time_embedding.linear_1."),
    ("time_embed.2.", "time_embedding.linear_2."),
    ("label_emb.0.0.", "add_embedding.linear_1."),  # SDXL's size and text-pooled embedding
    ("label_emb.0.2.", "add_embedding.linear_2."),
    ("input_blocks.0.0.", "conv_in."),
    ("out.0.", "conv_norm_out."),
    ("out.2.", "conv_out."),
)
_RESNET = (
    ("in_layers.0", "norm1"),
    ("in_layers.2", "conv1"),
    ("out_layers.0", "norm2"),
    ("out_layers.3", "conv2"),
    ("emb_layers.1", "time_emb_proj"),
    ("skip_connection", "conv_shortcut"),
)


def _prefixes(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(ldm prefix, diffusers prefix) for every block of a UNet of this config."""
    per = int(config["layers_per_block"])
    blocks = len(config["block_out_channels"])
    down_attn = ["CrossAttn" in t for t in config["down_block_types"]]
    up_attn = ["CrossAttn" in t for t in config["up_block_types"]]
    out: list[tuple[str, str]] = []
    for i in range(blocks):
        for j in range(per):
            n = (per + 1) * i + j + 1
            out.append((f"input_blocks.{n}.0.", f"down_blocks.{i}.resnets.{j}."))
            if down_attn[i]:
                out.append((f"input_blocks.{n}.1.", f"down_blocks.{i}.attentions.{j}."))
        if i < blocks - 1:
            n = (per + 1) * (i + 1)
            out.append((f"input_blocks.{n}.0.op.", f"down_blocks.{i}.downsamplers.0.conv."))
        for j in range(per + 1):
            n = (per + 1) * i + j
            out.append((f"output_blocks.{n}.0.", f"up_blocks.{i}.resnets.{j}."))
            if up_attn[i]:
                out.append((f"output_blocks.{n}.1.", f"up_blocks.{i}.attentions.{j}."))
        if i < blocks - 1:
            n = (per + 1) * i + per
            out.append(
                (f"output_blocks.{n}.{2 if up_attn[i] else 1}.", f"up_blocks.{i}.upsamplers.0.")
            )
    out.append(("middle_block.1.", "mid_block.attentions.0."))
    out.extend((f"middle_block.{2 * j}.", f"mid_block.resnets.{j}.") for j in range(2))
    return out


def to_ldm(unet_state: dict[str, torch.Tensor], config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A diffusers UNet state dict under ldm names (``model.diffusion_model.`` prefixed)."""
    prefixes = sorted(_prefixes(config), key=lambda p: -len(p[1]))
    out: dict[str, torch.Tensor] = {}
    for key, value in unet_state.items():
        name = key
        for ldm, hf in _TOP:
            if name.startswith(hf):
                name = ldm + name[len(hf) :]
                break
        else:
            for ldm, hf in prefixes:
                if name.startswith(hf):
                    rest = name[len(hf) :]
                    if ".resnets." in hf:
                        for old, new in _RESNET:
                            rest = rest.replace(new, old)
                    name = ldm + rest
                    break
            else:
                raise ValueError(f"no ldm name for {key}")
        out[LDM_UNET + name] = value.detach().clone().contiguous()
    return out


def save_checkpoint(model_dir: Path, path: Path, lora: Path | None = None) -> Path:
    """The base model's UNet (with ``lora`` fused in, when given) as one ldm-layout
    single-file checkpoint; returns ``path``."""
    from diffusers import DiffusionPipeline
    from safetensors.torch import save_file

    load: Any = DiffusionPipeline.from_pretrained  # SD1 or SDXL, as the folder says
    pipe = load(model_dir, local_files_only=True, use_safetensors=True, safety_checker=None)
    if lora is not None:
        pipe.load_lora_weights(str(lora), adapter_name="fused")
        pipe.fuse_lora(components=["unet"])
        pipe.unload_lora_weights()
    config = json.loads((model_dir / "unet" / "config.json").read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(to_ldm(pipe.unet.state_dict(), config), str(path), metadata={"format": "pt"})
    return path
