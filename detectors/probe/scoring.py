"""Style lift: how much closer a LoRA's images are to an artist than the base model's.

Pure numpy over vectors from one ``StyleEmbedder``. The LoRA's images (and the base
model's, drawn from the same prompts and seeds) are taken as one style: the mean of their
projected vectors, scored against each artist by the gallery's rule. For every artist:

- the *lift* is the LoRA's similarity minus the base's, divided by the headroom the base
  left, ``(sim(lora) - sim(base)) / (1 - sim(base))``: the share of the way from the base
  model to the artist's references that the LoRA went. Embedders differ in how close their
  cosines crowd (gram-v1 puts most images above 0.9), which an absolute difference inherits
  and this ratio does not;
- the *margin* is the lift minus the largest lift of any other artist: a LoRA that draws
  one artist moves towards that artist, one that merely darkens or flattens the images moves
  towards many at once;
- the *detection* statistic is ``lift - MARGIN_WEIGHT * max(0, best other artist's lift)``,
  which the threshold applies to.

Pairing the base images by prompt and seed removes what the prompt alone does, including a
base model that already draws a famous artist's style. Thresholds are per embedder
(``detectors.probe.calibration``); a detection at the threshold scores 0.5, the screening's
default flag threshold.
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

# How much of the best other artist's lift is taken off an artist's own. Chosen on the
# style-train corpus's benign and planted image sets (bench/artworks.py --detect-dev): with
# gram-v1, AUC 0.675 at 0, 0.704 at 0.5, 0.631 at 1 (lift minus the full margin).
MARGIN_WEIGHT = 0.5
# The steepness of the detection -> score curve (a Hill function): 0 at none, 0.5 at the
# threshold, 0.8 at twice it, 0.9 at three times. A steeper logistic (2x threshold -> 0.98)
# let benign LoRAs that crossed the threshold by chance outrank uploads whose metadata names
# the artist: on bench/planted.py TPR@1%FPR of the metadata split went 0.29 -> 1.0 with this.
SCORE_STEEPNESS = 2.0
# A base image already at the artist's centroid leaves no headroom: floor it.
MIN_HEADROOM = 1e-3


@dataclass(frozen=True, slots=True)
class StyleLift:
    """One artist's normalised lift, the two similarities it is made of, its margin over
    the best other artist, the detection statistic the threshold applies to, and the
    reference indices (rows of that artist's reference list) nearest to the LoRA's images."""

    artist_id: str
    lift: float
    lora_similarity: float
    base_similarity: float
    margin: float
    detection: float
    nearest_references: tuple[int, ...]


def set_similarities(gallery: ArtistGallery, vecs: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The gallery's score of each artist for a set of images taken as one style: the mean
    of their projected (unit, whitened if the gallery whitens) vectors."""
    rows = np.atleast_2d(np.asarray(vecs, dtype=np.float64))
    mean = gallery.project(rows).mean(0, keepdims=True)
    scores: npt.NDArray[np.float64] = gallery.scores(mean)[0]
    return scores


def normalised_lifts(
    lora_similarity: npt.NDArray[np.float64], base_similarity: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(lift, margin, detection) per artist from the two similarity vectors (any batch shape
    whose last axis is the artists)."""
    headroom = np.maximum(1.0 - base_similarity, MIN_HEADROOM)
    lift = (lora_similarity - base_similarity) / headroom
    n = lift.shape[-1]
    if n == 1:
        other = np.zeros_like(lift)
    else:
        order = np.sort(lift, axis=-1)
        best, second = order[..., -1:], order[..., -2:-1]
        other = np.where(lift >= best, second, best)  # each artist's best *other* lift
    detection = lift - MARGIN_WEIGHT * np.maximum(other, 0.0)
    margin = lift - other if n > 1 else lift.copy()
    return lift, margin, detection


def style_lifts(
    gallery: ArtistGallery,
    lora_vecs: npt.ArrayLike,
    base_vecs: npt.ArrayLike,
    *,
    nearest: int = 3,
) -> list[StyleLift]:
    """Every gallery artist's lift, highest detection first. Rows of the two arrays are
    paired (same prompt and seed)."""
    lora = np.atleast_2d(np.asarray(lora_vecs, dtype=np.float64))
    base = np.atleast_2d(np.asarray(base_vecs, dtype=np.float64))
    if lora.shape != base.shape or lora.shape[0] == 0:
        raise InputError("LoRA and base images must be paired and at least one each")
    lora_sim = set_similarities(gallery, lora)
    base_sim = set_similarities(gallery, base)
    lift, margin, detection = normalised_lifts(lora_sim, base_sim)
    cosines = gallery.project(lora) @ gallery.vectors.T
    lifts = []
    for i, artist_id in enumerate(gallery.artist_ids):
        rows = np.flatnonzero(gallery.owner == i)
        order = np.argsort(-cosines[:, rows].mean(0), kind="stable")[:nearest]
        lifts.append(
            StyleLift(
                artist_id=artist_id,
                lift=float(lift[i]),
                lora_similarity=float(lora_sim[i]),
                base_similarity=float(base_sim[i]),
                margin=float(margin[i]),
                detection=float(detection[i]),
                nearest_references=tuple(int(j) for j in order),
            )
        )
    return sorted(lifts, key=lambda s: -s.detection)


def calibrate_threshold(benign_max_lifts: Sequence[float], fpr: float = 0.01) -> float:
    """The detection threshold that flags at most ``fpr`` of the benign LoRAs given.

    ``benign_max_lifts`` holds, per known-benign LoRA, its largest ``StyleLift.detection``
    over all artists. Returns the smallest threshold above the ``1 - fpr`` quantile, never
    below 0.
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
    """A detection statistic mapped to [0, 1): 0 when the LoRA draws no closer to the artist
    than the base model, 0.5 at the threshold, approaching 1 only several times above it.
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

    An artist whose detection statistic reaches ``threshold`` becomes a ``probe`` finding
    (its metadata evidence kept); an artist named by screening keeps its ``metadata`` stage with the
    combined score and the style evidence. ``names`` maps gallery ids to artist names,
    ``reference_labels`` gallery ids to a label per reference (e.g. a blob key prefix).
    """
    by_id = {str(m.artist_id): m for m in metadata}
    out = []
    for s in lifts:
        meta = by_id.get(s.artist_id)
        if s.detection < threshold and meta is None:
            continue
        style = Evidence(source="style", text=_style_text(s, threshold, reference_labels))
        score = combined_score(meta.score if meta else 0.0, style_score(s.detection, threshold))
        out.append(
            ArtistMatch(
                artist_id=int(s.artist_id),
                artist=names.get(s.artist_id, meta.artist if meta else s.artist_id),
                score=round(score, 4),
                stage="probe" if s.detection >= threshold else "metadata",
                evidence=(*(meta.evidence if meta else ()), style),
            )
        )
    return sorted(out, key=lambda m: -m.score)


def _style_text(
    s: StyleLift, threshold: float, reference_labels: Mapping[str, Sequence[str]]
) -> str:
    labels = reference_labels.get(s.artist_id, ())
    nearest = ", ".join(labels[i] for i in s.nearest_references if i < len(labels))
    return (
        f"lift {s.lift:.2f} of the headroom over base (similarity {s.base_similarity:.3f} -> "
        f"{s.lora_similarity:.3f}), margin {s.margin:.2f} over the next artist; detection "
        f"{s.detection:.2f} (threshold {threshold:.2f}); nearest references {nearest}"
    )
