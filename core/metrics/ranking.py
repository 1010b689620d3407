"""Agreement between two scorings of the same instances (influence paper, Sec. 5.1, after Hara et al. 2019):
Kendall's tau for the whole ordering, and the Jaccard index of the "critical instances" each scoring picks."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from core.errors import LetheError
from core.metrics.checks import as_array, check_same_length

TAILS = ("top", "bottom", "both")


def kendall_tau(a: Any, b: Any) -> float:
    """Kendall's tau-b (ties corrected) between two scorings of the same instances: 1 for the same order,
    -1 for the reversed order, about 0 for unrelated orders."""
    x = as_array(a, "kendall_tau", "a", ndim=1, min_len=2)
    y = as_array(b, "kendall_tau", "b", ndim=1, min_len=2)
    check_same_length(x, y, "kendall_tau", "a and b")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise LetheError(
            "kendall_tau: one scoring gives every instance the same value, so tau is undefined.",
            "Compare scorings that distinguish at least two instances.",
        )
    return float(stats.kendalltau(x, y, variant="b").statistic)


def critical_set(scores: Any, k: int, tails: str = "top") -> set[int]:
    """Indices of the k highest ("top"), k lowest ("bottom"), or both ("both": 2k indices) scores.

    Ties are broken by index (stable sort), so the set is deterministic."""
    s = as_array(scores, "topk_jaccard", "scores", ndim=1)
    need = 2 * k if tails == "both" else k
    if tails not in TAILS:
        raise LetheError(f"topk_jaccard: unknown tails {tails!r}.", f"Use one of {TAILS}.")
    if not 1 <= need <= len(s):
        raise LetheError(
            f"topk_jaccard: k = {k} with tails={tails!r} needs {need} of {len(s)} instances.",
            "Choose k so the critical set is no larger than the number of scored instances.",
        )
    order = np.argsort(-s, kind="stable")
    low = np.argsort(s, kind="stable")
    picked = {"top": order[:k], "bottom": low[:k], "both": np.concatenate([order[:k], low[:k]])}[tails]
    return {int(i) for i in picked}


def topk_jaccard(scores_a: Any, scores_b: Any, k: int, tails: str = "top") -> float:
    """Jaccard index |A & B| / |A | B| of the critical sets two scorings pick (`critical_set`).

    The influence paper's evaluation uses tails="both" with k = 10: "10 instances with the largest positive and
    largest negative influence values ... a set of 20 critical instances". 1 = same sets, 0 = disjoint."""
    a = as_array(scores_a, "topk_jaccard", "scores_a", ndim=1)
    b = as_array(scores_b, "topk_jaccard", "scores_b", ndim=1)
    check_same_length(a, b, "topk_jaccard", "scores_a and scores_b")
    set_a, set_b = critical_set(a, k, tails), critical_set(b, k, tails)
    return len(set_a & set_b) / len(set_a | set_b)
