"""ClipEmbedder on a tiny randomly initialised CLIP vision model saved to a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detectors.errors import ConfigError
from detectors.style.base import StyleEmbedder
from detectors.style.clip import ClipEmbedder


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    folder = tmp_path_factory.mktemp("clip")
    CLIPVisionModelWithProjection(config).save_pretrained(folder, safe_serialization=True)
    return folder


def test_embeds_unit_vectors_per_image(clip_dir):
    embedder = ClipEmbedder(clip_dir, device="cpu")
    assert isinstance(embedder, StyleEmbedder)
    red = Image.new("RGB", (48, 40), (220, 30, 30))
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 64, 3), np.uint8))
    vecs = embedder.embed([red, noise])
    assert vecs.shape == (2, 16)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    alone = embedder.embed([noise])
    np.testing.assert_allclose(alone[0], vecs[1], atol=1e-5)
    assert embedder.embed([]).shape == (0, 16)


def test_missing_weights_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="clip_weights"):
        ClipEmbedder(tmp_path, device="cpu")
