"""Per-embedder detection thresholds: decoy-artist values by name, the base model's null floor."""

from __future__ import annotations

import pytest

from detectors.probe import calibration


def test_each_builtin_embedder_has_its_own_threshold():
    assert calibration.calibrated_for("gram-v1")
    assert calibration.calibrated_for("style-v1")
    assert calibration.threshold("gram-v1") == calibration.DECOY_THRESHOLDS["gram-v1"]
    assert not calibration.calibrated_for("clip:vit-l-14:768")
    assert calibration.threshold("clip:vit-l-14:768") == calibration.FALLBACK_THRESHOLD


def test_chance_on_the_base_model_raises_the_threshold():
    quiet = calibration.threshold("csd:vit-l:768", [0.01, -0.02, 0.03])
    assert quiet == calibration.FALLBACK_THRESHOLD
    noisy = calibration.threshold("csd:vit-l:768", [0.05, 0.1])
    assert noisy == pytest.approx(calibration.NULL_FACTOR * 0.1)
    assert calibration.threshold("gram-v1", [0.2]) == pytest.approx(0.2 * calibration.NULL_FACTOR)
    assert calibration.null_floor([]) == 0.0
