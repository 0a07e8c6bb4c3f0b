"""LoRAs for bench/reupload.py: many "trained" on one shared base, and the copies a
re-uploader makes of them.

Training, in closed form. Every module of the shared base has a fine-tuning subspace
(``SUBSPACE`` directions on each side, the same for every LoRA of that base) and a common
update inside it that every fine-tune of the base picks up. A task's target update is that
common part, a task-specific part inside the subspace and a task-specific rank-4 part
outside it; a LoRA "trained" on it is the best rank-``RANK`` approximation of the target,
factored as ``up @ down`` with a gauge drawn from its initialisation seed, plus a little
optimiser noise. So unrelated LoRAs of one base share structure (the common update, the
subspace), LoRAs from one initialisation share a gauge, and the same task trained twice
gives nearly the same product with other factors.

Re-uploads (``VARIANTS``) rewrite the bytes, never the product: dtype (fp16, bf16, fp32),
key convention (kohya <-> PEFT), metadata (stripped or rewritten), alpha/scale (kohya alpha
against the scale of ``up``) and factor refactoring (``up @ Q``, ``inv(Q) @ down``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tests.lora_variants import MODULES, Weights, kohya_lora, peft_lora, rescaled

RANK = 8
ALPHA = 4.0
SUBSPACE = 16
TASK_RANK = 4
COMMON_SHARE = 1.0  # weight of the common update against the task's own part in the subspace
NOISE = 0.02  # optimiser noise, relative to each factor's scale
Matrix = npt.NDArray[np.float64]
REWRITTEN = {"ss_output_name": "soft_light_v2", "ss_network_dim": "8", "note": "my own work"}
TRAINED_METADATA = {"ss_output_name": "original", "ss_network_dim": "8", "ss_seed": "1"}


@dataclass(frozen=True)
class SharedBase:
    """Per module path: the fine-tuning subspace (out and in bases) and the common update."""

    subspaces: dict[str, tuple[Matrix, Matrix]]
    common: dict[str, Matrix]


def shared_base(seed: int) -> SharedBase:
    subspaces, common = {}, {}
    for path, out, inp in MODULES:
        rng = np.random.default_rng([seed, zlib.crc32(path.encode())])
        left, _ = np.linalg.qr(rng.standard_normal((out, SUBSPACE)))
        right, _ = np.linalg.qr(rng.standard_normal((inp, SUBSPACE)))
        subspaces[path] = (left, right)
        common[path] = rng.standard_normal((SUBSPACE, SUBSPACE)) / SUBSPACE
    return SharedBase(subspaces, common)


def trained_lora(base: SharedBase, task: int, init: int) -> Weights:
    """A LoRA fitted to ``task``'s target update, from initialisation seed ``init``."""
    weights: Weights = {}
    for path, out, inp in MODULES:
        key = zlib.crc32(path.encode())
        task_rng = np.random.default_rng([task, key, 1])
        init_rng = np.random.default_rng([init, key, 2])
        left, right = base.subspaces[path]
        inside = (
            COMMON_SHARE * base.common[path]
            + task_rng.standard_normal((SUBSPACE, SUBSPACE)) / SUBSPACE
        )
        outside_l = task_rng.standard_normal((out, TASK_RANK)) / np.sqrt(out)
        outside_r = task_rng.standard_normal((inp, TASK_RANK)) / np.sqrt(inp)
        factor_l = np.hstack([left @ inside, outside_l])
        factor_r = np.hstack([right, outside_r])
        up, down = _best_rank(factor_l, factor_r, init_rng)
        weights[path] = (up.astype(np.float32), down.astype(np.float32), ALPHA)
    return weights


def _best_rank(
    factor_l: Matrix, factor_r: Matrix, init_rng: np.random.Generator
) -> tuple[Matrix, Matrix]:
    """``up @ down`` nearest ``factor_l @ factor_r.T`` at rank RANK, in the gauge and with the
    optimiser noise of one initialisation; scaled like trained kohya factors."""
    q_l, r_l = np.linalg.qr(factor_l)
    q_r, r_r = np.linalg.qr(factor_r)
    p, s, qt = np.linalg.svd(r_l @ r_r.T)
    root = np.sqrt(s[:RANK])
    gauge = init_rng.standard_normal((RANK, RANK)) + 2.0 * np.eye(RANK)
    up = (q_l @ p[:, :RANK] * root) @ gauge
    down = np.linalg.solve(gauge, root[:, None] * qt[:RANK] @ q_r.T)
    up *= 0.01 / max(float(np.abs(up).mean()), 1e-12)
    down *= 0.05 / max(float(np.abs(down).mean()), 1e-12)
    up += init_rng.standard_normal(up.shape) * NOISE * float(np.abs(up).mean())
    down += init_rng.standard_normal(down.shape) * NOISE * float(np.abs(down).mean())
    return up, down


def refactored(weights: Weights, seed: int) -> Weights:
    """The same products with other factors: ``up @ Q`` and ``inv(Q) @ down``."""
    rng = np.random.default_rng(seed)
    out: Weights = {}
    for path, (up, down, alpha) in weights.items():
        q = rng.standard_normal((up.shape[1], up.shape[1])) + 3.0 * np.eye(up.shape[1])
        new_up = (up.astype(np.float64) @ q).astype(np.float32)
        new_down = np.linalg.solve(q, down.astype(np.float64)).astype(np.float32)
        out[path] = (new_up, new_down, alpha)
    return out


def save_original(weights: Weights, target: Path) -> Path:
    return kohya_lora(weights, target, metadata=TRAINED_METADATA)


Variant = Callable[[Weights, Path], Path]
VARIANTS: dict[str, Variant] = {
    "fp16_peft_stripped": lambda w, p: peft_lora(w, p, dtype="float16"),
    "bf16_kohya_rewritten": lambda w, p: kohya_lora(w, p, dtype="bfloat16", metadata=REWRITTEN),
    "fp32_peft": lambda w, p: peft_lora(w, p),
    "alpha_x2_fp16_kohya": lambda w, p: kohya_lora(
        rescaled(w, 2.0), p, dtype="float16", metadata=TRAINED_METADATA
    ),
    "alpha_half_bf16_peft": lambda w, p: peft_lora(rescaled(w, 0.5), p, dtype="bfloat16"),
    "stripped_renamed_kohya": lambda w, p: kohya_lora(w, p),
    "refactored_fp16_kohya": lambda w, p: kohya_lora(
        refactored(w, 7), p, dtype="float16", metadata=REWRITTEN
    ),
}
