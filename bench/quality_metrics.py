"""Detection-quality figures in plain numpy: ROC AUC, TPR at a false-positive rate, top-1.

Scores are "higher means more suspicious". Ties between a positive and a negative count
half in the AUC (the Mann-Whitney statistic) and against detection in the TPR, so a
detector that gives everything one score gets AUC 0.5 and TPR 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def roc_auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(a random positive scores above a random negative), ties counted half; nan if a
    side is empty."""
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        return math.nan
    above = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((above + 0.5 * ties) / (pos.size * neg.size))


def tpr_at_fpr(positives: Sequence[float], negatives: Sequence[float], fpr: float) -> float:
    """The share of positives flagged by the strictest threshold that flags at most ``fpr``
    of the negatives. A threshold flags scores strictly above it, so with fewer than
    ``1 / fpr`` negatives this is the share of positives above every negative."""
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.sort(np.asarray(negatives, dtype=np.float64))[::-1]
    if pos.size == 0:
        return math.nan
    allowed = math.floor(fpr * neg.size + 1e-9)  # negatives that may be flagged
    if allowed >= neg.size:
        return 1.0
    return float((pos > neg[allowed]).mean())


def top1(predicted: Sequence[object], truth: Sequence[object]) -> float:
    """Share of items whose predicted label equals the true one; nan when empty."""
    if len(truth) == 0:
        return math.nan
    return float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))
