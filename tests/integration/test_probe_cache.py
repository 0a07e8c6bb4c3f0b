"""ProbeCache: base images and vectors survive a new instance; damaged entries are misses."""

from __future__ import annotations

import numpy as np
from PIL import Image

from storage.blobs import BlobStore
from storage.probe_cache import ProbeCache


def test_round_trips_images_and_vectors(tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    cache = ProbeCache(tmp_path / "cache", blobs)
    image = Image.new("RGB", (8, 8), (10, 200, 30))
    assert cache.base_image("sd1", "k", "a cat", 1) is None
    blob = cache.put_base_image("sd1", "k", "a cat", 1, image)
    cache.put_vector("gram-v1", blob, np.arange(4, dtype=np.float32))
    again = ProbeCache(tmp_path / "cache", blobs)
    assert again.base_image("sd1", "k", "a cat", 1) == blob
    assert again.base_image("sd1", "other-settings", "a cat", 1) is None
    assert again.base_image("sd1", "k", "a cat", 2) is None
    assert np.asarray(again.image(blob)).tolist() == np.asarray(image).tolist()
    np.testing.assert_array_equal(again.vector("gram-v1", blob), np.arange(4))
    assert again.vector("clip", blob) is None


def test_damaged_entry_is_a_miss(tmp_path):
    cache = ProbeCache(tmp_path / "cache", BlobStore(tmp_path / "blobs"))
    cache.put_base_image("sd1", "k", "p", 1, Image.new("RGB", (4, 4)))
    for entry in (tmp_path / "cache").rglob("*.json"):
        entry.write_text("{not json", encoding="utf-8")
    assert cache.base_image("sd1", "k", "p", 1) is None
