"""``ClipEmbedder``: CLIP image embeddings from local weights (transformers' vision tower).

The folder is a transformers ``CLIPVisionModelWithProjection`` saved with
``save_pretrained`` (safetensors only; nothing is downloaded and no pickle is read). Its
``preprocessor_config.json`` is used when present; otherwise CLIP's own resize, centre crop
and normalisation at the model's ``image_size``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from detectors.errors import ConfigError
from detectors.style.base import Embeddings
from detectors.style.clip_pixels import clip_pixels, torch_device

BATCH_IMAGES = 32


class ClipEmbedder:
    """Unit-norm CLIP image embeddings; CUDA (float16) when present and ``device`` is auto."""

    def __init__(self, weights: Path, *, device: str = "auto") -> None:
        import torch
        from transformers import CLIPVisionModelWithProjection

        if not (weights / "config.json").is_file():
            raise ConfigError([f"style.clip_weights: no CLIP model in {weights} (config.json)"])
        self._device = torch_device(device)
        dtype = torch.float16 if self._device.startswith("cuda") else torch.float32
        try:
            # Any: transformers types from_pretrained per class through a decorator mypy
            # cannot follow.
            model: Any = CLIPVisionModelWithProjection.from_pretrained(
                weights, local_files_only=True, use_safetensors=True, dtype=dtype
            )
        except (OSError, ValueError) as exc:
            raise ConfigError([f"style.clip_weights: cannot load {weights}: {exc}"]) from exc
        self._model: Any = model.to(self._device).eval()
        self._size = int(model.config.image_size)
        self.dim = int(model.config.projection_dim)
        self.name = f"clip:{weights.resolve().name}:{self.dim}"

    def embed(self, images: Sequence[Image.Image]) -> Embeddings:
        import torch

        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), BATCH_IMAGES):
                pixels = self._pixels(images[start : start + BATCH_IMAGES])
                out = self._model(pixel_values=pixels).image_embeds.float()
                chunks.append(torch.nn.functional.normalize(out, dim=-1).cpu().numpy())
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32)

    def _pixels(self, images: Sequence[Image.Image]) -> Any:
        return clip_pixels(images, self._size, self._device, self._model.dtype)
