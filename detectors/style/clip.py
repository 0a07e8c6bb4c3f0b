"""``ClipEmbedder``: CLIP image embeddings from local weights (transformers' vision tower).

The folder is a transformers ``CLIPVisionModelWithProjection`` saved with
``save_pretrained`` (safetensors only; nothing is downloaded and no pickle is read). Images
go through transformers' own CLIP image processor (its PIL/NumPy backend, so the pixels do
not depend on whether torchvision is installed), configured from the folder's
``preprocessor_config.json`` when present (a plain JSON file) and otherwise with CLIP's
defaults at the model's ``image_size``: shortest side resized (bicubic), centre crop,
rescale and CLIP's mean and std.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from detectors.errors import ConfigError
from detectors.library_noise import quiet_ml_libraries
from detectors.style.base import Embeddings
from detectors.style.clip_pixels import torch_device

BATCH_IMAGES = 32


class ClipEmbedder:
    """Unit-norm CLIP image embeddings; CUDA (float16) when present and ``device`` is auto."""

    def __init__(self, weights: Path, *, device: str = "auto") -> None:
        import torch
        from transformers import CLIPVisionModelWithProjection

        if not (weights / "config.json").is_file():
            raise ConfigError([f"style.clip_weights: no CLIP model in {weights} (config.json)"])
        self._device = torch_device(device)
        quiet_ml_libraries()
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
        self._processor = _processor(weights, int(model.config.image_size))
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
        pixels = self._processor(list(images), return_tensors="pt")["pixel_values"]
        return pixels.to(self._device, self._model.dtype)


PREPROCESSOR_CONFIG = "preprocessor_config.json"


def _processor(weights: Path, size: int) -> Any:
    """transformers' PIL/NumPy CLIP image processor for the folder: from its
    ``preprocessor_config.json`` when there is one, else CLIP's defaults at ``size``."""
    processor: Any  # the class: CLIPImageProcessorPil or, before it existed, its old name
    try:
        from transformers import CLIPImageProcessorPil

        processor = CLIPImageProcessorPil
    except ImportError:  # transformers 4: CLIPImageProcessor is the PIL/NumPy one
        from transformers import CLIPImageProcessor

        processor = CLIPImageProcessor
    if (weights / PREPROCESSOR_CONFIG).is_file():
        try:
            return processor.from_pretrained(weights, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                [f"style.clip_weights: cannot read {weights / PREPROCESSOR_CONFIG}: {exc}"]
            ) from exc
    return processor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
