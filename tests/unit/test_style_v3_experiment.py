"""bench/style_v3_experiment.py: its factored LDA is style-v1's fit, and its feature cache
gives back what the descriptors compute (a wrong baseline or a stale cache would skew the
docs/quality.md table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bench.style_v3_experiment as v3
import bench.train_style_v1 as v1
from detectors.style import gram


def test_the_factored_fit_is_style_v1s_fit():
    rng = np.random.default_rng(0)
    owner = np.repeat(np.arange(12), 9)
    x = rng.normal(size=(12, 30))[owner] + rng.normal(size=(len(owner), 30)) * 2
    mean, projection = v1.fit(x, owner)  # v1.SHRINKAGE, v1.DIMS as shipped
    scatter = v3.Scatter(x, owner)
    np.testing.assert_allclose(scatter.mean, mean)
    # 11 = artists - 1, the between-artist rank; v1.fit keeps that many of its DIMS here.
    fitted = scatter.fit(v1.SHRINKAGE, [11])
    np.testing.assert_allclose(fitted[11], projection[:, :11])


def test_crops_lie_inside_the_image_and_differ():
    boxes = v3.crop_boxes()
    assert len(set(boxes)) == 5
    for y, x in boxes:
        assert 0 <= y <= gram.IMAGE_SIZE_PX - v3.CROP_PX
        assert 0 <= x <= gram.IMAGE_SIZE_PX - v3.CROP_PX


def test_the_chunk_cache_returns_what_the_descriptors_compute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(v3, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(v3, "CHUNK", 2)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    whole, crops = v3.features(paths)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2  # chunks of 2 and 1
    expected = gram.GramEmbedder().embed([Image.open(p) for p in paths])
    np.testing.assert_allclose(whole, expected, rtol=1e-5, atol=1e-5)  # float32, batched apart
    assert crops.shape == (3, 5, whole.shape[1])
    assert not np.allclose(crops[:, 0], crops[:, 4])
    again_whole, again_crops = v3.features(paths)  # from the cache this time
    np.testing.assert_array_equal(again_whole, whole)
    np.testing.assert_array_equal(again_crops, crops)
