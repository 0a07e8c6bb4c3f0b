"""The style-embedder port: images in, one unit vector per image out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from PIL import Image

Embeddings = npt.NDArray[np.float32]


@runtime_checkable
class StyleEmbedder(Protocol):
    """Maps images to style vectors that compare by cosine similarity.

    ``embed`` returns a float32 array of shape ``(len(images), dim)`` whose rows have unit L2
    norm. A vector depends only on its own image, never on the other images in the call, so
    references and queries may be embedded in any batches. ``name`` is a stable identifier
    stored beside vectors, so vectors from different embedders are never compared.
    """

    name: str
    dim: int

    def embed(self, images: Sequence[Image.Image]) -> Embeddings: ...
