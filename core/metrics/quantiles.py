"""Likelihood quantile and quantile drop (taming paper, Sec. 4.1, eq. 13-15).

The remember set's NLLs under a model are assumed normal, N(mu_R, sigma_R^2) (eq. 6-7). For a sample with
NLL x, eq. 14 defines the likelihood quantile

    q(x) = 1 - F^(mu_R, sigma_R)(x) = 1 - Phi((x - mu_R) / sigma_R),

the probability that a remember image has a *higher* NLL (is less likely) than this sample. Direction: q near 1
means the model finds the sample more likely than almost every remembered image; q = 0.5 means typical; q near
0 means forgotten (at the paper's threshold delta = 4 sigma, q = 1 - Phi(4) ~ 3.2e-5, eq. 13). For a set,
q is the mean over its images ("generalized to a set of images using the mean").

The quantile drop of a set S between a base and a tamed model is QD(S) = q_B(S) - q_T(S) (eq. 15), where each q
uses its own model's NLLs *and* its own model's remember statistics. Positive QD = the set became less likely
relative to what the model remembers; the paper wants a large QD on the forget set and QD near 0 elsewhere.

Because "sigma units" only mean what they claim if remember NLLs are normal, `method="empirical"` offers the
distribution-free version (fraction of remember NLLs >= the sample's NLL); check with `normality_test`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from core.errors import LetheError
from core.metrics.checks import as_array

METHODS = ("normal", "empirical")


def remember_stats(reference_nlls: Any) -> tuple[float, float]:
    """(mu_R, sigma_R) of the remember-set NLLs, eq. 7 (population standard deviation)."""
    ref = as_array(reference_nlls, "remember_stats", "reference_nlls", ndim=1, min_len=2)
    sigma = float(ref.std())
    if sigma == 0.0:
        raise LetheError(
            "remember_stats: all reference NLLs are equal, so sigma_R = 0 and quantiles are undefined.",
            "Use a remember set of several different images.",
        )
    return float(ref.mean()), sigma


def likelihood_quantiles(nlls: Any, reference_nlls: Any, method: str = "normal") -> np.ndarray:
    """Per-sample likelihood quantile q(x) of eq. 14 for each NLL in `nlls` (same units as the reference).

    `method="normal"`: 1 - Phi((nll - mu_R) / sigma_R) as in the paper; `"empirical"`: the fraction of
    reference NLLs that are >= nll."""
    x = np.atleast_1d(as_array(nlls, "likelihood_quantile", "nlls", min_len=1))
    if x.ndim != 1:
        raise LetheError(f"likelihood_quantile: nlls must be 1-D, got shape {x.shape}.", "Pass one NLL per image.")
    if method == "normal":
        mu, sigma = remember_stats(reference_nlls)
        return stats.norm.sf(x, loc=mu, scale=sigma)
    if method == "empirical":
        ref = np.sort(as_array(reference_nlls, "likelihood_quantile", "reference_nlls", ndim=1, min_len=1))
        return 1.0 - np.searchsorted(ref, x, side="left") / len(ref)
    raise LetheError(f"likelihood_quantile: unknown method {method!r}.", f"Use one of {METHODS}.")


def likelihood_quantile(nlls: Any, reference_nlls: Any, method: str = "normal") -> float:
    """Likelihood quantile of a set (mean of the per-image q of eq. 14), or of one image if given a scalar."""
    return float(likelihood_quantiles(nlls, reference_nlls, method).mean())


def quantile_drop(q_before: Any, q_after: Any) -> float:
    """QD = q_B(S) - q_T(S), eq. 15. Accepts set quantiles or per-image quantiles (each is averaged first)."""
    before = as_array(q_before, "quantile_drop", "q_before")
    after = as_array(q_after, "quantile_drop", "q_after")
    return float(np.mean(before) - np.mean(after))
