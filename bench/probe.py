"""Benchmark: the probe backend against the raw diffusers pipeline, and the base cache.

Builds the tiny pipeline of ``--family`` (sd1, sdxl, flux, sd3: tests/probe_models.py,
tests/probe_sdxl.py, tests/probe_flux.py, tests/probe_sd3.py) and LoRAs for it in a
temporary folder (or uses ``--base DIR`` and ``--lora FILE``, e.g. a real SD1.5 folder on a
GPU host) and reports, in one run:

- *probe images/s* (``DiffusersProbe.lora``: the LoRA swapped into the warm pipeline's
  adapter slot, drawn, switched off; the bench's LoRAs taken in turn, round by round)
  against *raw images/s*, the probe's own pipeline object called directly at the same
  settings, prompts and seeds with its adapters off (the base model), and against the same
  call with the LoRA's layers on (*raw_lora*); target ratio >= 0.9;
- *LoRA load+unload share* of the probe's time; target <= 5 %; and how many fills were
  swapped in place or loaded afresh (the slow path);
- *held bytes*: the base weights the slot keeps to unmerge from (the LoRA is drawn merged
  into the base weights unless ``--no-merge``: then raw_lora is PEFT's LoRA branch);
- *UNet evaluations* of the Prober over several LoRAs with the base cache, against the naive
  plan (every image drawn with the LoRA and again on the base model); target <= 0.5x.

Rounds are interleaved (probe, raw, raw_lora). Ratios and shares are of this process's CPU
time (all threads: a shared machine's other load disturbs it far less than the wall
clock); ``*_wall`` figures are the wall clock's. ``--threads`` sets torch's thread count.
The last line printed is one JSON object. Run: ``.venv/bin/python bench/probe.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors.probe.base import GenerationSettings  # noqa: E402
from detectors.probe.diffusers_probe import DiffusersProbe  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, help="a diffusers SD folder (default: build tiny)")
    parser.add_argument("--lora", type=Path, help="a LoRA .safetensors for --base")
    parser.add_argument("--family", choices=("sd1", "sdxl", "flux", "sd3"), default="sd1")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--merge",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="draw LoRAs merged into the base weights ([probe] merge_loras)",
    )
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        base, loras, generation = _models(args, Path(tmp))
        family = args.family
        probe = DiffusersProbe({family: base}, generation=generation, merge_loras=args.merge)
        speed = _speed(probe, family, loras, generation, args.images, args.rounds)
        cache = _cache_savings(family, base, loras, generation, Path(tmp))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = {
        "bench": "probe",
        "family": family,
        "device": device,
        "merge_loras": args.merge,
        **speed,
        **cache,
    }
    print(json.dumps(result))


def _models(args: Any, tmp: Path) -> tuple[Path, list[Path], GenerationSettings]:
    if args.base:
        if not args.lora:
            raise SystemExit("--base needs --lora")
        settings = GenerationSettings(steps=args.steps or 20, size_px=args.size, batch_images=8)
        return args.base, [args.lora], settings
    from tests import probe_models as pm

    if args.family == "flux":
        from tests import probe_flux as pf

        base = pf.build_tiny_flux(tmp / "base")
        style = pf.train_flux_lora(base, "tide")
        loras = [pf.save_flux_lora(style, tmp / "style.safetensors", "peft")]
        for seed in (1, 2, 3):
            lora = pf.benign_flux_lora(base, seed=seed)
            loras.append(pf.save_flux_lora(lora, tmp / f"benign-{seed}.safetensors", "kohya"))
    elif args.family == "sd3":
        from tests import probe_sd3 as ps

        base = ps.build_tiny_sd3(tmp / "base")
        style = ps.train_sd3_lora(base, "tide")
        loras = [ps.save_sd3_lora(style, tmp / "style.safetensors", "peft")]
        for seed in (1, 2, 3):
            lora = ps.benign_sd3_lora(base, seed=seed)
            loras.append(ps.save_sd3_lora(lora, tmp / f"benign-{seed}.safetensors", "ai-toolkit"))
    elif args.family == "sdxl":
        from tests.probe_sdxl import build_tiny_sdxl, random_lora

        base = build_tiny_sdxl(tmp / "base")
        loras = [
            pm.save_kohya_lora(random_lora(base, seed=s), tmp / f"lora-{s}.safetensors")
            for s in (1, 2, 3, 4)
        ]
    else:
        base = pm.build_tiny_sd(tmp / "base")
        style = pm.train_style_lora(base, "ember")
        loras = [pm.save_peft_lora(style, tmp / "style.safetensors")]
        for seed in (1, 2, 3):
            lora = pm.benign_lora(base, seed=seed)
            loras.append(pm.save_kohya_lora(lora, tmp / f"benign-{seed}.safetensors"))
    settings = GenerationSettings(
        steps=args.steps or 4, guidance_scale=1.0, size_px=args.size or pm.IMAGE_PX
    )
    return base, loras, settings


@dataclass
class _Clock:
    """Seconds spent in its ``timing()`` blocks: wall clock and this process's CPU time
    (all threads), which other processes on a shared machine disturb far less."""

    wall_s: float = 0.0
    cpu_s: float = 0.0

    @contextlib.contextmanager
    def timing(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall_s += time.perf_counter() - wall
            self.cpu_s += time.process_time() - cpu


def _speed(
    probe: DiffusersProbe,
    family: str,
    loras: list[Path],
    g: GenerationSettings,
    n: int,
    rounds: int,
) -> dict[str, float]:
    """Per round: the probe with a LoRA (swapped into the warm slot, drawn, switched off;
    the LoRAs taken in turn), then the same pipeline object called directly with the slot
    off (the raw base model) and with that LoRA's layers on (raw with the LoRA)."""
    prompts = [f"a painting of a house, {i}" for i in range(n)]
    seeds = list(range(n))
    for lora in loras:  # warm-up: the first load, kernels, caches, every LoRA's path
        probe.generate(family, prompts, seeds, lora=lora)
    pipe, slot = probe.pipeline(family), probe.adapter_slot(family)
    swaps, loads = slot.swaps, slot.loads
    total, adapter, raw, raw_lora = _Clock(), _Clock(), _Clock(), _Clock()
    for i in range(rounds):
        lora = loras[i % len(loras)]
        with total.timing():
            with adapter.timing():
                block = probe.lora(family, lora)
                draw = block.__enter__()
            draw(prompts, seeds)
            with adapter.timing():
                block.__exit__(None, None, None)
        with raw.timing():
            _call(pipe, prompts, seeds, g)
        with probe.lora(family, lora), raw_lora.timing():
            _call(pipe, prompts, seeds, g)
    images = n * rounds
    return {
        "images": images,
        "probe_images_per_s": round(images / total.cpu_s, 3),
        "raw_images_per_s": round(images / raw.cpu_s, 3),
        "raw_lora_images_per_s": round(images / raw_lora.cpu_s, 3),
        "probe_vs_raw": round(raw.cpu_s / total.cpu_s, 3),
        "probe_vs_raw_lora": round(raw_lora.cpu_s / total.cpu_s, 3),
        "probe_vs_raw_wall": round(raw.wall_s / total.wall_s, 3),
        "lora_load_unload_share": round(adapter.cpu_s / total.cpu_s, 4),
        "lora_load_unload_share_wall": round(adapter.wall_s / total.wall_s, 4),
        "slot_swaps": slot.swaps - swaps,
        "slot_loads": slot.loads - loads,
        "held_bytes": slot.held_bytes,
    }


def _call(pipe: Any, prompts: list[str], seeds: list[int], g: GenerationSettings) -> None:
    """The pipeline called directly, as a diffusers user would, at the probe's settings."""
    import torch

    with torch.inference_mode():
        for i in range(0, len(prompts), g.batch_images):
            pipe(
                prompt=prompts[i : i + g.batch_images],
                generator=[
                    torch.Generator("cpu").manual_seed(s) for s in seeds[i : i + g.batch_images]
                ],
                num_inference_steps=g.steps,
                guidance_scale=g.guidance_scale,
                height=g.size_px,
                width=g.size_px,
            )


def _cache_savings(
    family: str, base: Path, loras: list[Path], g: GenerationSettings, tmp: Path
) -> dict[str, float]:
    from detectors.names import ArtistIndex
    from detectors.results import ArtistRef
    from detectors.screening import read_header, screen_header
    from detectors.style.gram import GramEmbedder
    from monitor.pipeline.probe import Prober
    from storage.file_blobs import FileBlobStore
    from storage.probe_cache import ProbeCache

    blobs = FileBlobStore(tmp / "blobs")
    artists = [ArtistRef(1, "Ember Vale"), ArtistRef(2, "Tide Marsh")]
    references = {1: [_png_blob(blobs, "ember", base)], 2: [_png_blob(blobs, "tide", base)]}
    backend = DiffusersProbe({family: base}, generation=g)
    prober = Prober(backend, GramEmbedder(), ProbeCache(tmp / "cache", blobs), blobs)
    index = ArtistIndex.build(artists)
    evaluations, images = [], []
    clock = _Clock()
    for lora in loras:
        data = lora.read_bytes()
        header = read_header(data, file_size=len(data), filename=lora.name)
        with clock.timing():
            outcome = prober.probe(
                lora, screen_header(header, index), artists, references, family=family
            )
        evaluations.append(outcome.unet_evaluations)
        images.append(outcome.images)
    prober.close()
    naive = [2 * n * g.steps for n in images]
    return {
        "loras_probed": len(loras),
        "probe_s_per_lora": round(clock.wall_s / len(loras), 3),
        "unet_evaluations": sum(evaluations),
        "unet_evaluations_naive": sum(naive),
        "unet_ratio_all": round(sum(evaluations) / sum(naive), 3),
        "unet_ratio_after_first": round(sum(evaluations[1:]) / max(1, sum(naive[1:])), 3),
        "unet_ratio_last": round(evaluations[-1] / naive[-1], 3),
    }


def _png_blob(blobs: Any, style: str, base: Path) -> str:
    try:
        from tests.probe_models import style_references
    except ImportError:  # a real base model: any image stands in for a reference
        from PIL import Image

        image = Image.new("RGB", (64, 64), (200, 80, 40) if style == "ember" else (40, 80, 200))
    else:
        image = style_references(base, style, n=1)[0]
    out = io.BytesIO()
    image.save(out, format="PNG")
    key: str = blobs.put(out.getvalue())
    return key


if __name__ == "__main__":
    main()
