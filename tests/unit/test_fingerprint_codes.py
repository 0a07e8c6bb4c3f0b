"""Fingerprint codes: Hamming distance follows |cos| per module, ignores sign flips, and the
radius keeps the threshold's pairs while leaving unrelated fingerprints out."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from detectors.fingerprint import (
    CODE_BITS,
    SKETCH_DIM,
    code_radius,
    hamming,
    sketch_codes,
)

MODULES = 8
DIM = SKETCH_DIM * SKETCH_DIM


def _unit(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return out


def _at_cos(base: npt.NDArray[np.float32], c: float, seed: int) -> npt.NDArray[np.float32]:
    """Sketches at exactly ``|cos| = c`` from ``base``, module by module."""
    rng = np.random.default_rng(seed)
    other = rng.standard_normal(base.shape).astype(np.float32)
    other = _unit(other - (other * base).sum(-1, keepdims=True) * base)
    return (c * base + math.sqrt(1 - c * c) * other).astype(np.float32)


def _sketches(n: int, seed: int) -> npt.NDArray[np.float32]:
    return _unit(np.random.default_rng(seed).standard_normal((n, MODULES, DIM)).astype(np.float32))


def test_codes_are_packed_words_and_ignore_sign_flips():
    base = _sketches(50, 1)
    codes = sketch_codes(base)
    assert codes.shape == (50, MODULES * CODE_BITS // 64) and codes.dtype == np.uint64
    flips = np.where(np.random.default_rng(2).random((50, MODULES, 1)) < 0.5, -1, 1)
    np.testing.assert_array_equal(sketch_codes((base * flips).astype(np.float32)), codes)
    assert hamming(codes, codes[0])[0] == 0


def test_the_radius_keeps_pairs_at_the_threshold_and_drops_unrelated_ones():
    base = _sketches(2_000, 3)
    codes = sketch_codes(base)
    radius = code_radius(MODULES)
    at_threshold = sketch_codes(_at_cos(base, 0.9, 4))
    same_weights = sketch_codes(_at_cos(base, 0.999, 5))
    near = np.bitwise_count(at_threshold ^ codes).sum(1)
    same = np.bitwise_count(same_weights ^ codes).sum(1)
    unrelated = hamming(codes[1:], codes[0])
    assert near.max() <= radius < unrelated.min()
    assert same.mean() < 0.05 * MODULES * CODE_BITS  # about 3% of the bits
    assert abs(near.mean() / (MODULES * CODE_BITS) - 0.247) < 0.02  # 2q(1-q) at |cos| 0.9


def test_hamming_of_no_codes_is_empty():
    empty = np.zeros((0, 4), dtype=np.uint64)
    assert hamming(empty, np.zeros(4, dtype=np.uint64)).shape == (0,)
