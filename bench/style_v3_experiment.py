"""Experiment behind docs/quality.md's "style-v3 attempt": crop augmentation for style-v1's LDA.

style-v1 fits its LDA on one gram-v1 vector per image (about 48 per artist), so the
within-artist covariance needs heavy shrinkage. Here every training image also gives gram-v1
statistics of five 160 px crops (four corners and the centre) at native scale (no resize,
so brushwork keeps its size), each a training sample for the within-artist covariance; at
inference the projected crop embeddings (and, as a variant, the whole image's) are averaged.

Measured on style-train only, as ``bench/train_style_v1.py`` does (fit on 61 artists, centroid
top-1 on the 15 held out), on two splits: every fifth artist in sorted order from offset 4
(style-v1's own check) and from offset 2 (to tell luck from gain). It writes no weights.
Features (gram-v1 of the whole image and of each crop) are cached under
``~/.cache/stylewatch/style_v3/`` in chunks of 64 images keyed by the images' bytes and the
descriptor code, so reruns take seconds and an interrupted run keeps its finished chunks
(about 3.5 times style-v1's feature cost: 30-60 min for the corpus on one busy core;
``--features-only --reverse`` in a second process fills the cache from the other end). Then
the sweep (3 training sets x 3 inference views x 3 shrinkages x 2 direction counts x 2 splits)
takes a few minutes. Run:
``python bench/style_v3_experiment.py [--data ../shared/data/style-train]``; the last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench.train_style_v1 as v1  # noqa: E402
from detectors.style import descriptors, gram  # noqa: E402
from detectors.style.style_v1 import project  # noqa: E402

Matrix = npt.NDArray[np.float64]
CROP_PX = 160
CACHE = Path.home() / ".cache" / "stylewatch" / "style_v3"
CHUNK = 64
REVERSE = False
SPLITS = {"split A (offset 4)": 4, "split B (offset 2)": 2}


def crop_boxes(size: int = gram.IMAGE_SIZE_PX, crop: int = CROP_PX) -> list[tuple[int, int]]:
    """Top-left corners of the four corner crops and the centre crop."""
    far, mid = size - crop, (size - crop) // 2
    return [(0, 0), (0, far), (far, 0), (far, far), (mid, mid)]


def _code_hash() -> str:
    digest = hashlib.sha256()
    for module in (descriptors, gram):
        digest.update(Path(str(module.__file__)).read_bytes())
    digest.update(repr((CROP_PX, crop_boxes())).encode())
    return digest.hexdigest()[:16]


def features(paths: list[Path]) -> tuple[Matrix, Matrix]:
    """(whole-image gram-v1 vectors (N, D), crop vectors (N, 5, D)), cached on disk.

    Cached in chunks of ``CHUNK`` images, each keyed by its images' bytes and the descriptor
    code, written atomically: an interrupted run keeps what it finished, and a second process
    started with ``--reverse`` fills the chunks from the other end on a free core.
    """
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    order = range(len(chunks) - 1, -1, -1) if REVERSE else range(len(chunks))
    done: dict[int, tuple[Matrix, Matrix]] = {}
    code = _code_hash()
    for i in order:
        digest = hashlib.sha256(code.encode())
        for path in chunks[i]:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        cache = CACHE / f"{digest.hexdigest()[:24]}.npz"
        if not cache.exists():
            whole, crops = _describe_chunk(chunks[i])
            CACHE.mkdir(parents=True, exist_ok=True)
            partial = cache.with_suffix(f".{os.getpid()}.npz")
            np.savez(partial, whole=whole, crops=crops)
            partial.replace(cache)
            print(f"  chunk {i + 1}/{len(chunks)}", flush=True)
        with np.load(cache) as stored:
            done[i] = stored["whole"], stored["crops"]
    return (
        np.concatenate([done[i][0] for i in range(len(chunks))]),
        np.concatenate([done[i][1] for i in range(len(chunks))]),
    )


def _describe_chunk(paths: list[Path]) -> tuple[Matrix, Matrix]:
    import torch

    whole, crops = [], []
    with torch.inference_mode():
        for start in range(0, len(paths), gram.BATCH_IMAGES):
            images = []
            for path in paths[start : start + gram.BATCH_IMAGES]:
                with Image.open(path) as img:
                    images.append(img.convert("RGB"))
            pixels = gram._to_tensor(images)
            whole.append(gram._describe(pixels))
            boxes = [pixels[:, :, y : y + CROP_PX, x : x + CROP_PX] for y, x in crop_boxes()]
            stacked = gram._describe(torch.cat(boxes))  # (5 * B, D), crop-major
            crops.append(stacked.reshape(len(boxes), len(images), -1).transpose(1, 0, 2))
    return np.concatenate(whole), np.concatenate(crops)


def _unit(v: Matrix) -> Matrix:
    out: Matrix = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    return out


class Scatter:
    """The sums ``bench/train_style_v1.fit`` needs, computed once per training set so that each
    shrinkage and direction count costs only two eigendecompositions."""

    def __init__(self, x: Matrix, owner: npt.NDArray[np.intp]) -> None:
        self.mean = x.mean(0)
        centred = x - self.mean
        artists = np.unique(owner)
        self.means = np.stack([centred[owner == a].mean(0) for a in artists])
        within = centred - self.means[np.searchsorted(artists, owner)]
        self.cov = within.T @ within / len(x)
        self.counts = np.array([np.sum(owner == a) for a in artists], dtype=np.float64)

    def fit(self, shrinkage: float, dims: list[int]) -> dict[int, Matrix]:
        """{dims: projection}, exactly as ``train_style_v1.fit`` computes it."""
        cov = self.cov
        cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / cov.shape[0] * np.eye(len(cov))
        values, vectors = np.linalg.eigh(cov)
        whiten = vectors / np.sqrt(values)
        spread = self.means @ whiten
        between = (spread * self.counts[:, None]).T @ spread / self.counts.sum()
        b_values, b_vectors = np.linalg.eigh(between)
        order = np.argsort(-b_values, kind="stable")
        out = {}
        for d in dims:
            projection = whiten @ b_vectors[:, order[:d]]
            signs = np.sign(projection[np.abs(projection).argmax(0), np.arange(d)])
            out[d] = projection * signs
        return out


TRAIN = {
    "whole": "whole image (style-v1)",
    "crops": "5 crops",
    "both": "whole + 5 crops",
}
INFER = {
    "whole": "whole image",
    "crops": "mean of 5 crops",
    "both": "mean of whole + 5 crops",
}
SHRINKAGES = [0.5, 0.2, 0.05]
DIMS = [60, 75]


def sweep(whole: Matrix, crops: Matrix, owner: npt.NDArray[np.intp]) -> list[dict[str, object]]:
    """Held-out centroid top-1 of every (training set, inference views, shrinkage, dims)."""
    rows: dict[tuple[str, str, float, int], dict[str, object]] = {}
    for split, offset in SPLITS.items():
        held = np.isin(owner, np.unique(owner)[offset :: v1.HELD_OUT_EVERY])
        unseen = np.unique(owner[held], return_inverse=True)[1]
        views = {"whole": [whole[held]], "crops": [crops[held, i] for i in range(crops.shape[1])]}
        views["both"] = views["whole"] + views["crops"]
        for train in TRAIN:
            parts = {"whole": [whole[~held]], "crops": [], "both": [whole[~held]]}[train]
            if train != "whole":
                parts += [crops[~held, i] for i in range(crops.shape[1])]
            labels = np.concatenate([owner[~held]] * len(parts))
            scatter = Scatter(np.concatenate(parts), labels)
            for shrinkage in SHRINKAGES:
                for dims, projection in scatter.fit(shrinkage, DIMS).items():
                    for infer, inputs in views.items():
                        embedded = np.mean(
                            [project(v, scatter.mean, projection) for v in inputs], 0
                        )
                        key = (train, infer, shrinkage, dims)
                        row = rows.setdefault(
                            key,
                            {"train": train, "infer": infer, "shrinkage": shrinkage, "dims": dims},
                        )
                        row[split] = round(v1.top1(_unit(embedded).astype(np.float32), unseen), 4)
            print(f"  {split}: fitted on {TRAIN[train]}", flush=True)
    return list(rows.values())


def main() -> None:
    global REVERSE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=v1.DEFAULT_DATA)
    parser.add_argument(
        "--features-only",
        action="store_true",
        help="fill the feature cache and stop (a second process on a free core)",
    )
    parser.add_argument("--reverse", action="store_true", help="fill the cache from the end")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    REVERSE = args.reverse
    start = time.perf_counter()
    paths, owner, _ = v1.corpus(args.data)
    whole, crops = features(paths)
    print(
        f"features: {len(paths)} images, whole + {crops.shape[1]} crops of {CROP_PX} px, "
        f"{time.perf_counter() - start:.0f} s",
        flush=True,
    )
    if args.features_only:
        return
    rows = sweep(whole, crops, owner)
    base = next(
        r
        for r in rows
        if (r["train"], r["infer"], r["shrinkage"], r["dims"])
        == ("whole", "whole", v1.SHRINKAGE, v1.DIMS)
    )
    splits = list(SPLITS)
    print("\n| train on | infer on | shrinkage | dims | " + " | ".join(splits) + " |")
    print("|---|---|---|---|" + "---|" * len(splits))
    for r in rows:
        cells = [TRAIN[str(r["train"])], INFER[str(r["infer"])], r["shrinkage"], r["dims"]]
        print("| " + " | ".join(str(c) for c in cells + [r[s] for s in splits]) + " |")

    def smaller_gain(r: dict[str, object]) -> float:
        return min(float(r[s]) - float(base[s]) for s in splits)  # type: ignore[arg-type]

    # style-v1 re-tuned (whole / whole) is not this idea; bench/style_v2_experiment.py did it.
    crop_rows = [
        r for r in rows if "crops" in (r["train"], r["infer"]) or "both" in (r["train"], r["infer"])
    ]
    best = max(crop_rows, key=smaller_gain)
    gain = {s: round(float(best[s]) - float(base[s]), 4) for s in splits}  # type: ignore[arg-type]
    print(f"\nbest by its smaller gain: {best}; gain over style-v1 {gain}")
    result = {
        "baseline": base,
        "best": best,
        "gain": gain,
        "ships": all(g >= 0.04 for g in gain.values()),
        "rows": rows,
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
