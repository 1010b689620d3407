"""A normality test for NLLs: the taming paper measures forgetting in units of the remember set's NLL standard
deviation, which means what it claims only if those NLLs are normal (eq. 6; the paper supports the assumption
with a Kolmogorov-Smirnov test). Report this test next to any sigma threshold or likelihood quantile."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from core.errors import EmptySelection, LetheError
from core.metrics.checks import as_array

#: Below this many values D'Agostino-Pearson's kurtosis test is unreliable; Shapiro-Wilk is used instead.
SMALL_N = 20


class NormalityResult(NamedTuple):
    statistic: float
    p_value: float
    test_name: str


def normality_test(nlls: Any, method: str = "auto") -> NormalityResult:
    """Test H0: the values are normally distributed. A small p-value (say < 0.05) rejects normality.

    `method`: "auto" (D'Agostino-Pearson for n >= 20, Shapiro-Wilk below), "dagostino", "shapiro", or "ks"
    (the paper's Kolmogorov-Smirnov test against a normal with the sample's own mean and std; estimating the
    parameters from the same data makes it lenient, so prefer the others when they apply).
    """
    x = as_array(nlls, "normality_test", "nlls", ndim=1, min_len=3)
    if np.ptp(x) == 0:
        raise EmptySelection("normality_test: all values are identical.", "Test NLLs of several different images.")
    if method == "auto":
        method = "dagostino" if len(x) >= SMALL_N else "shapiro"
    if method == "dagostino":
        if len(x) < 8:
            raise EmptySelection(
                f"normality_test: D'Agostino-Pearson needs at least 8 values, got {len(x)}.", "Use method='shapiro'."
            )
        res = stats.normaltest(x)
        name = "D'Agostino-Pearson"
    elif method == "shapiro":
        res = stats.shapiro(x)
        name = "Shapiro-Wilk"
    elif method == "ks":
        res = stats.kstest(x, "norm", args=(x.mean(), x.std(ddof=1)))
        name = "Kolmogorov-Smirnov"
    else:
        raise LetheError(f"normality_test: unknown method {method!r}.", "Use auto, dagostino, shapiro or ks.")
    return NormalityResult(float(res.statistic), float(res.pvalue), name)
