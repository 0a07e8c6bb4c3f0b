"""``CsdEmbedder``: CSD style descriptors (Somepalli et al. 2024) from local safetensors.

CSD is a CLIP ViT image tower fine-tuned with a style projection head; its style vector is
``normalize(ln_post(cls) @ last_layer_style)``. The weights file is what
``stylewatch models convert-csd`` writes from the published checkpoint (safetensors only;
no pickle is read here and nothing is downloaded). Images get CLIP's resize, centre crop and
normalisation at the input size the positional embedding implies.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from detectors.errors import ConfigError
from detectors.style.base import Embeddings
from detectors.style.clip_pixels import clip_pixels, torch_device

if TYPE_CHECKING:
    from detectors.style.csd_model import CsdModel

BATCH_IMAGES = 32


class CsdEmbedder:
    """Unit-norm CSD style vectors; CUDA (float16) when present and ``device`` is auto."""

    def __init__(self, weights: Path, *, device: str = "auto") -> None:
        import torch

        self._device = torch_device(device)
        self._dtype = torch.float16 if self._device.startswith("cuda") else torch.float32
        model = _load(weights)
        self._model: CsdModel = model.to(self._device, self._dtype)
        self._size = model.backbone.image_px
        self.dim = int(model.last_layer_style.shape[1])
        self.name = f"csd:{weights.resolve().stem}:{self.dim}"

    def embed(self, images: Sequence[Image.Image]) -> Embeddings:
        import torch

        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), BATCH_IMAGES):
                batch = images[start : start + BATCH_IMAGES]
                pixels = clip_pixels(batch, self._size, self._device, self._dtype)
                out = self._model(pixels).float()
                # Renormalised in float32: a float16 unit vector is a few 1e-4 off unit norm.
                chunks.append(torch.nn.functional.normalize(out, dim=-1).cpu().numpy())
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32)


def _load(weights: Path) -> CsdModel:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from detectors.style.csd_model import load_csd_model

    hint = "convert the published checkpoint with `stylewatch models convert-csd`"
    if not weights.is_file():
        raise ConfigError([f"style.csd_weights: no file at {weights}; {hint}"])
    try:
        return load_csd_model(load_file(weights, device="cpu"))
    except SafetensorError as exc:
        raise ConfigError(
            [f"style.csd_weights: {weights} is not a safetensors file ({exc}); {hint}"]
        ) from exc
    except (OSError, ValueError) as exc:
        raise ConfigError([f"style.csd_weights: cannot load {weights}: {exc}"]) from exc
