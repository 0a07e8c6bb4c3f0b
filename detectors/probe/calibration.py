"""Detection thresholds per style embedder, each calibrated on known-benign material.

A threshold on ``StyleLift.detection`` means nothing apart from the embedder that made the
vectors, so none is shared between embedders. Two kinds of benign material set it:

- **decoy artists** (built-in embedders): ``bench/artworks.py --calibrate`` registers half
  of the style-train corpus's artists, takes sets of 8 works by the other half (look-alikes
  of the same movements included) as benign LoRAs, and keeps the detection that 1 % of them
  reach. The results live in ``DECOY_THRESHOLDS`` under the embedder's ``name``;
- **the base model itself** (every embedder, every base model): the plan's neutral prompts
  drawn again with other seeds are a LoRA that changes nothing, so whatever detection they
  reach is chance. ``threshold`` never goes below ``NULL_FACTOR`` times that. For an
  embedder with no decoy threshold (CLIP or CSD weights of the operator's choosing) it is the
  threshold, floored at ``FALLBACK_THRESHOLD``.

``[probe] lift_threshold`` in the config overrides both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# The detection reached by 1 % of the benign sets of 8 works by decoy artists.
DECOY_THRESHOLDS: Mapping[str, float] = {
    # bench/artworks.py --calibrate shared/data/style-train: 2 folds x 38 registered
    # artists, 456 benign sets.
    "gram-v1": 0.4905,
    # bench/train_style_v1.py: the 15 artists held out of the fit (it was fitted on the rest
    # of style-train, so its own artists would understate chance), 90 benign sets.
    "style-v1": 0.4659,
}
# For embedders without decoy artists: the lowest threshold a null calibration may give.
FALLBACK_THRESHOLD = 0.2
# How far above chance (the base model against itself with other seeds) a detection must be.
NULL_FACTOR = 4.0


def null_floor(null_detections: Sequence[float]) -> float:
    """``NULL_FACTOR`` times the largest detection the base model reached against itself."""
    return NULL_FACTOR * max([0.0, *null_detections])


def threshold(embedder_name: str, null_detections: Sequence[float] = ()) -> float:
    """The detection threshold for vectors of ``embedder_name``: its decoy-artist threshold
    (``FALLBACK_THRESHOLD`` when it has none), raised to ``null_floor`` when chance alone
    comes that close on this base model."""
    base = DECOY_THRESHOLDS.get(embedder_name, FALLBACK_THRESHOLD)
    return max(base, null_floor(null_detections))


def calibrated_for(embedder_name: str) -> bool:
    """Whether ``embedder_name`` has a decoy-artist threshold of its own."""
    return embedder_name in DECOY_THRESHOLDS
