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

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
BATCH_IMAGES = 32


class ClipEmbedder:
    """Unit-norm CLIP image embeddings; CUDA (float16) when present and ``device`` is auto."""

    def __init__(self, weights: Path, *, device: str = "auto") -> None:
        import torch
        from transformers import CLIPVisionModelWithProjection

        if not (weights / "config.json").is_file():
            raise ConfigError([f"style.clip_weights: no CLIP model in {weights} (config.json)"])
        self._device = _device(device)
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
        import torch

        arrays = [_centre_crop(img.convert("RGB"), self._size) for img in images]
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        return ((x - mean) / std).to(self._device, self._model.dtype)


def _centre_crop(image: Image.Image, size: int) -> np.ndarray:
    """CLIP's preprocessing: shortest side to ``size`` (bicubic), then a centre square."""
    w, h = image.size
    scale = size / min(w, h)
    resized = image.resize(
        (max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BICUBIC
    )
    left = (resized.width - size) // 2
    top = (resized.height - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)))


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name
