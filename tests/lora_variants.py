"""Real LoRA files with random weights, and the variants a re-uploader makes of them.

Module paths are diffusers' (dotted); :func:`kohya_lora` writes them with kohya's names
(``lora_unet_…``, ``lora_te_…``, ``.lora_down.weight``, ``.alpha``) and :func:`peft_lora` with
PEFT's (``unet.…``, ``text_encoder.…``, ``.lora_A.weight``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from safetensors.numpy import save_file

from detectors.fingerprint import Fingerprint, fingerprint, fingerprint_ranges
from detectors.safetensors_header import parse_header

Weights = dict[str, tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], float]]

# (module path, out width, in width) of a small SD1-shaped LoRA.
MODULES = [
    *(
        (f"unet.down_blocks.{b}.attentions.{a}.transformer_blocks.0.attn{n}.{p}", w, w)
        for b, w in ((0, 320), (1, 640))
        for a in (0, 1)
        for n in (1, 2)
        for p in ("to_q", "to_out.0")
    ),
    *(
        (f"unet.up_blocks.1.attentions.{a}.transformer_blocks.0.attn2.to_{p}", 1280, 768)
        for a in (0, 1, 2)
        for p in ("k", "v")
    ),
    *(
        (f"text_encoder.text_model.encoder.layers.{n}.self_attn.{p}_proj", 768, 768)
        for n in range(4)
        for p in ("q", "k")
    ),
]
KOHYA_METADATA = {
    "ss_output_name": "ilse_varnhagen_style",
    "ss_tag_frequency": '{"10_ilse varnhagen style": {"by ilse varnhagen": 12}}',
    "ss_network_dim": "8",
}


def random_lora(seed: int, rank: int = 8, alpha: float = 4.0) -> Weights:
    """Trained-looking weights: each module's up and down random, scaled down."""
    rng = np.random.default_rng(seed)
    weights: Weights = {}
    for path, out, inp in MODULES:
        down = (rng.standard_normal((rank, inp)) * 0.05).astype(np.float32)
        up = (rng.standard_normal((out, rank)) * 0.01).astype(np.float32)
        weights[path] = (up, down, alpha)
    return weights


def _kohya_name(path: str) -> str:
    if path.startswith("text_encoder."):
        return "lora_te_" + path.removeprefix("text_encoder.").replace(".", "_")
    return "lora_unet_" + path.removeprefix("unet.").replace(".", "_")


def kohya_lora(
    weights: Weights,
    target: Path,
    *,
    dtype: str = "float32",
    metadata: dict[str, str] | None = None,
) -> Path:
    tensors: dict[str, npt.NDArray[np.generic]] = {}
    for path, (up, down, alpha) in weights.items():
        name = _kohya_name(path)
        tensors[f"{name}.lora_up.weight"] = up
        tensors[f"{name}.lora_down.weight"] = down
        tensors[f"{name}.alpha"] = np.array(alpha, dtype=np.float32)
    return _save(tensors, target, dtype, metadata)


def peft_lora(weights: Weights, target: Path, *, dtype: str = "float32") -> Path:
    tensors: dict[str, npt.NDArray[np.generic]] = {}
    for path, (up, down, alpha) in weights.items():
        scale = alpha / up.shape[1]  # PEFT files carry no alpha: the scale goes into up
        tensors[f"{path}.lora_B.weight"] = (up * scale).astype(np.float32)
        tensors[f"{path}.lora_A.weight"] = down
    return _save(tensors, target, dtype, None)


def rescaled(weights: Weights, factor: float) -> Weights:
    """alpha times ``factor`` and up divided by it: the same effect, other bytes."""
    return {p: (up / factor, down, alpha * factor) for p, (up, down, alpha) in weights.items()}


def _save(
    tensors: dict[str, npt.NDArray[np.generic]],
    target: Path,
    dtype: str,
    metadata: dict[str, str] | None,
) -> Path:
    if dtype == "bfloat16":
        import torch
        from safetensors.torch import save_file as save_torch

        save_torch(
            {k: torch.from_numpy(np.asarray(v)).to(torch.bfloat16) for k, v in tensors.items()},
            str(target),
            metadata=metadata,
        )
        return target
    cast = {k: np.asarray(v).astype(dtype) for k, v in tensors.items()}
    save_file(cast, str(target), metadata=metadata)
    return target


def file_fingerprint(path: Path) -> Fingerprint | None:
    data = path.read_bytes()
    header = parse_header(data, file_size=len(data))
    return fingerprint(header, {r: data[r[0] : r[1]] for r in fingerprint_ranges(header)})
