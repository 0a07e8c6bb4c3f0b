"""Detection on real images, without a diffusion model: bench/artworks.py's detection mode.

Half of a folder's artists are registered (every other artist in sorted folder order, so each
movement lands on both sides: Sisley registered, Pissarro not), with their reference works.
A *style LoRA* is 8 query works of a registered artist; a *benign style LoRA* is 8 works of
an unregistered artist, look-alikes of the registered ones' movements included; the *base*
images are a fixed neutral pool, one work each of 8 other unregistered artists. Each set is
scored with the probe's own code (``detectors.probe.scoring.style_lifts``, the gallery the
probe builds), its best artist's ``detection`` is its score, and both halves take a turn at
being registered. Reported per embedder: AUC, TPR at 1 % FPR, top-1 of the style LoRAs (the
best artist is the true one; also with the gallery's within-artist whitening, which
attribution may use where detection does not), and the FPR and TPR at the embedder's shipped
threshold (``detectors.probe.calibration``).

``calibration_threshold`` runs the same protocol on a corpus kept for fitting (style-train),
and gives the detection 1 % of its benign sets reach: what ``DECOY_THRESHOLDS`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.quality_metrics import roc_auc, tpr_at_fpr
from detectors.probe import calibration
from detectors.probe.scoring import calibrate_threshold, style_lifts
from detectors.style.artists import ArtistGallery, Whitening
from detectors.style.base import Embeddings

SET_IMAGES = 8  # images per LoRA, as many as the probe draws
SETS_PER_ARTIST = 6
MAX_REFERENCES = 15
FPR = 0.01

Index = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class Trial:
    """One set of images: ``truth`` is the registered artist it is by, None for benign."""

    rows: Index
    truth: int | None


@dataclass(frozen=True, slots=True)
class Fold:
    """One half registered: reference rows per registered artist, the base pool, the sets."""

    references: dict[int, Index]
    pool: Index
    trials: tuple[Trial, ...]


@dataclass(frozen=True, slots=True)
class SetScores:
    """Per set: its best artist's detection and whether that artist is the true one."""

    positives: list[float]
    negatives: list[float]
    hits: list[bool]
    hits_whitened: list[bool]


def folds(owner: npt.NDArray[np.intp], seed: int = 0) -> list[Fold]:
    """The two halves of the artists in ``owner`` (each image's artist index), in turn
    registered. Per artist, the first ``min(15, n // 2)`` rows are references, the rest
    queries, as in the attribution split."""
    n_artists = int(owner.max()) + 1
    rows = [np.flatnonzero(owner == a) for a in range(n_artists)]
    split = {a: min(MAX_REFERENCES, len(r) // 2) for a, r in enumerate(rows)}
    out = []
    for turn in (0, 1):
        rng = np.random.default_rng(seed + turn)
        registered = [a for a in range(n_artists) if a % 2 == turn]
        others = [a for a in range(n_artists) if a % 2 != turn]
        # One work each of the first 8 unregistered artists (cycling when there are fewer).
        pool = np.array(
            [rows[others[i % len(others)]][i // len(others)] for i in range(SET_IMAGES)]
        )
        trials = [
            Trial(_draw(rng, rows[a][split[a] :]), a)
            for a in registered
            for _ in range(SETS_PER_ARTIST)
        ]
        trials += [
            Trial(_draw(rng, np.setdiff1d(rows[a], pool)), None)
            for a in others
            for _ in range(SETS_PER_ARTIST)
        ]
        refs = {a: rows[a][: split[a]] for a in registered}
        out.append(Fold(refs, pool, tuple(trials)))
    return out


def _draw(rng: np.random.Generator, rows: Index) -> Index:
    drawn: Index = rng.choice(rows, size=min(SET_IMAGES, len(rows)), replace=False)
    return drawn


def score_sets(vectors: Embeddings, owner: npt.NDArray[np.intp], seed: int = 0) -> SetScores:
    """Every fold's sets scored as the probe scores a LoRA's images against its base's."""
    scores = SetScores([], [], [], [])
    for fold in folds(owner, seed):
        gallery = _gallery(vectors, fold, "none")
        whitened = _gallery(vectors, fold, "within")
        base = vectors[fold.pool]
        for trial in fold.trials:
            best = style_lifts(gallery, vectors[trial.rows], base)[0]
            if trial.truth is None:
                scores.negatives.append(best.detection)
                continue
            scores.positives.append(best.detection)
            scores.hits.append(int(best.artist_id) == trial.truth)
            attributed = style_lifts(whitened, vectors[trial.rows], base)[0]
            scores.hits_whitened.append(int(attributed.artist_id) == trial.truth)
    return scores


def _gallery(vectors: Embeddings, fold: Fold, whiten: Whitening) -> ArtistGallery:
    refs = {str(a): vectors[rows] for a, rows in fold.references.items()}
    return ArtistGallery.from_references(refs, whiten=whiten)


def detection_figures(
    vectors: Embeddings, owner: npt.NDArray[np.intp], embedder_name: str
) -> dict[str, float]:
    """AUC, TPR@1%FPR and top-1 of the sets, and FPR / TPR at the shipped threshold."""
    s = score_sets(vectors, owner)
    shipped = calibration.threshold(embedder_name)
    return {
        "style_loras": len(s.positives),
        "benign_loras": len(s.negatives),
        "auc": round(roc_auc(s.positives, s.negatives), 4),
        "tpr_at_1pct_fpr": round(tpr_at_fpr(s.positives, s.negatives, FPR), 4),
        "top1": round(float(np.mean(s.hits)), 4),
        "top1_whiten_within": round(float(np.mean(s.hits_whitened)), 4),
        "shipped_threshold": round(shipped, 4),
        "fpr_at_shipped": round(float(np.mean(np.array(s.negatives) >= shipped)), 4),
        "tpr_at_shipped": round(float(np.mean(np.array(s.positives) >= shipped)), 4),
    }


def calibration_threshold(vectors: Embeddings, owner: npt.NDArray[np.intp]) -> dict[str, float]:
    """The detection at most 1 % of the benign sets reach on a fitting corpus, and the AUC
    there (the figure the scoring rule was chosen on)."""
    s = score_sets(vectors, owner)
    return {
        "threshold_at_1pct_fpr": round(calibrate_threshold(s.negatives, FPR), 4),
        "auc": round(roc_auc(s.positives, s.negatives), 4),
        "style_loras": len(s.positives),
        "benign_loras": len(s.negatives),
    }
