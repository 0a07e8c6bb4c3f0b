"""Style lift: how much closer a LoRA's images are to an artist than the base model's.

Pure numpy over vectors from one ``StyleEmbedder``. For every artist the lift is the mean,
over the plan's (prompt, seed) pairs, of the LoRA image's similarity to the artist (the
gallery's rule) minus the base image's similarity for the same pair. Pairing removes what
the prompt alone does, including a base model that already draws a famous artist's style.
The lift threshold is set on benign LoRAs (``calibrate_threshold``); a lift at the
threshold scores 0.5, the screening's default flag threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detectors.errors import InputError
from detectors.results import ArtistMatch, Evidence
from detectors.style.artists import ArtistGallery

# For the built-in gram embedder on the tiny test model, benign LoRAs lift < 0.01; real
# models need a threshold calibrated on known-benign uploads (calibrate_threshold).
DEFAULT_LIFT_THRESHOLD = 0.1
# The steepness of the lift -> score curve (a Hill function): 0 at no lift, 0.5 at the
# threshold, 0.8 at twice it, 0.9 at three times. A steeper logistic (2x threshold -> 0.98)
# let benign LoRAs that crossed the threshold by chance outrank uploads whose metadata names
# the artist: on bench/planted.py TPR@1%FPR of the metadata split went 0.29 -> 1.0 with this.
SCORE_STEEPNESS = 2.0


@dataclass(frozen=True, slots=True)
class StyleLift:
    """One artist's lift, the two mean similarities it is made of, and the reference
    indices (rows of that artist's reference list) nearest to the LoRA's images."""

    artist_id: str
    lift: float
    lora_similarity: float
    base_similarity: float
    nearest_references: tuple[int, ...]


def style_lifts(
    gallery: ArtistGallery,
    lora_vecs: npt.ArrayLike,
    base_vecs: npt.ArrayLike,
    *,
    nearest: int = 3,
) -> list[StyleLift]:
    """Every gallery artist's lift, largest first. Rows of the two arrays are paired."""
    lora = np.atleast_2d(np.asarray(lora_vecs, dtype=np.float64))
    base = np.atleast_2d(np.asarray(base_vecs, dtype=np.float64))
    if lora.shape != base.shape or lora.shape[0] == 0:
        raise InputError("LoRA and base images must be paired and at least one each")
    lora_scores = gallery.scores(lora)
    base_scores = gallery.scores(base)
    cosines = gallery.project(lora) @ gallery.vectors.T
    lifts = []
    for i, artist_id in enumerate(gallery.artist_ids):
        rows = np.flatnonzero(gallery.owner == i)
        order = np.argsort(-cosines[:, rows].mean(0), kind="stable")[:nearest]
        lifts.append(
            StyleLift(
                artist_id=artist_id,
                lift=float((lora_scores[:, i] - base_scores[:, i]).mean()),
                lora_similarity=float(lora_scores[:, i].mean()),
                base_similarity=float(base_scores[:, i].mean()),
                nearest_references=tuple(int(j) for j in order),
            )
        )
    return sorted(lifts, key=lambda s: -s.lift)


def calibrate_threshold(benign_max_lifts: Sequence[float], fpr: float = 0.01) -> float:
    """The lift threshold that flags at most ``fpr`` of the benign LoRAs given.

    ``benign_max_lifts`` holds, per known-benign LoRA, its largest lift over all artists.
    Returns the smallest threshold above the ``1 - fpr`` quantile, never below 0.
    """
    if not benign_max_lifts:
        raise InputError("calibration needs at least one benign LoRA")
    if not 0.0 <= fpr < 1.0:
        raise InputError(f"fpr must be in [0, 1), got {fpr}")
    values = np.sort(np.asarray(benign_max_lifts, dtype=np.float64))
    allowed = math.floor(fpr * len(values))  # benign LoRAs that may lie above
    cut = values[len(values) - 1 - allowed]
    return float(max(np.nextafter(cut, np.inf), 0.0))


def style_score(lift: float, threshold: float) -> float:
    """Lift mapped to [0, 1): 0 when the LoRA draws no closer to the artist than the base
    model, 0.5 at the threshold, approaching 1 only for lifts several times the threshold.
    Adds nothing to metadata evidence when there is no lift."""
    if lift <= 0.0:
        return 0.0
    ratio = float((lift / max(threshold, 1e-9)) ** SCORE_STEEPNESS)
    return ratio / (1.0 + ratio)


def combined_score(metadata_score: float, lift_score: float) -> float:
    """Metadata and style as independent evidence: 1 - (1 - m)(1 - s)."""
    return 1.0 - (1.0 - metadata_score) * (1.0 - lift_score)


def probe_matches(
    lifts: Sequence[StyleLift],
    names: Mapping[str, str],
    metadata: Sequence[ArtistMatch],
    threshold: float,
    reference_labels: Mapping[str, Sequence[str]],
) -> list[ArtistMatch]:
    """Findings after the probe, highest score first.

    An artist whose lift reaches ``threshold`` becomes a ``probe`` finding (its metadata
    evidence kept); an artist named by screening keeps its ``metadata`` stage with the
    combined score and the style evidence. ``names`` maps gallery ids to artist names,
    ``reference_labels`` gallery ids to a label per reference (e.g. a blob key prefix).
    """
    by_id = {str(m.artist_id): m for m in metadata}
    out = []
    for s in lifts:
        meta = by_id.get(s.artist_id)
        if s.lift < threshold and meta is None:
            continue
        labels = reference_labels.get(s.artist_id, ())
        nearest = ", ".join(labels[i] for i in s.nearest_references if i < len(labels))
        text = (
            f"lift {s.lift:.2f} over base (threshold {threshold:.2f}); nearest references {nearest}"
        )
        style = Evidence(source="style", text=text)
        score = combined_score(meta.score if meta else 0.0, style_score(s.lift, threshold))
        out.append(
            ArtistMatch(
                artist_id=int(s.artist_id),
                artist=names.get(s.artist_id, meta.artist if meta else s.artist_id),
                score=round(score, 4),
                stage="probe" if s.lift >= threshold else "metadata",
                evidence=(*(meta.evidence if meta else ()), style),
            )
        )
    return sorted(out, key=lambda m: -m.score)
