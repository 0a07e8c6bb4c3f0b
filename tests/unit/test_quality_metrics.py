"""The benchmark's AUC, TPR-at-FPR and top-1 helpers."""

from __future__ import annotations

import math

from bench.quality_metrics import roc_auc, top1, tpr_at_fpr


def test_auc_counts_pairs_and_ties_half():
    assert roc_auc([3, 4], [1, 2]) == 1.0
    assert roc_auc([1, 2], [3, 4]) == 0.0
    assert roc_auc([1], [1]) == 0.5
    assert roc_auc([2, 0], [1]) == 0.5
    assert math.isnan(roc_auc([], [1]))


def test_tpr_at_fpr_uses_the_strictest_allowed_threshold():
    negatives = list(range(100))  # 0..99
    assert tpr_at_fpr([99.5, 98.5, 50], negatives, 0.01) == 2 / 3  # one negative (99) allowed
    assert tpr_at_fpr([99.5, 98.5, 50], negatives, 0.0) == 1 / 3
    assert tpr_at_fpr([5], [5], 0.0) == 0.0  # a tie with a negative is not a detection
    assert tpr_at_fpr([5], [1, 2], 0.01) == 1.0  # 1% of 2 negatives: none may be flagged


def test_top1():
    assert top1(["a", "b"], ["a", "c"]) == 0.5
    assert math.isnan(top1([], []))
