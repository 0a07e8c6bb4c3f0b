"""style-v1: the shipped weights load with their provenance and tell two painted styles apart."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from detectors.errors import ConfigError
from detectors.style.style_v1 import WEIGHTS, StyleV1Embedder


def _striped(colour: tuple[int, int, int], period: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y = np.arange(96)[:, None]
    stripes = ((y // period) % 2).astype(np.float64)
    pixels = np.asarray(colour, np.float64) * (0.6 + 0.4 * stripes[..., None])
    pixels = pixels + rng.normal(0, 6, (96, 96, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def test_the_shipped_weights_carry_their_provenance():
    embedder = StyleV1Embedder()
    assert embedder.name == "style-v1"
    assert WEIGHTS.stat().st_size < 2_000_000
    meta = embedder.metadata
    assert meta["script"] == "bench/train_style_v1.py"
    assert len(meta["corpus_sha256"]) == 64
    assert int(meta["artists"]) == 76


def test_vectors_are_unit_and_one_style_is_nearer_itself():
    embedder = StyleV1Embedder()
    warm = [_striped((200, 80, 30), 4, s) for s in range(3)]
    cold = [_striped((30, 90, 200), 12, s) for s in range(3)]
    vectors = embedder.embed(warm + cold).astype(np.float64)
    assert vectors.shape == (6, embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    cos = vectors @ vectors.T
    assert cos[0, 1:3].min() > cos[0, 3:].max()
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_weights_that_are_not_style_v1_are_a_config_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ConfigError, match="not style-v1 weights"):
        StyleV1Embedder(bad)
