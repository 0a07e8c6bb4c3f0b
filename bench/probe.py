"""Benchmark: the probe backend against the raw diffusers pipeline, and the base cache.

Builds the tiny pipeline of ``--family`` (sd1, sdxl, flux, sd3: tests/probe_models.py,
tests/probe_sdxl.py, tests/probe_flux.py, tests/probe_sd3.py) and LoRAs for it in a
temporary folder (or uses ``--base DIR`` and ``--lora FILE``, e.g. a real SD1.5 folder on a
GPU host) and reports, in one run:

- *probe images/s* (DiffusersProbe.generate with a LoRA applied, load and unload included)
  against *raw images/s* (the same pipeline called directly at the same settings, prompts
  and seeds, LoRA kept loaded); target ratio >= 0.9;
- *LoRA load+unload share* of the probe's time; target <= 5 %;
- *UNet evaluations* of the Prober over several LoRAs with the base cache, against the naive
  plan (every image drawn with the LoRA and again on the base model); target <= 0.5x.

The last line printed is one JSON object. Run: ``.venv/bin/python bench/probe.py``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        base, loras, generation = _models(args, Path(tmp))
        family = args.family
        probe = DiffusersProbe({family: base}, generation=generation)
        speed = _speed(probe, family, loras[0], generation, args.images, args.rounds)
        cache = _cache_savings(family, base, loras, generation, Path(tmp))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = {"bench": "probe", "family": family, "device": device, **speed, **cache}
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


def _speed(
    probe: DiffusersProbe, family: str, lora: Path, g: GenerationSettings, n: int, rounds: int
) -> dict[str, float]:
    prompts = [f"a painting of a house, {i}" for i in range(n)]
    seeds = list(range(n))
    probe.generate(family, prompts, seeds, lora=lora)  # warm-up: load, kernels, caches
    pipe = probe.pipeline(family)
    probe_s = load_s = raw_s = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        with probe.lora(family, lora) as draw:
            load_s += time.perf_counter() - start
            draw(prompts, seeds)
            before_unload = time.perf_counter()
        probe_s += time.perf_counter() - start
        load_s += time.perf_counter() - before_unload
        raw_s += _raw(pipe, prompts, seeds, g, lora)
    return {
        "images": n * rounds,
        "probe_images_per_s": round(n * rounds / probe_s, 3),
        "raw_images_per_s": round(n * rounds / raw_s, 3),
        "probe_vs_raw": round(raw_s / probe_s, 3),
        "lora_load_unload_share": round(load_s / probe_s, 4),
    }


def _raw(
    pipe: Any, prompts: list[str], seeds: list[int], g: GenerationSettings, lora: Path
) -> float:
    """The pipeline called directly, LoRA loaded outside the timing."""
    import torch

    pipe.load_lora_weights(str(lora), adapter_name="raw")
    start = time.perf_counter()
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
    elapsed = time.perf_counter() - start
    pipe.unload_lora_weights()
    return elapsed


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
    start = time.perf_counter()
    for lora in loras:
        data = lora.read_bytes()
        header = read_header(data, file_size=len(data), filename=lora.name)
        outcome = prober.probe(
            lora, screen_header(header, index), artists, references, family=family
        )
        evaluations.append(outcome.unet_evaluations)
        images.append(outcome.images)
    elapsed = time.perf_counter() - start
    prober.close()
    naive = [2 * n * g.steps for n in images]
    return {
        "loras_probed": len(loras),
        "probe_s_per_lora": round(elapsed / len(loras), 3),
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
