"""Lift, calibration, score mapping and findings: pure numpy on hand-made vectors."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.errors import InputError
from detectors.probe import plan
from detectors.probe.scoring import (
    calibrate_threshold,
    combined_score,
    probe_matches,
    style_lifts,
    style_score,
)
from detectors.results import ArtistMatch, Evidence
from detectors.style.artists import ArtistGallery

GALLERY = ArtistGallery.from_references(
    {"1": [[1.0, 0.0, 0.0], [0.9, 0.1, 0.0]], "2": [[0.0, 1.0, 0.0]]}
)


def test_lift_is_paired_lora_minus_base_similarity():
    base = [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    lora = [[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]
    first, second = style_lifts(GALLERY, lora, base)
    assert first.artist_id == "1"
    assert first.lift == pytest.approx(first.lora_similarity - first.base_similarity)
    assert first.lift > 0.6
    assert second.lift == pytest.approx(0.0, abs=1e-9)
    assert first.nearest_references[0] == 0


def test_lift_needs_paired_rows():
    with pytest.raises(InputError):
        style_lifts(GALLERY, [[1.0, 0.0, 0.0]], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def test_calibration_keeps_the_false_positive_rate():
    benign = [0.01 * i for i in range(100)]
    threshold = calibrate_threshold(benign, fpr=0.05)
    assert sum(v >= threshold for v in benign) <= 5
    assert calibrate_threshold(benign, fpr=0.0) > max(benign)
    with pytest.raises(InputError):
        calibrate_threshold([], 0.01)


def test_scores_are_half_at_threshold_and_combine_as_independent():
    assert style_score(0.1, 0.1) == pytest.approx(0.5)
    assert style_score(0.2, 0.1) == pytest.approx(0.8)
    assert style_score(0.3, 0.1) == pytest.approx(0.9)
    assert style_score(0.0, 0.1) == 0.0
    assert style_score(-0.2, 0.1) == 0.0
    assert style_score(0.05, 0.1) < style_score(0.1, 0.1) < style_score(0.4, 0.1) < 1.0
    assert combined_score(0.5, 0.5) == pytest.approx(0.75)
    assert combined_score(0.0, 0.3) == pytest.approx(0.3)


def test_findings_keep_metadata_stage_below_threshold():
    lifts = style_lifts(GALLERY, [[1.0, 0.0, 1.0]], [[0.0, 0.0, 1.0]])
    named = ArtistMatch(2, "Bo", 0.6, "metadata", (Evidence("trainedWords", "bo"),))
    labels = {"1": ["aaaa", "bbbb"], "2": ["cccc"]}
    found = probe_matches(lifts, {"1": "Al", "2": "Bo"}, [named], 0.1, labels)
    assert [(m.artist, m.stage) for m in found] == [("Al", "probe"), ("Bo", "metadata")]
    assert found[0].evidence[0].text.startswith("lift 0.")
    assert "aaaa" in found[0].evidence[0].text
    assert [e.source for e in found[1].evidence] == ["trainedWords", "style"]


def test_plan_stays_within_budget_and_reuses_seeds():
    quick = plan.quick_pass(["zzstyle", "zzstyle", ""], max_images=8)
    assert [p.purpose for p in quick] == ["trigger", "neutral", "neutral"]
    artists = plan.candidates([(5, "Named")], [(5, "Named"), (6, "Near"), (7, "Far")], k=1)
    assert artists == [(5, "Named"), (6, "Near")]
    second = plan.artist_pass(artists, max_images=8, already=len(quick))
    assert len(quick) + len(second) == 8
    assert [p.artist_id for p in second[:2]] == [5, 6]
    assert second[0].prompt == "a portrait of a woman, by Named"
    assert second[2].prompt == "a landscape with a river, in the style of Named"
    assert {p.seed for p in second} <= set(plan.SEEDS)
    assert len(plan.quick_pass([], max_images=1)) == 1
    assert plan.artist_pass(artists, max_images=2, already=3) == []


def test_gallery_vectors_need_no_torch():
    lifts = style_lifts(GALLERY, np.eye(3)[:1], np.eye(3)[2:3])
    assert {s.artist_id for s in lifts} == {"1", "2"}
