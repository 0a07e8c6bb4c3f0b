"""ArtistGallery's whitening options, fitted on references only."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.style.artists import ArtistGallery


def _references(rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Two artists apart along axis 0 by a little; each work varies a lot along axis 1."""
    centres = {"a": np.array([1.0, 0.0, 3.0]), "b": np.array([1.3, 0.0, 3.0])}
    refs = {}
    for name, centre in centres.items():
        nuisance = rng.normal(0, 2.0, (20, 1)) * np.array([[0.0, 1.0, 0.0]])
        refs[name] = centre + nuisance + rng.normal(0, 0.02, (20, 3))
    query = centres["b"] + np.array([0.0, 1.5, 0.0])
    return refs, query


def test_within_whitening_discounts_what_varies_inside_an_artist():
    refs, query = _references(np.random.default_rng(1))
    plain = ArtistGallery.from_references(refs)
    within = ArtistGallery.from_references(refs, whiten="within")
    assert plain.nearest([query])[0][0] == "a"  # the nuisance swamps the small difference
    assert within.nearest([query])[0][0] == "b"
    assert np.allclose(np.linalg.norm(within.vectors, axis=1), 1.0)


@pytest.mark.parametrize("whiten", ["pca", "within"])
def test_whitened_projection_is_deterministic_and_unit(whiten):
    refs, query = _references(np.random.default_rng(1))
    gallery = ArtistGallery.from_references(refs, whiten=whiten)
    once, twice = gallery.project([query]), gallery.project([query])
    assert np.array_equal(once, twice)
    assert np.isclose(np.linalg.norm(once), 1.0)


def test_single_reference_artists_fall_back_to_pca_whitening():
    gallery = ArtistGallery.from_references({"a": [[1.0, 0.0]], "b": [[0.0, 1.0]]}, whiten="within")
    assert gallery.nearest([[0.9, 0.1]])[0][0] == "a"
