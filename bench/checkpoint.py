"""Benchmark: probing a full checkpoint against probing a LoRA, on the same base model.

Builds the tiny SD1-style pipeline of tests/probe_models.py in a temporary folder, a benign
LoRA for it and the same LoRA fused into a single-file ldm-layout checkpoint
(tests/probe_checkpoints.py), then times, in one run and on one warm backend:

- *draw*: ``DiffusersProbe.lora`` / ``DiffusersProbe.checkpoint`` blocks drawing the plan's
  images (load, images and unload/restore included), median of ``--rounds``;
- *apply*: the same blocks drawing nothing, i.e. the cost of putting the file on the base
  model and taking it off again.

Prints the checkpoint/LoRA ratios; the last line printed is one JSON object.
Run: ``.venv/bin/python bench/checkpoint.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors.probe.base import Draw, GenerationSettings  # noqa: E402
from detectors.probe.diffusers_probe import DiffusersProbe  # noqa: E402
from detectors.probe.plan import SEEDS, SUBJECTS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    from tests import probe_models as pm
    from tests.probe_checkpoints import save_checkpoint

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = pm.build_tiny_sd(root / "base")
        lora = pm.save_peft_lora(pm.benign_lora(base, seed=1), root / "lora.safetensors")
        checkpoint = save_checkpoint(base, root / "checkpoint.safetensors", lora)
        generation = GenerationSettings(steps=pm.STEPS, size_px=pm.IMAGE_PX, batch_images=8)
        probe = DiffusersProbe({"sd1": base}, device="cpu", generation=generation)
        prompts = [SUBJECTS[i % len(SUBJECTS)] for i in range(args.images)]
        seeds = [SEEDS[i % len(SEEDS)] + i for i in range(args.images)]
        probe.generate("sd1", prompts, seeds)  # warm: the pipeline loaded once
        timings = {}
        for name, block in (
            ("lora", lambda: probe.lora("sd1", lora)),
            ("checkpoint", lambda: probe.checkpoint("sd1", checkpoint)),
        ):
            timings[f"{name}_draw_s"] = _median(block, prompts, seeds, args.rounds)
            timings[f"{name}_apply_s"] = _median(block, [], [], args.rounds)
        sizes = {"lora_bytes": lora.stat().st_size, "checkpoint_bytes": checkpoint.stat().st_size}
    result = {
        "bench": "checkpoint",
        "device": "cpu",
        "images": args.images,
        **{k: round(v, 4) for k, v in timings.items()},
        **sizes,
        "draw_ratio": round(timings["checkpoint_draw_s"] / timings["lora_draw_s"], 3),
        "apply_ratio": round(timings["checkpoint_apply_s"] / timings["lora_apply_s"], 3),
    }
    print(
        f"checkpoint/LoRA probe time: {result['draw_ratio']}x (apply+remove alone "
        f"{result['apply_ratio']}x), {args.images} images, median of {args.rounds}"
    )
    print(json.dumps(result))


def _median(
    block: Callable[[], AbstractContextManager[Draw]],
    prompts: list[str],
    seeds: list[int],
    rounds: int,
) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        with block() as draw:
            if prompts:
                draw(prompts, seeds)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    main()
