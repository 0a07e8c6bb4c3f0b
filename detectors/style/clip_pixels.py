"""CLIP's image preprocessing and device choice, shared by the CLIP-tower embedders.

Both ``ClipEmbedder`` and ``CsdEmbedder`` feed an OpenAI CLIP vision transformer, so both
resize the shortest side to the model's input size (bicubic), take the centre square and
normalise with CLIP's channel statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def centre_crop(image: Image.Image, size: int) -> np.ndarray:
    """CLIP's preprocessing: shortest side to ``size`` (bicubic), then a centre square."""
    w, h = image.size
    scale = size / min(w, h)
    resized = image.resize(
        (max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BICUBIC
    )
    left = (resized.width - size) // 2
    top = (resized.height - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)))


def clip_pixels(
    images: Sequence[Image.Image], size: int, device: str, dtype: torch.dtype
) -> torch.Tensor:
    """A normalised ``(n, 3, size, size)`` batch on ``device`` in ``dtype``."""
    import torch

    arrays = [centre_crop(img.convert("RGB"), size) for img in images]
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).to(device, dtype)


def torch_device(name: str) -> str:
    """``auto`` becomes ``cuda`` when a GPU is visible, else ``cpu``; other names pass through."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name
