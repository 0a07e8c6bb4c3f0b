"""Experiment behind docs/quality.md's "style-v2 attempt": extra texture groups before LDA.

Computes gram-v1 vectors and ``bench/style_texture.py``'s groups for every style-train image
(about 7 minutes on one busy core), then fits style-v1's LDA on 61 artists and prints the
centroid top-1 on the 15 held out (every fifth in sorted order) for each feature set and
setting. It only measures; it writes no weights. Run:
``python bench/style_v2_experiment.py [--data ../shared/data/style-train]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench.train_style_v1 as v1  # noqa: E402
from bench import style_texture  # noqa: E402
from detectors.style import descriptors  # noqa: E402
from detectors.style.gram import GramEmbedder  # noqa: E402
from detectors.style.style_v1 import project  # noqa: E402

Matrix = npt.NDArray[np.float64]
DERIV = ("deriv_cov_1", "deriv_cov_2", "deriv_cov_4")
RANDOM = ("rgram1_1", "rgram2_1", "rgram1_2", "rgram2_2")
CHROMA = ("chroma_2d", "chroma_2d_l")


def _unit(v: Matrix) -> Matrix:
    out: Matrix = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return out


def texture_groups(paths: list[Path]) -> dict[str, Matrix]:
    import torch

    out: dict[str, list[Matrix]] = {}
    for start in range(0, len(paths), 32):
        arrays = [np.asarray(Image.open(p).convert("RGB")) for p in paths[start : start + 32]]
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255
        with torch.inference_mode():
            lab = descriptors.srgb_to_lab(x)
            groups = {
                **style_texture.derivative_covariance(lab),
                **style_texture.random_gram(lab),
                **style_texture.chroma_2d(lab),
            }
        for key, value in groups.items():
            out.setdefault(key, []).append(value.numpy().astype(np.float64))
    return {key: np.concatenate(parts) for key, parts in out.items()}


def combine(
    gram: Matrix, groups: dict[str, Matrix], names: tuple[str, ...], gram_weight: float
) -> Matrix:
    parts = [gram * gram_weight] if gram_weight > 0 else []
    parts += [_unit(np.sign(groups[k]) * np.sqrt(np.abs(groups[k]))) for k in names]
    return _unit(np.concatenate(parts, 1))


def held_out_top1(x: Matrix, owner: npt.NDArray[np.intp], shrinkage: float, dims: int) -> float:
    v1.SHRINKAGE, v1.DIMS = shrinkage, dims
    held = np.isin(owner, np.unique(owner)[v1.HELD_OUT_EVERY - 1 :: v1.HELD_OUT_EVERY])
    mean, projection = v1.fit(x[~held], owner[~held])
    unseen = np.unique(owner[held], return_inverse=True)[1]
    return v1.top1(project(x[held], mean, projection), unseen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=v1.DEFAULT_DATA)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    paths, owner, _ = v1.corpus(args.data)
    gram = GramEmbedder().embed([Image.open(p).convert("RGB") for p in paths]).astype(np.float64)
    groups = texture_groups(paths)
    candidates: list[tuple[str, tuple[str, ...], float]] = [
        ("gram-v1 (style-v1)", (), 1.0),
        ("derivative covariance only", DERIV, 0.0),
        ("random gram only", RANDOM, 0.0),
        ("gram-v1 + derivative covariance", DERIV, 1.0),
        ("gram-v1 + random gram", RANDOM, 1.0),
        ("gram-v1 + chroma 2-D", CHROMA, 1.0),
        ("all", DERIV + RANDOM + CHROMA, 1.0),
    ]
    for name, names, weight in candidates:
        x = combine(gram, groups, names, weight)
        for shrinkage, dims in ((0.5, 60), (0.5, 75), (0.8, 75)):
            top1 = held_out_top1(x, owner, shrinkage, dims)
            print(f"{name}: {x.shape[1]} dims, shrinkage {shrinkage}, {dims} dirs: {top1:.4f}")


if __name__ == "__main__":
    main()
