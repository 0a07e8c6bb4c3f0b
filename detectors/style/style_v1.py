"""``StyleV1Embedder``: gram-v1's statistics through a linear projection learned on artists.

gram-v1 weighs every statistic alike; most of them vary as much within one artist's work as
between artists. style-v1 keeps gram-v1's features and maps them through a projection fitted
by linear discriminant analysis (within-artist covariance shrunk towards the identity, then
the directions that spread the artists' means most) on the style-train corpus, 76
public-domain artists none of whom is in bench/data/artworks. ``bench/train_style_v1.py``
fits it in one deterministic command; the weights ship beside this module as
``style_v1.safetensors`` (about 0.6 MB) with their provenance (script, corpus hash,
settings, held-out figures) in the file's metadata. Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from detectors.errors import ConfigError
from detectors.style.base import Embeddings
from detectors.style.gram import GramEmbedder

WEIGHTS = Path(__file__).with_name("style_v1.safetensors")


class StyleV1Embedder:
    """gram-v1 features, centred and projected to ``dim`` learned style directions, unit length."""

    name = "style-v1"

    def __init__(self, weights: Path = WEIGHTS) -> None:
        self._mean, self._projection, self.metadata = load_weights(weights)
        self._gram = GramEmbedder()
        if self._mean.shape[0] != self._gram.dim:
            raise ConfigError(
                [f"{weights}: made for {self._mean.shape[0]} gram features, not {self._gram.dim}"]
            )
        self.dim = int(self._projection.shape[1])

    def embed(self, images: Sequence[Image.Image]) -> Embeddings:
        features = self._gram.embed(images).astype(np.float64)
        if features.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return project(features, self._mean, self._projection)


def project(
    features: npt.NDArray[np.float64],
    mean: npt.NDArray[np.float64],
    projection: npt.NDArray[np.float64],
) -> Embeddings:
    """Rows of ``features`` centred on ``mean``, projected, scaled to unit length."""
    out = (features - mean) @ projection
    norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    unit: Embeddings = (out / norms).astype(np.float32)
    return unit


def load_weights(
    path: Path,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], Mapping[str, str]]:
    """(mean, projection, metadata) from a style-v1 safetensors file; ConfigError if absent
    or malformed."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = dict(f.metadata() or {})
            mean = f.get_tensor("mean").astype(np.float64)
            projection = f.get_tensor("projection").astype(np.float64)
    except (OSError, KeyError, ValueError, SafetensorError) as exc:
        raise ConfigError([f"{path}: not style-v1 weights ({exc})"]) from exc
    if mean.ndim != 1 or projection.ndim != 2 or projection.shape[0] != mean.shape[0]:
        raise ConfigError([f"{path}: mean and projection shapes do not fit"])
    return mean, projection, metadata
