"""Full checkpoints on the probe: a single-file UNet swapped into the family's base pipeline.

A checkpoint upload (a fine-tune or merge, one .safetensors in the original ``ldm`` layout,
``model.diffusion_model.*``, or in diffusers' own UNet names) is probed as a LoRA is: the
same prompts and seeds, its images against the base model's cached ones. Only the UNet is
taken from the file. Its weights are converted with diffusers' single-file helper
(``convert_ldm_unet_checkpoint``) onto the configured base's UNet config, so nothing is
fetched and no config is guessed; the base's text encoder, VAE and scheduler stay, which
keeps the prompt encoding and decoding identical between the two image sets (a style lives
in the UNet; a fine-tuned text encoder is not probed). The base weights are kept on the CPU
for the block and put back after it, so the next image is the base model's again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detectors.errors import ProbeError

if TYPE_CHECKING:
    import torch

LDM_UNET_PREFIX = "model.diffusion_model."
DIFFUSERS_UNET_PREFIXES = ("down_blocks.", "up_blocks.", "mid_block.", "conv_in.")
# The other top-level modules of a diffusers UNet (a diffusers-layout checkpoint's keys).
_DIFFUSERS_UNET_ROOTS = frozenset(
    {"conv_out", "conv_norm_out", "time_embedding", "add_embedding", "encoder_hid_proj"}
)


def read_unet_weights(path: Path, unet_config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The checkpoint's UNet in diffusers names for a UNet of ``unet_config``.

    Raises ProbeError when the file is not safetensors, cannot be read, or holds no UNet of
    that shape (a checkpoint of another family, a VAE alone)."""
    from safetensors import SafetensorError, safe_open

    if path.suffix.lower() != ".safetensors":
        raise ProbeError(f"{path.name} is not a .safetensors file; the probe never loads pickles")
    try:
        # Only the UNet's tensors are read: a checkpoint's VAE and text encoders stay on disk.
        with safe_open(str(path), framework="pt") as f:
            names = [k for k in f.keys() if _is_unet(k)]  # noqa: SIM118 (not a dict)
            tensors = {k: f.get_tensor(k) for k in names}
    except (OSError, SafetensorError) as exc:
        raise ProbeError(f"cannot read the checkpoint {path.name}: {exc}") from exc
    if any(k.startswith(LDM_UNET_PREFIX) for k in tensors):
        from diffusers.loaders import single_file_utils

        convert: Any = single_file_utils.convert_ldm_unet_checkpoint  # diffusers is untyped
        try:
            converted: dict[str, torch.Tensor] = convert(tensors, dict(unet_config))
        except (KeyError, ValueError, IndexError, RuntimeError) as exc:
            raise ProbeError(
                f"the checkpoint {path.name} does not fit the base model's UNet: {exc}"
            ) from exc
        return converted
    unet = {k.removeprefix("unet."): v for k, v in tensors.items()}
    if any(k.startswith(DIFFUSERS_UNET_PREFIXES) for k in unet):
        return unet
    raise ProbeError(f"the checkpoint {path.name} holds no UNet weights (ldm or diffusers names)")


def _is_unet(key: str) -> bool:
    return key.startswith((LDM_UNET_PREFIX, "unet.", *DIFFUSERS_UNET_PREFIXES)) or (
        "." in key and key.split(".", 1)[0] in _DIFFUSERS_UNET_ROOTS
    )


@contextlib.contextmanager
def swapped_unet(unet: Any, weights: Mapping[str, torch.Tensor], name: str) -> Iterator[None]:
    """``unet`` holding ``weights`` for the block, its own weights put back after it.

    Strict: a missing or extra key, or a shape that differs, is a ProbeError and the UNet is
    left as it was."""
    import torch

    own = {k: v.detach().to("cpu", copy=True) for k, v in unet.state_dict().items()}
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    wrong = [k for k in own if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)]
    if missing or extra or wrong:
        first = (missing or extra or wrong)[0]
        raise ProbeError(
            f"the checkpoint {name} does not fit the base model's UNet: "
            f"{len(missing)} weights missing, {len(extra)} unknown, {len(wrong)} of another "
            f"shape (first: {first})"
        )
    try:
        with torch.no_grad():
            unet.load_state_dict(dict(weights), strict=True)
        yield
    finally:
        with torch.no_grad():
            unet.load_state_dict(own, strict=True)
