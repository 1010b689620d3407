"""Kendall's tau and top-k Jaccard between two scorings (influence paper's evaluation)."""

import numpy as np
import pytest

from core.errors import LetheError, ShapeMismatch
from core.metrics import critical_set, kendall_tau, topk_jaccard


def test_kendall_tau_of_same_and_reversed_order():
    a = np.arange(10.0)
    assert kendall_tau(a, 2 * a + 1) == pytest.approx(1.0)
    assert kendall_tau(a, -a) == pytest.approx(-1.0)


def test_kendall_tau_one_swapped_pair_of_four():
    # 5 concordant and 1 discordant pair of 6: (5 - 1) / 6
    assert kendall_tau([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)


def test_kendall_tau_bad_inputs():
    with pytest.raises(ShapeMismatch):
        kendall_tau([1, 2, 3], [1, 2])
    with pytest.raises(LetheError, match="undefined"):
        kendall_tau([1, 1, 1], [1, 2, 3])


def test_topk_jaccard_of_identical_and_disjoint_sets():
    a = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    assert topk_jaccard(a, a, 2) == 1.0
    assert topk_jaccard(a, -a, 2) == 0.0
    assert topk_jaccard(a, np.array([5.0, 0.0, 4.0, 1.0, 2.0, 3.0]), 2) == pytest.approx(1 / 3)


def test_paper_critical_set_takes_both_tails():
    scores = np.array([0.9, -0.8, 0.1, 0.0, 0.7, -0.2])
    assert critical_set(scores, 2, tails="both") == {0, 4, 1, 5}
    # reversing the scoring keeps the same extremes
    assert topk_jaccard(scores, -scores, 2, tails="both") == 1.0


def test_topk_jaccard_rejects_k_larger_than_the_set():
    with pytest.raises(LetheError):
        topk_jaccard([1, 2, 3], [3, 2, 1], 2, tails="both")
    with pytest.raises(LetheError):
        topk_jaccard([1, 2, 3], [3, 2, 1], 0)
