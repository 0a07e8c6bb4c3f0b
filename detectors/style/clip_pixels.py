"""CLIP's image preprocessing and device choice, shared by the CLIP-tower embedders.

``clip_pixels`` is OpenAI CLIP's own eval transform, which open_clip and the CSD authors
(``CSD/loss_utils.py``: ``transforms_branch0``) use as well: torchvision's
``Resize(size, BICUBIC)`` and ``CenterCrop(size)`` on the PIL image, ``ToTensor`` and
``Normalize`` with CLIP's channel statistics. The rounding is torchvision's: the long side
becomes ``int(size * long / short)`` (truncated) and the crop starts at
``round((side - size) / 2)`` (Python's round, half to even). ``CsdEmbedder`` uses it;
``ClipEmbedder`` uses transformers' image processor, which crops with a floor instead
(tests/integration/test_style_parity.py checks both against their references).
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
    """torchvision's ``Resize(size, BICUBIC)`` then ``CenterCrop(size)`` on a PIL image."""
    w, h = image.size
    # torchvision's _compute_resized_output_size: the same expression, truncated.
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    if (new_w, new_h) != (w, h):
        image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    # torchvision's center_crop: int(round(...)), so an odd margin of 3 starts at 2, not 1.
    left = round((new_w - size) / 2.0)
    top = round((new_h - size) / 2.0)
    return np.asarray(image.crop((left, top, left + size, top + size)))


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
