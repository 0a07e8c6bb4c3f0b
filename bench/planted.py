"""Benchmark: planted style-copying LoRAs among benign ones, through the whole pipeline.

Builds, reproducibly from ``--seed`` and cached under ``bench/.data/planted-<seed>[-quick]``:

- a tiny SD1-style base model (tests/probe_models.py's builder, decoder made a near-linear
  colour map) whose UNet is trained on captioned neutral-world scenes (bench/planted_world.py);
- synthetic artists, each a procedural style (palette, stroke texture, outlines, brush noise,
  composition); all registered, two thirds "documented" (50 references), one third
  "obscure" (5 references);
- one planted LoRA per artist, trained with PEFT on 48 of that artist's captioned images
  (references are other images): a third captioned "by <name>" and saved with kohya
  ``ss_tag_frequency`` metadata naming them, a third with a trigger word only (in the tags
  and ``modelspec.trigger_phrase``), a third saved with no metadata at all;
- benign LoRAs: new subjects in the base style, and styles of unregistered artists (some
  naming those artists in their metadata).

Every LoRA goes through screening (``detectors.screening`` on the file's header) and the
probe (``monitor.pipeline.probe.Prober``: DiffusersProbe, GramEmbedder, base cache). A LoRA's score
is its best artist's ``combined_score(metadata score, style_score(lift, threshold))``; the lift
threshold is calibrated on benign LoRAs at 1 % FPR, leaving each benign LoRA out of its own
calibration. Reported overall and per split: ROC AUC, TPR at 1 % FPR, top-1 attribution
(the best artist is the planted one), images per LoRA and total time. The last line printed
is one JSON object. Run: ``.venv/bin/python bench/planted.py [--quick] [--seed N]``.
"""

# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import planted_world as world  # noqa: E402
from bench.quality_metrics import roc_auc, top1, tpr_at_fpr  # noqa: E402

DATA = ROOT / "bench" / ".data"
TRAIN_IMAGES = 48
DOCUMENTED_REFERENCES = 50
OBSCURE_REFERENCES = 5
FPR = 0.01
SYLLABLES = ("ka", "lo", "mi", "ren", "sa", "tor", "vel", "dun", "bri", "osk", "ma", "ju", "fen")
DIAGNOSTIC_IMAGES = 8
TARGETS = {"auc": 0.99, "tpr_at_1pct_fpr": 0.95, "top1": 0.95, "images_per_lora": 8}


@dataclass(frozen=True, slots=True)
class Scale:
    artists: int
    benign: int
    base_steps: int
    lora_steps: int


FULL = Scale(artists=21, benign=21, base_steps=100, lora_steps=80)
QUICK = Scale(artists=9, benign=9, base_steps=60, lora_steps=80)


@dataclass(frozen=True, slots=True)
class LoraSpec:
    """One LoRA to train: its style, captions and what its file's metadata says."""

    name: str
    planted: bool
    artist_id: int | None  # the copied registered artist, planted only
    metadata: str  # "name", "trigger" or "none"
    obscure: bool
    style_seed: int  # -1: the neutral base style
    subjects: tuple[str, ...]
    caption_tail: str  # after the subject: ", by <name>", ", <trigger>" or ""
    tags: str  # what ss_tag_frequency names ("" for none)


def artist_names(count: int, seed: int) -> list[str]:
    """Distinct two-word names whose surnames are distinct too."""
    rng = np.random.default_rng(seed)
    names: list[str] = []
    surnames: set[str] = set()
    while len(names) < count:
        first = "".join(rng.choice(SYLLABLES, 2))
        last = "".join(rng.choice(SYLLABLES, 3))
        if last not in surnames:
            surnames.add(last)
            names.append(f"{first.title()} {last.title()}")
    return names


def plan_world(scale: Scale, seed: int) -> tuple[list[str], list[LoraSpec]]:
    """Registered artists' names (id i+1 is names[i]) and every LoRA to train."""
    names = artist_names(scale.artists + scale.benign, seed)
    registered, unregistered = names[: scale.artists], names[scale.artists :]
    specs = []
    for i, name in enumerate(registered):
        mode = ("name", "trigger", "none")[i % 3]
        trigger = f"zq{''.join(name.lower().split())[:5]}style"
        tail = {"name": f", by {name.lower()}", "trigger": f", {trigger}", "none": ""}[mode]
        specs.append(
            LoraSpec(
                name=f"planted-{i:02d}",
                planted=True,
                artist_id=i + 1,
                metadata=mode,
                obscure=i % 3 == (i // 3) % 3,
                style_seed=seed * 1000 + i,
                subjects=world.BASE_SUBJECTS,
                caption_tail=tail,
                tags={"name": f"by {name.lower()}", "trigger": trigger, "none": ""}[mode],
            )
        )
    for j in range(scale.benign):
        new_object = j % 2 == 0
        other = unregistered[j]
        named = j % 4 == 1
        subjects = (world.NEW_SUBJECTS[j // 2 % len(world.NEW_SUBJECTS)],)
        specs.append(
            LoraSpec(
                name=f"benign-{j:02d}",
                planted=False,
                artist_id=None,
                metadata="name" if named else ("trigger" if new_object else "none"),
                obscure=False,
                style_seed=-1 if new_object else seed * 1000 + 500 + j,
                subjects=subjects if new_object else world.BASE_SUBJECTS,
                caption_tail=f", by {other.lower()}" if named else "",
                tags=f"by {other.lower()}" if named else (subjects[0] if new_object else ""),
            )
        )
    return registered, specs


def style_of(style_seed: int) -> world.Style:
    return world.neutral_style() if style_seed < 0 else world.random_style(style_seed)


def train_one(model_dir: str, spec_json: str, steps: int, out: str) -> str:
    """Train and save one LoRA (run in a worker process, one torch thread)."""
    import torch

    from bench import planted_models as models
    from tests import probe_models as pm

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    spec = LoraSpec(**json.loads(spec_json))
    style = style_of(spec.style_seed)
    subjects, fields = world.scenes(style, spec.subjects, TRAIN_IMAGES, seed=spec.style_seed + 7)
    captions = [f"a {s}{spec.caption_tail}" for s in subjects]
    seed = abs(spec.style_seed) + 11
    state = models.train_lora(Path(model_dir), captions, fields, steps=steps, seed=seed)
    path = Path(out)
    if spec.metadata == "none":
        pm.save_peft_lora(state, path)
    else:
        pm.save_kohya_lora(state, path, metadata=_kohya_metadata(spec, captions))
    return out


def _kohya_metadata(spec: LoraSpec, captions: list[str]) -> dict[str, str]:
    counts: dict[str, int] = {}
    for caption in captions:
        for tag in caption.split(", "):
            counts[tag] = counts.get(tag, 0) + 1
    folder = f"10_{spec.tags}"
    meta = {"ss_tag_frequency": json.dumps({folder: counts}), "ss_network_dim": "4"}
    if spec.metadata == "trigger":
        meta["modelspec.trigger_phrase"] = spec.tags
    return meta


def build(scale: Scale, seed: int, folder: Path, workers: int) -> tuple[list[str], list[LoraSpec]]:
    """Base model, references and LoRA files under ``folder``; reuses what is there."""
    from bench import planted_models as models

    names, specs = plan_world(scale, seed)
    base = folder / "base"
    if not (base / "model_index.json").is_file():
        subjects, fields = world.scenes(world.neutral_style(), world.BASE_SUBJECTS, 240, seed)
        models.build_base(
            base, [f"a {s}" for s in subjects], fields, steps=scale.base_steps, seed=seed
        )
    todo = [s for s in specs if not (folder / "loras" / f"{s.name}.safetensors").is_file()]
    if todo:
        context = get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            jobs = [
                pool.submit(
                    train_one,
                    str(base),
                    json.dumps(asdict(s)),
                    scale.lora_steps,
                    str(folder / "loras" / f"{s.name}.safetensors"),
                )
                for s in todo
            ]
            for job in jobs:
                job.result()
    return names, specs


def reference_blobs(folder: Path, specs: list[LoraSpec], blobs: Any) -> dict[int, list[str]]:
    """Each registered artist's reference images (not the LoRA's training images), as blobs."""
    import io

    from bench import planted_models as models

    references: dict[int, list[str]] = {}
    for spec in specs:
        if not spec.planted or spec.artist_id is None:
            continue
        count = OBSCURE_REFERENCES if spec.obscure else DOCUMENTED_REFERENCES
        _, fields = world.scenes(
            style_of(spec.style_seed), world.BASE_SUBJECTS, count, seed=spec.style_seed + 99
        )
        keys = []
        for image in models.render(folder / "base", fields):
            out = io.BytesIO()
            image.save(out, format="PNG")
            keys.append(blobs.put(out.getvalue()))
        references[spec.artist_id] = keys
    return references


@dataclass(frozen=True, slots=True)
class Probed:
    spec: LoraSpec
    metadata: dict[int, float]  # artist id -> screening score
    lifts: dict[int, float]
    images: int


def probe_all(
    folder: Path, names: list[str], specs: list[LoraSpec], max_images: int, embedder_name: str
) -> list[Probed]:
    """Screening and probe of every LoRA file, as the service runs them."""
    import shutil

    from bench.planted_models import SAMPLER_STEPS
    from detectors.names import ArtistIndex
    from detectors.probe.base import GenerationSettings
    from detectors.probe.diffusers_probe import DiffusersProbe
    from detectors.results import ArtistRef
    from detectors.screening import read_header, screen_header
    from detectors.style.base import StyleEmbedder
    from detectors.style.gram import GramEmbedder
    from detectors.style.style_v1 import StyleV1Embedder
    from monitor.pipeline.probe import Prober
    from storage.file_blobs import FileBlobStore
    from storage.probe_cache import ProbeCache
    from tests.probe_models import IMAGE_PX

    run = folder / "run"
    shutil.rmtree(run, ignore_errors=True)  # every run draws its base images afresh
    blobs = FileBlobStore(run / "blobs")
    artists = [ArtistRef(i + 1, name) for i, name in enumerate(names)]
    index = ArtistIndex.build(artists)
    references = reference_blobs(folder, specs, blobs)
    generation = GenerationSettings(
        steps=SAMPLER_STEPS, guidance_scale=1.0, size_px=IMAGE_PX, batch_images=8
    )
    backend = DiffusersProbe({"sd1": folder / "base"}, device="cpu", generation=generation)
    embedder: StyleEmbedder = StyleV1Embedder() if embedder_name == "style" else GramEmbedder()
    prober = Prober(
        backend, embedder, ProbeCache(run / "cache", blobs), blobs, max_images=max_images
    )
    out = []
    try:
        for spec in specs:
            path = folder / "loras" / f"{spec.name}.safetensors"
            data = path.read_bytes()
            header = read_header(data, file_size=len(data), filename=path.name)
            screening = screen_header(header, index)
            outcome = prober.probe(path, screening, artists, references, family="sd1")
            meta = {m.artist_id: m.score for m in screening.matches}
            out.append(Probed(spec, meta, dict(outcome.lifts), outcome.images))
    finally:
        prober.close()
    return out


def diagnose(
    folder: Path, specs: list[LoraSpec], probed: list[Probed], embedder_name: str
) -> dict[str, float]:
    """Whether the embedder tells the artists apart, and whether the LoRAs draw them.

    ``reference_top1``: each registered artist's reference image, leave-one-out, is nearest
    (cosine) to its own artist's centroid. ``lora_image_top1``: the planted LoRAs' own
    images (the plan's neutral prompts, ``DIAGNOSTIC_IMAGES`` of them, mean vector) are
    nearest to the planted artist's centroid. ``lora_lift_top1``: the probe's largest lift
    is the planted artist's (metadata ignored).
    """
    from bench import planted_models as models
    from bench.planted_models import SAMPLER_STEPS
    from detectors.probe import plan as prompt_plan
    from detectors.probe.base import GenerationSettings
    from detectors.probe.diffusers_probe import DiffusersProbe
    from detectors.style.base import StyleEmbedder
    from detectors.style.gram import GramEmbedder
    from detectors.style.style_v1 import StyleV1Embedder
    from tests.probe_models import IMAGE_PX

    embedder: StyleEmbedder = StyleV1Embedder() if embedder_name == "style" else GramEmbedder()
    planted = [s for s in specs if s.planted and s.artist_id is not None]
    refs: dict[int, np.ndarray] = {}
    for spec in planted:
        count = OBSCURE_REFERENCES if spec.obscure else DOCUMENTED_REFERENCES
        _, fields = world.scenes(
            style_of(spec.style_seed), world.BASE_SUBJECTS, count, seed=spec.style_seed + 99
        )
        refs[int(spec.artist_id or 0)] = embedder.embed(models.render(folder / "base", fields))
    ids = sorted(refs)
    sums = {a: refs[a].sum(0) for a in ids}
    hits = total = 0
    for a in ids:
        for vector in refs[a]:
            centroids = np.stack(
                [
                    (sums[b] - vector) / (len(refs[b]) - 1) if b == a else sums[b] / len(refs[b])
                    for b in ids
                ]
            )
            centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-12
            hits += int(ids[int(np.argmax(centroids @ vector))] == a)
            total += 1
    centroids = np.stack([sums[b] / len(refs[b]) for b in ids])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-12
    generation = GenerationSettings(
        steps=SAMPLER_STEPS, guidance_scale=1.0, size_px=IMAGE_PX, batch_images=8
    )
    backend = DiffusersProbe({"sd1": folder / "base"}, device="cpu", generation=generation)
    plan = prompt_plan.quick_pass((), DIAGNOSTIC_IMAGES)
    image_hits = 0
    for spec in planted:
        images = backend.generate(
            "sd1",
            [p.prompt for p in plan],
            [p.seed for p in plan],
            lora=folder / "loras" / f"{spec.name}.safetensors",
        )
        mean = embedder.embed(images).mean(0)
        image_hits += int(ids[int(np.argmax(centroids @ mean))] == spec.artist_id)
    by_lift = [
        max(p.lifts, key=lambda a: p.lifts[a]) == p.spec.artist_id
        for p in probed
        if p.spec.planted and p.lifts
    ]
    return {
        "reference_top1": round(hits / max(total, 1), 4),
        "lora_image_top1": round(image_hits / max(len(planted), 1), 4),
        "lora_lift_top1": round(float(np.mean(by_lift)) if by_lift else 0.0, 4),
    }


def save_probed(path: Path, probed: list[Probed]) -> None:
    """What the probe found for every LoRA, so ``--rescore`` can try scoring rules alone."""
    rows = [
        {"name": p.spec.name, "metadata": p.metadata, "lifts": p.lifts, "images": p.images}
        for p in probed
    ]
    path.write_text(json.dumps(rows))


def load_probed(path: Path, specs: list[LoraSpec]) -> list[Probed]:
    by_name = {s.name: s for s in specs}
    return [
        Probed(
            by_name[row["name"]],
            {int(a): float(v) for a, v in row["metadata"].items()},
            {int(a): float(v) for a, v in row["lifts"].items()},
            int(row["images"]),
        )
        for row in json.loads(path.read_text())
    ]


def scored(probed: list[Probed]) -> list[tuple[Probed, float, int | None]]:
    """Each LoRA's score and best artist; benign LoRAs calibrated leave-one-out."""
    from detectors.probe.scoring import calibrate_threshold, combined_score, style_score

    benign = [p for p in probed if not p.spec.planted]
    out: list[tuple[Probed, float, int | None]] = []
    for p in probed:
        others = [max(b.lifts.values()) for b in benign if b is not p]
        threshold = calibrate_threshold(others, fpr=FPR)
        per_artist = {
            a: combined_score(p.metadata.get(a, 0.0), style_score(lift, threshold))
            for a, lift in p.lifts.items()
        }
        best = max(per_artist, key=lambda a: (per_artist[a], p.lifts[a]))
        out.append((p, per_artist[best], best))
    return out


def figures(rows: list[tuple[Probed, float, int | None]], keep: Any) -> dict[str, float]:
    positives = [r for r in rows if r[0].spec.planted and keep(r[0].spec)]
    negatives = [r[1] for r in rows if not r[0].spec.planted]
    scores = [r[1] for r in positives]
    return {
        "loras": len(positives),
        "auc": round(roc_auc(scores, negatives), 4),
        "tpr_at_1pct_fpr": round(tpr_at_fpr(scores, negatives, FPR), 4),
        "top1": round(top1([r[2] for r in positives], [r[0].spec.artist_id for r in positives]), 4),
    }


def report(
    rows: list[tuple[Probed, float, int | None]], seconds: dict[str, float]
) -> dict[str, Any]:
    splits = {
        "overall": lambda s: True,
        "metadata": lambda s: s.metadata == "name",
        "no_metadata": lambda s: s.metadata != "name",
        "trigger_only": lambda s: s.metadata == "trigger",
        "documented": lambda s: not s.obscure,
        "obscure": lambda s: s.obscure,
    }
    result: dict[str, Any] = {name: figures(rows, keep) for name, keep in splits.items()}
    images = [r[0].images for r in rows]
    result["benign_loras"] = sum(1 for r in rows if not r[0].spec.planted)
    result["images_per_lora"] = round(float(np.mean(images)), 2)
    result["max_images_per_lora"] = max(images)
    result["obscure_gap_top1"] = round(result["documented"]["top1"] - result["obscure"]["top1"], 4)
    result["obscure_gap_tpr"] = round(
        result["documented"]["tpr_at_1pct_fpr"] - result["obscure"]["tpr_at_1pct_fpr"], 4
    )
    result["seconds"] = seconds
    overall = result["overall"]
    result["targets_met"] = {
        "auc": overall["auc"] >= TARGETS["auc"],
        "tpr_at_1pct_fpr": overall["tpr_at_1pct_fpr"] >= TARGETS["tpr_at_1pct_fpr"],
        "top1": overall["top1"] >= TARGETS["top1"],
        "images_per_lora": result["max_images_per_lora"] <= TARGETS["images_per_lora"],
        "obscure_within_5_points": max(result["obscure_gap_top1"], result["obscure_gap_tpr"])
        <= 0.05,
    }
    return result


def print_table(rows: list[tuple[Probed, float, int | None]]) -> None:
    print(f"{'lora':<11} {'meta':<8} {'obscure':<7} {'score':>6} {'best':>4} {'lift':>6}")
    for p, score, best in rows:
        lift = p.lifts.get(best, 0.0) if best is not None else 0.0
        truth = p.spec.artist_id if p.spec.planted else "-"
        print(
            f"{p.spec.name:<11} {p.spec.metadata:<8} {p.spec.obscure!s:<7} {score:6.3f} "
            f"{best!s:>4} {lift:6.3f}  (true {truth})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="9 artists, 9 benign, less training")
    parser.add_argument("--workers", type=int, default=2, help="LoRA training processes")
    parser.add_argument("--max-images", type=int, default=8, help="probe images per LoRA")
    parser.add_argument(
        "--embedder", choices=["gram", "style"], default="gram", help="gram-v1 or style-v1"
    )
    parser.add_argument(
        "--no-diagnose",
        action="store_true",
        help="skip the diagnostic (reference and LoRA-image nearest-artist top-1)",
    )
    parser.add_argument(
        "--rescore", action="store_true", help="score the last run's saved probe results again"
    )
    args = parser.parse_args()
    import torch

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    torch.set_num_threads(1)
    scale = QUICK if args.quick else FULL
    from bench.planted_models import LORA_TRAINING

    folder = DATA / f"planted-{args.seed}{'-quick' if args.quick else ''}-{LORA_TRAINING}"
    start = time.perf_counter()
    names, specs = build(scale, args.seed, folder, args.workers)
    built = time.perf_counter()
    saved = folder / "probed.json"
    if args.rescore and saved.is_file():
        probed = load_probed(saved, specs)
    else:
        probed = probe_all(folder, names, specs, args.max_images, args.embedder)
        save_probed(saved, probed)
    done = time.perf_counter()
    rows = scored(probed)
    print_table(rows)
    diagnostic = {} if args.no_diagnose else diagnose(folder, specs, probed, args.embedder)
    if diagnostic:
        print("diagnostic: " + ", ".join(f"{k} {v:.2f}" for k, v in diagnostic.items()))
    seconds = {
        "build": round(built - start, 1),
        "probe": round(done - built, 1),
        "total": round(done - start, 1),
    }
    result = {
        "bench": "planted",
        "mode": "quick" if args.quick else "full",
        "seed": args.seed,
        "embedder": args.embedder,
    }
    print(json.dumps({**result, **report(rows, seconds), "diagnostic": diagnostic}))


if __name__ == "__main__":
    main()
