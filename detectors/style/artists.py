"""``ArtistGallery``: each registered artist's reference vectors, and who a query is nearest.

Pure numpy over vectors from one ``StyleEmbedder``. Two rules score an artist for a query
vector: ``"centroid"``, the cosine with the normalised mean of the artist's references, and
``"top_m"``, the mean of the query's ``m`` highest cosines with single references. On the
public-domain artworks set (bench/artworks.py) the centroid rule attributed slightly more
queries correctly, so it is the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from detectors.errors import InputError

GalleryRule = Literal["centroid", "top_m"]
Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ArtistGallery:
    """Reference vectors stacked in ``vectors``; row i belongs to ``artist_ids[owner[i]]``."""

    artist_ids: tuple[str, ...]
    vectors: Matrix
    owner: npt.NDArray[np.intp]
    rule: GalleryRule = "centroid"
    m: int = 3

    @classmethod
    def from_references(
        cls, references: Mapping[str, npt.ArrayLike], *, rule: GalleryRule = "centroid", m: int = 3
    ) -> ArtistGallery:
        """Build from ``{artist_id: (n_i, dim) vectors}``; raises ``InputError`` when empty."""
        if not references:
            raise InputError("the gallery needs at least one artist with reference vectors")
        if m < 1:
            raise InputError(f"top_m needs m >= 1, got {m}")
        ids = tuple(references)
        blocks = [np.atleast_2d(np.asarray(references[a], dtype=np.float64)) for a in ids]
        if any(block.shape[0] == 0 for block in blocks) or len({b.shape[1] for b in blocks}) > 1:
            raise InputError("every artist needs at least one reference vector, all of one size")
        owner = np.concatenate([np.full(len(b), i, dtype=np.intp) for i, b in enumerate(blocks)])
        return cls(ids, _unit(np.concatenate(blocks)), owner, rule, m)

    def scores(self, query_vecs: npt.ArrayLike) -> Matrix:
        """Similarity of each query row to each artist, shape ``(n_queries, n_artists)``."""
        queries = _unit(np.atleast_2d(np.asarray(query_vecs, dtype=np.float64)))
        if self.rule == "centroid":
            centroids = np.stack(
                [self.vectors[self.owner == i].mean(0) for i in range(len(self.artist_ids))]
            )
            return queries @ _unit(centroids).T
        cosines = queries @ self.vectors.T
        columns = []
        for i in range(len(self.artist_ids)):
            own = np.sort(cosines[:, self.owner == i], axis=1)
            columns.append(own[:, -self.m :].mean(1))
        return np.stack(columns, 1)

    def nearest(self, query_vecs: npt.ArrayLike, k: int = 1) -> list[tuple[str, float]]:
        """The ``k`` artists most similar to a set of query vectors (say, one LoRA's images).

        An artist's similarity is its score averaged over the query rows; best first.
        """
        mean = self.scores(query_vecs).mean(0)
        order = np.argsort(-mean, kind="stable")[:k]
        return [(self.artist_ids[i], float(mean[i])) for i in order]


def _unit(x: Matrix) -> Matrix:
    norms: Matrix = np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    unit: Matrix = x / norms
    return unit
