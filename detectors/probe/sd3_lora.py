"""SD3/SD3.5 LoRAs in kohya-style keys, in the diffusers/PEFT names the SD3 loader reads.

diffusers' ``StableDiffusion3Pipeline.load_lora_weights`` reads only PEFT/diffusers keys
(``transformer.<module>.lora_A.weight``, ``text_encoder.``, ``text_encoder_2.``): it has no
converter for SD3 (as it has for Flux), so it skips every kohya key with a warning. Two
kohya-style layouts are common and converted here:

- kohya sd-scripts (``networks/lora_sd3.py``) and ComfyUI: the MMDiT's own module names,
  flattened, ``lora_unet_joint_blocks_<N>_x_block_attn_qkv.lora_down.weight``, with
  ``.alpha``; the text encoders as ``lora_te1_``/``lora_te2_`` (CLIP-L, CLIP-G) and
  ``lora_te3_`` (T5). The fused ``qkv`` is split into diffusers' ``to_q``/``to_k``/``to_v``
  (one down matrix for all three, the up matrix cut in thirds), and the modulations whose
  shift and scale diffusers swaps (the last block's context modulation, the final layer's)
  are swapped the same way, as diffusers' single-file loader does for a full checkpoint;
- OneTrainer: diffusers' module names, flattened, ``lora_transformer_<module>``.

Each ``alpha / rank`` is folded into the up matrix (the loader's LoRA has ``alpha = rank``).
Keys the SD3 loader cannot use (T5's, ``lora_te3_``) are dropped with a warning; a kohya key
naming no module of the pipeline is a ValueError (the probe's "cannot apply the LoRA"), so
no LoRA is drawn half applied.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

KOHYA_PREFIXES = ("lora_unet_", "lora_transformer_", "lora_te1_", "lora_te2_", "lora_te3_")
_PARTS = {".lora_down.weight": "down", ".lora_up.weight": "up", ".alpha": "alpha"}
_JOINT = re.compile(r"^joint_blocks_(?P<index>\d+)_(?P<stream>x_block|context_block)_(?P<rest>.+)$")
# MMDiT module (a joint block's, after the stream) -> diffusers module(s) in the block.
_X_BLOCK = {
    "attn_qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "attn_proj": ("attn.to_out.0",),
    "attn2_qkv": ("attn2.to_q", "attn2.to_k", "attn2.to_v"),
    "attn2_proj": ("attn2.to_out.0",),
    "mlp_fc1": ("ff.net.0.proj",),
    "mlp_fc2": ("ff.net.2",),
    "adaLN_modulation_1": ("norm1.linear",),
}
_CONTEXT_BLOCK = {
    "attn_qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    "attn_proj": ("attn.to_add_out",),
    "mlp_fc1": ("ff_context.net.0.proj",),
    "mlp_fc2": ("ff_context.net.2",),
    "adaLN_modulation_1": ("norm1_context.linear",),
}
_OUTSIDE_BLOCKS = {
    "context_embedder": "context_embedder",
    "x_embedder_proj": "pos_embed.proj",
    "t_embedder_mlp_0": "time_text_embed.timestep_embedder.linear_1",
    "t_embedder_mlp_2": "time_text_embed.timestep_embedder.linear_2",
    "y_embedder_mlp_0": "time_text_embed.text_embedder.linear_1",
    "y_embedder_mlp_2": "time_text_embed.text_embedder.linear_2",
    "final_layer_linear": "proj_out",
    "final_layer_adaLN_modulation_1": "norm_out.linear",
}


def is_kohya_sd3(state: Mapping[str, object]) -> bool:
    """Whether any key is in a kohya-style layout (``lora_unet_``, ``lora_te1_``, …)."""
    return any(key.startswith(KOHYA_PREFIXES) for key in state)


def kohya_sd3_as_diffusers(
    state: Mapping[str, torch.Tensor],
    *,
    num_layers: int,
    modules: Mapping[str, Iterable[str]],
) -> dict[str, torch.Tensor]:
    """``state`` with its kohya-style keys in diffusers/PEFT names; other keys as they are.

    ``num_layers`` is the base transformer's joint block count (its last block's context
    modulation is swapped); ``modules`` maps ``transformer``, ``text_encoder`` and
    ``text_encoder_2`` to their module names (for the flattened diffusers names)."""
    flat = {
        prefix: {name.replace(".", "_"): name for name in modules.get(model, ())}
        for prefix, model in (
            ("lora_transformer_", "transformer"),
            ("lora_te1_", "text_encoder"),
            ("lora_te2_", "text_encoder_2"),
        )
    }
    out: dict[str, torch.Tensor] = {}
    dropped = 0
    for name, parts in _kohya_modules(state, out).items():
        if name.startswith("lora_te3_"):
            dropped += 1
            continue
        if name.startswith("lora_unet_"):
            targets = _mmdit_targets(name.removeprefix("lora_unet_"), num_layers)
            model = "transformer"
        else:
            prefix = next(p for p in flat if name.startswith(p))
            module = flat[prefix].get(name.removeprefix(prefix))
            targets = None if module is None else [(module, False)]
            model = {"lora_transformer_": "transformer", "lora_te1_": "text_encoder"}.get(
                prefix, "text_encoder_2"
            )
        if targets is None:
            raise ValueError(f"no SD3 module is named by the LoRA key {name}")
        out.update(_peft_pair(name, parts, model, targets))
    if dropped:
        log.warning(
            "SD3 LoRA: the T5 encoder's modules are not probed (diffusers loads none)",
            extra={"modules": dropped, "stage": "probe"},
        )
    return out


def _kohya_modules(
    state: Mapping[str, torch.Tensor], passthrough: dict[str, torch.Tensor]
) -> dict[str, dict[str, torch.Tensor]]:
    """Kohya-style keys grouped by module (``lora_down``/``lora_up``/``alpha`` each); other
    keys go into ``passthrough`` as they are."""
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        part = next((p for p in _PARTS if key.endswith(p)), None)
        if not key.startswith(KOHYA_PREFIXES) or part is None:
            passthrough[key] = value
            continue
        grouped.setdefault(key.removesuffix(part), {})[_PARTS[part]] = value
    return grouped


def _mmdit_targets(name: str, num_layers: int) -> list[tuple[str, bool]] | None:
    """diffusers modules for one MMDiT module, each with whether its shift and scale halves
    are swapped; None when the name is no SD3 module."""
    if name in _OUTSIDE_BLOCKS:
        return [(_OUTSIDE_BLOCKS[name], name == "final_layer_adaLN_modulation_1")]
    match = _JOINT.match(name)
    if match is None:
        return None
    index, rest = int(match["index"]), match["rest"]
    table = _X_BLOCK if match["stream"] == "x_block" else _CONTEXT_BLOCK
    if rest not in table or index >= num_layers:
        return None
    # The last block's context stream only feeds the image stream: diffusers' continuous
    # norm there orders its modulation (scale, shift), MMDiT's (shift, scale).
    last = match["stream"] == "context_block" and index == num_layers - 1
    swapped = last and rest == "adaLN_modulation_1"
    return [(f"transformer_blocks.{index}.{m}", swapped) for m in table[rest]]


def _peft_pair(
    name: str, parts: Mapping[str, torch.Tensor], model: str, targets: list[tuple[str, bool]]
) -> dict[str, torch.Tensor]:
    import torch

    if "down" not in parts or "up" not in parts:
        raise ValueError(f"the LoRA key {name} has no lora_down/lora_up pair")
    down, up = parts["down"], parts["up"]
    rank = down.shape[0]
    alpha = float(parts["alpha"].item()) if "alpha" in parts else float(rank)
    up = up * (alpha / rank)
    ups = up.chunk(len(targets), dim=0) if len(targets) > 1 else (up,)
    if len(targets) > 1 and up.shape[0] % len(targets):
        raise ValueError(f"the LoRA key {name} is not a fused qkv of three equal parts")
    out: dict[str, torch.Tensor] = {}
    for (module, swapped), part in zip(targets, ups, strict=True):
        if swapped:
            shift, scale = part.chunk(2, dim=0)
            part = torch.cat([scale, shift], dim=0)
        out[f"{model}.{module}.lora_A.weight"] = down.contiguous()
        out[f"{model}.{module}.lora_B.weight"] = part.contiguous()
    return out
