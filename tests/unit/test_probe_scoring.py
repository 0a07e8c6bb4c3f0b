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


def test_lift_is_the_share_of_the_headroom_the_lora_went():
    base = [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    lora = [[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]
    first, second = style_lifts(GALLERY, lora, base)
    assert first.artist_id == "1"
    assert first.lift == pytest.approx(first.lora_similarity - first.base_similarity)
    assert first.lift > 0.6
    assert second.lift == pytest.approx(0.0, abs=1e-9)
    assert first.nearest_references[0] == 0
    # From a base image already halfway to the artist, the same step is a bigger share.
    halfway = [[1.0, 0.0, np.sqrt(3.0)]]  # cosine 0.5 with artist 1's centroid direction
    (lift,) = [s for s in style_lifts(GALLERY, [[1.0, 0.0, 1.0]], halfway) if s.artist_id == "1"]
    expected = (lift.lora_similarity - lift.base_similarity) / (1 - lift.base_similarity)
    assert lift.lift == pytest.approx(expected)
    assert lift.lift > lift.lora_similarity - lift.base_similarity


def _crowded(vectors: list[list[float]], k: float = 3.0) -> np.ndarray:
    """The same vectors as an embedder whose cosines all crowd near 1 would give them: a
    shared component k times the rest, so cos' = (cos + k^2) / (1 + k^2)."""
    rows = np.asarray(vectors, dtype=np.float64)
    rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return np.hstack([rows, np.full((len(rows), 1), k)])


def test_normalised_lift_does_not_depend_on_how_crowded_an_embedders_cosines_are():
    references = {"1": [[1.0, 0.0, 0.0]], "2": [[0.0, 1.0, 0.0]]}
    lora, base = [[1.0, 0.2, 0.5]], [[0.2, 0.3, 1.0]]
    plain = style_lifts(ArtistGallery.from_references(references), lora, base)
    crowded_gallery = ArtistGallery.from_references({a: _crowded(v) for a, v in references.items()})
    crowded = style_lifts(crowded_gallery, _crowded(lora), _crowded(base))
    for p, c in zip(plain, crowded, strict=True):
        assert p.artist_id == c.artist_id
        assert c.lift == pytest.approx(p.lift)
        assert c.detection == pytest.approx(p.detection)
    raw = [s.lora_similarity - s.base_similarity for s in (plain[0], crowded[0])]
    assert raw[1] < 0.2 * raw[0]  # an absolute threshold would have to change tenfold


def test_detection_takes_off_half_the_next_artists_lift():
    gallery = ArtistGallery.from_references(
        {"1": [[1.0, 0.0, 0.0]], "2": [[0.0, 1.0, 0.0]], "3": [[0.0, 0.0, 1.0]]}
    )
    one = style_lifts(gallery, [[1.0, 0.0, 0.2]], [[0.0, 0.0, 1.0]])
    both = style_lifts(gallery, [[1.0, 1.0, 0.2]], [[0.0, 0.0, 1.0]])
    assert one[0].artist_id == "1"
    assert one[0].detection == pytest.approx(one[0].lift)  # nobody else gained
    assert one[0].margin == pytest.approx(one[0].lift)
    assert both[0].lift == pytest.approx(both[1].lift)  # 1 and 2 gained alike
    assert both[0].margin == pytest.approx(0.0, abs=1e-9)
    assert both[0].detection == pytest.approx(0.5 * both[0].lift)
    alone = ArtistGallery.from_references({"1": [[1.0, 0.0, 0.0]]})
    (single,) = style_lifts(alone, [[1.0, 0.0, 0.2]], [[0.0, 0.0, 1.0]])
    assert single.detection == pytest.approx(single.lift) == pytest.approx(single.margin)


def test_the_images_of_a_set_are_taken_as_one_style():
    gallery = ArtistGallery.from_references({"1": [[1.0, 0.0, 0.0]], "2": [[0.0, 1.0, 0.0]]})
    lora = [[1.0, 0.0, 1.0], [1.0, 0.0, -1.0]]  # each image 45 degrees off, their mean on it
    base = [[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]
    first = style_lifts(gallery, lora, base)[0]
    assert first.artist_id == "1"
    assert first.lora_similarity == pytest.approx(1.0)


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
