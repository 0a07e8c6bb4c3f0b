"""Benchmark: attributing public-domain artworks to their artist by style vectors.

Uses ``bench/data/artworks`` (a copy of ``shared/data/artworks``: 24 artists x 30 works).
Files 01-15 of each artist are the references registered in an
:class:`~detectors.style.artists.ArtistGallery`; files 16-30 are the queries.
For each embedder it reports:

- *top-1*: share of queries whose highest-scoring artist (gallery rule, centroid by default;
  the ``top_m`` rule is printed too) is the true artist; chance is 1/24;
- *mAP@1*: mean over queries of precision at rank 1 when retrieving single reference
  images, i.e. the share of queries whose single most similar reference is by the same
  artist (no gallery rule involved);
- *top-1 whitened*: the same with the gallery's ``whiten="pca"`` and ``whiten="within"``
  options, fitted on the 360 references alone (their artist labels are known when they are
  registered; query labels never take part, and the whitening has no tuned setting);
- the same top-1 on artists 1-12 and 13-24 (folder order) each as their own 12-artist gallery
  (chance 1/12), to see whether a choice holds on both halves;
- throughput in images/s (decode and resize included), a per-artist table (top-1 and the
  artist its queries were most often given to) and the ratio to a plain RGB-histogram
  baseline measured in the same run;
- *detection* (``bench/artworks_detection.py``): half the artists registered, sets of 8
  works as style LoRAs (a registered artist's) and benign ones (an unregistered artist's)
  against a neutral base pool, scored by the probe's own code: AUC, TPR@1%FPR, top-1, and
  FPR / TPR at the embedder's shipped threshold.

``--calibrate DIR`` runs the detection protocol on a corpus kept for fitting (the
style-train folder, never the artworks) and prints each embedder's 1 %-FPR threshold, what
``detectors/probe/calibration.py`` ships.

CLIP and CSD need weights on disk (``--clip PATH``: a transformers
``CLIPVisionModelWithProjection`` folder; ``--csd PATH``: the safetensors file
``stylewatch models convert-csd`` writes); without them they are skipped with the reason
printed. The last line printed is one JSON
object. Run: ``.venv/bin/python bench/artworks.py [--threads 2]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.artworks_detection import calibration_threshold, detection_figures  # noqa: E402
from detectors.style.artists import ArtistGallery, GalleryRule, Whitening  # noqa: E402
from detectors.style.base import Embeddings, StyleEmbedder  # noqa: E402
from detectors.style.gram import GramEmbedder  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "artworks"
REFERENCE_COUNT = 15


class RgbHistogramEmbedder:
    """Baseline: an 8x8x8 RGB histogram, square-rooted (Hellinger) and L2-normalised."""

    name = "rgb-histogram"
    dim = 512

    def embed(self, images: Sequence[Image.Image]) -> Embeddings:
        rows = []
        for img in images:
            rgb = np.asarray(img.convert("RGB"), dtype=np.int64) // 32
            codes = (rgb[..., 0] * 8 + rgb[..., 1]) * 8 + rgb[..., 2]
            hist = np.sqrt(np.bincount(codes.ravel(), minlength=512).astype(np.float64))
            rows.append(hist / np.linalg.norm(hist))
        return np.asarray(rows, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Artworks:
    artists: tuple[str, ...]
    reference_paths: tuple[Path, ...]
    reference_owner: np.ndarray
    query_paths: tuple[Path, ...]
    query_owner: np.ndarray


def load_artworks(root: Path) -> Artworks:
    artists = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    refs: list[Path] = []
    queries: list[Path] = []
    ref_owner: list[int] = []
    query_owner: list[int] = []
    for i, artist in enumerate(artists):
        files = sorted((root / artist).glob("*.jpg"))
        refs += files[:REFERENCE_COUNT]
        ref_owner += [i] * len(files[:REFERENCE_COUNT])
        queries += files[REFERENCE_COUNT:]
        query_owner += [i] * len(files[REFERENCE_COUNT:])
    return Artworks(
        artists, tuple(refs), np.array(ref_owner), tuple(queries), np.array(query_owner)
    )


def embed_paths(embedder: StyleEmbedder, paths: Sequence[Path]) -> tuple[Embeddings, float]:
    start = time.perf_counter()
    images = []
    for path in paths:
        with Image.open(path) as img:
            images.append(img.convert("RGB"))
    vectors = embedder.embed(images)
    return vectors, time.perf_counter() - start


def top1(
    refs: Embeddings,
    ref_owner: np.ndarray,
    queries: Embeddings,
    query_owner: np.ndarray,
    rule: GalleryRule,
    whiten: Whitening = "none",
) -> tuple[float, np.ndarray]:
    """Top-1 accuracy and each query's predicted artist index, for the artists present.

    ``whiten`` is fitted by the gallery on the references only (queries never take part)."""
    present = sorted(set(ref_owner.tolist()))
    gallery = ArtistGallery.from_references(
        {str(a): refs[ref_owner == a] for a in present}, rule=rule, whiten=whiten
    )
    predicted = np.array(present)[gallery.scores(queries).argmax(1)]
    return float((predicted == query_owner).mean()), predicted


def map_at_1(
    refs: Embeddings, ref_owner: np.ndarray, queries: Embeddings, q_owner: np.ndarray
) -> float:
    nearest = (queries.astype(np.float64) @ refs.astype(np.float64).T).argmax(1)
    return float((ref_owner[nearest] == q_owner).mean())


def split_half(
    data: Artworks, refs: Embeddings, queries: Embeddings, whiten: Whitening = "none"
) -> tuple[float, float]:
    results = []
    half = len(data.artists) // 2
    for chosen in (np.arange(half), np.arange(half, len(data.artists))):
        r = np.isin(data.reference_owner, chosen)
        q = np.isin(data.query_owner, chosen)
        acc, _ = top1(
            refs[r], data.reference_owner[r], queries[q], data.query_owner[q], "centroid", whiten
        )
        results.append(acc)
    return results[0], results[1]


def measure(embedder: StyleEmbedder, data: Artworks) -> dict[str, Any]:
    refs, t_refs = embed_paths(embedder, data.reference_paths)
    queries, t_queries = embed_paths(embedder, data.query_paths)
    n = len(data.reference_paths) + len(data.query_paths)
    accuracy, predicted = top1(refs, data.reference_owner, queries, data.query_owner, "centroid")
    accuracy_top_m, _ = top1(refs, data.reference_owner, queries, data.query_owner, "top_m")
    first, second = split_half(data, refs, queries)
    whitened = {
        w: top1(refs, data.reference_owner, queries, data.query_owner, "centroid", w)
        for w in ("pca", "within")
    }
    within_halves = split_half(data, refs, queries, "within")
    everything = np.concatenate([refs, queries])
    owners = np.concatenate([data.reference_owner, data.query_owner])
    order = np.argsort(owners, kind="stable")  # per artist: references, then queries
    detection = detection_figures(everything[order], owners[order], embedder.name)
    return {
        "embedder": embedder.name,
        "dim": embedder.dim,
        "top1": round(accuracy, 4),
        "top1_top_m": round(accuracy_top_m, 4),
        "map_at_1": round(map_at_1(refs, data.reference_owner, queries, data.query_owner), 4),
        "top1_artists_1_12": round(first, 4),
        "top1_artists_13_24": round(second, 4),
        "top1_whiten_pca": round(whitened["pca"][0], 4),
        "top1_whiten_within": round(whitened["within"][0], 4),
        "top1_whiten_within_artists_1_12": round(within_halves[0], 4),
        "top1_whiten_within_artists_13_24": round(within_halves[1], 4),
        "images_per_s": round(n / (t_refs + t_queries), 1),
        "detection": detection,
        "_predicted": predicted,
        "_predicted_within": whitened["within"][1],
    }


def print_confusion(data: Artworks, predicted: np.ndarray) -> None:
    print(f"  {'artist':<24} {'top-1':>6}  most confused with")
    for i, artist in enumerate(data.artists):
        mine = predicted[data.query_owner == i]
        wrong = Counter(int(p) for p in mine if p != i).most_common(1)
        other = f"{data.artists[wrong[0][0]]} ({wrong[0][1]})" if wrong else "-"
        print(f"  {artist:<24} {float((mine == i).mean()):>6.2f}  {other}")


def optional_embedders(args: argparse.Namespace) -> list[StyleEmbedder]:
    from detectors.style.clip import ClipEmbedder
    from detectors.style.csd import CsdEmbedder

    embedders: list[StyleEmbedder] = []
    if args.clip is None:
        print("clip: skipped (no --clip PATH to a local CLIPVisionModelWithProjection folder)")
    else:
        embedders.append(ClipEmbedder(args.clip, device=args.device))
    if args.csd is None:
        print("csd: skipped (no --csd PATH to weights from `stylewatch models convert-csd`)")
    else:
        embedders.append(CsdEmbedder(args.csd, device=args.device))
    return embedders


def builtin_embedders() -> list[StyleEmbedder]:
    from detectors.style.style_v1 import StyleV1Embedder

    return [GramEmbedder(), StyleV1Embedder()]


def calibrate(folder: Path, embedders: Sequence[StyleEmbedder]) -> None:
    """Each embedder's detection threshold on a fitting corpus laid out like the artworks."""
    artists = sorted(p.name for p in folder.iterdir() if p.is_dir())
    paths: list[Path] = []
    owner: list[int] = []
    for i, artist in enumerate(artists):
        files = sorted((folder / artist).glob("*.jpg"))
        paths += files
        owner += [i] * len(files)
    print(f"calibrating on {folder}: {len(artists)} artists, {len(paths)} images")
    results = {}
    for embedder in embedders:
        vectors, _ = embed_paths(embedder, paths)
        results[embedder.name] = calibration_threshold(vectors, np.array(owner))
        print(f"{embedder.name}: {results[embedder.name]}")
    print(json.dumps({"calibration": str(folder), "embedders": results}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--clip", type=Path, default=None, help="local CLIP weights")
    parser.add_argument(
        "--csd", type=Path, default=None, help="CSD .safetensors from `models convert-csd`"
    )
    parser.add_argument("--device", default="auto", help="torch device for CLIP and CSD")
    parser.add_argument(
        "--calibrate",
        type=Path,
        default=None,
        metavar="DIR",
        help="print each embedder's 1 %%-FPR detection threshold on DIR (shared/data/style-train)",
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.calibrate is not None:
        calibrate(args.calibrate, [RgbHistogramEmbedder(), *builtin_embedders()])
        return
    data = load_artworks(DATA)
    print(
        f"{len(data.artists)} artists, {len(data.reference_paths)} references, "
        f"{len(data.query_paths)} queries; chance top-1 {1 / len(data.artists):.3f}"
    )
    baseline = measure(RgbHistogramEmbedder(), data)
    embedders: list[StyleEmbedder] = [*builtin_embedders(), *optional_embedders(args)]
    results = []
    for embedder in embedders:
        result = measure(embedder, data)
        predicted = result.pop("_predicted")
        predicted_within = result.pop("_predicted_within")
        result["top1_vs_baseline"] = round(result["top1"] / max(baseline["top1"], 1e-9), 2)
        result["detection"]["auc_vs_baseline"] = round(
            result["detection"]["auc"] / max(baseline["detection"]["auc"], 1e-9), 2
        )
        results.append(result)
        print(
            f"\n{embedder.name}: "
            + ", ".join(f"{k} {v}" for k, v in result.items() if k != "embedder")
        )
        print_confusion(data, predicted)
        print("  with the gallery's within-artist whitening:")
        print_confusion(data, predicted_within)
    baseline.pop("_predicted")
    baseline.pop("_predicted_within")
    print(
        f"\nbaseline {baseline['embedder']}: "
        + ", ".join(f"{k} {v}" for k, v in baseline.items() if k != "embedder")
    )
    summary = {
        "chance_top1": round(1 / len(data.artists), 4),
        "baseline": baseline,
        "embedders": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
