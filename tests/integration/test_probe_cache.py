"""ProbeCache: base images and vectors survive a new instance; damaged entries are misses."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from storage.file_blobs import FileBlobStore
from storage.probe_cache import THUMBNAIL_PX, ProbeCache, ProbeRun, run_key


def test_round_trips_images_and_vectors(tmp_path):
    blobs = FileBlobStore(tmp_path / "blobs")
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
    cache = ProbeCache(tmp_path / "cache", FileBlobStore(tmp_path / "blobs"))
    cache.put_base_image("sd1", "k", "p", 1, Image.new("RGB", (4, 4)))
    for entry in (tmp_path / "cache").rglob("*.json"):
        entry.write_text("{not json", encoding="utf-8")
    assert cache.base_image("sd1", "k", "p", 1) is None


def _run(cache: ProbeCache) -> ProbeRun:
    images = [Image.new("RGB", (512, 384), (i * 40, 90, 200)) for i in range(3)]
    return ProbeRun(
        family="sd1",
        prompts=("a cat", "a dog", "a boat"),
        seeds=(1, 2, 3),
        lora_images=tuple(cache.put_thumbnail(i) for i in images),
        base_images=tuple(cache.put_image(i) for i in images),
        lora_vectors=np.eye(3, 5, dtype=np.float32),
        base_vectors=np.full((3, 5), 0.5, dtype=np.float32),
    )


def test_probe_runs_round_trip_per_embedder_and_upload(tmp_path):
    blobs = FileBlobStore(tmp_path / "blobs")
    cache = ProbeCache(tmp_path / "cache", blobs)
    run = _run(cache)
    cache.put_run("gram-v1", run_key("civitai", "42"), run)
    again = ProbeCache(tmp_path / "cache", blobs).run("gram-v1", run_key("civitai", "42"))
    assert again is not None
    assert (again.family, again.prompts, again.seeds) == ("sd1", run.prompts, (1, 2, 3))
    assert again.lora_images == run.lora_images and again.base_images == run.base_images
    np.testing.assert_array_equal(again.lora_vectors, run.lora_vectors)
    np.testing.assert_array_equal(again.base_vectors, run.base_vectors)
    assert cache.image(again.lora_images[0]).size == (THUMBNAIL_PX, 144)  # kept small
    assert cache.run("clip", run_key("civitai", "42")) is None
    assert cache.run("gram-v1", run_key("civitai", "43")) is None


def test_a_damaged_probe_run_is_a_miss(tmp_path):
    blobs = FileBlobStore(tmp_path / "blobs")
    cache = ProbeCache(tmp_path / "cache", blobs)
    run = _run(cache)
    cache.put_run("gram-v1", "civitai:1", run)
    entry = next((tmp_path / "cache").rglob("*.json"))
    stored = json.loads(entry.read_text(encoding="utf-8"))
    entry.write_text(json.dumps({**stored, "seeds": [1, 2]}), encoding="utf-8")
    assert cache.run("gram-v1", "civitai:1") is None  # columns no longer pair with the rows
    entry.write_text(json.dumps({**stored, "vectors": blobs.put(b"not 2 x 3 rows")}), "utf-8")
    assert cache.run("gram-v1", "civitai:1") is None
    entry.write_text(json.dumps({**stored, "dim": 4}), encoding="utf-8")
    assert cache.run("gram-v1", "civitai:1") is None  # 30 floats are no pair of 4-wide rows
    entry.write_text(json.dumps(stored), encoding="utf-8")
    assert cache.run("gram-v1", "civitai:1") is not None
