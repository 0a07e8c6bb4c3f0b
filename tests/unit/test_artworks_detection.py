"""bench/artworks.py's detection mode: who is registered, what the sets hold, and that the
probe's scoring separates well-separated styles and not identical ones."""

from __future__ import annotations

import numpy as np

from bench.artworks_detection import SET_IMAGES, detection_figures, folds, score_sets


def _world(spread: float, artists: int = 12, works: int = 30, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(artists, dim))
    owner = np.repeat(np.arange(artists), works)
    vectors = centres[owner] * spread + rng.normal(size=(len(owner), dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), owner


def test_halves_take_turns_and_sets_never_hold_the_base_pool():
    _, owner = _world(1.0)
    first, second = folds(owner)
    assert set(first.references) == set(range(0, 12, 2))
    assert set(second.references) == set(range(1, 12, 2))
    for fold in (first, second):
        assert len(fold.pool) == SET_IMAGES
        assert not set(owner[fold.pool]) & set(fold.references)
        for trial in fold.trials:
            assert len(trial.rows) == SET_IMAGES
            assert not set(trial.rows) & set(fold.pool)
            if trial.truth is None:
                assert not set(owner[trial.rows]) & set(fold.references)
            else:
                assert set(owner[trial.rows]) == {trial.truth}
                assert not set(trial.rows) & set(fold.references[trial.truth])


def test_distinct_styles_are_detected_and_identical_ones_are_chance():
    vectors, owner = _world(3.0)
    clear = detection_figures(vectors, owner, "gram-v1")
    assert clear["auc"] > 0.97
    assert clear["top1"] > 0.95
    same, owner = _world(0.0)
    chance = score_sets(same, owner)
    assert abs(np.mean(chance.positives) - np.mean(chance.negatives)) < 0.1
