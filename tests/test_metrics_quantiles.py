"""Likelihood quantile (taming eq. 14), quantile drop (eq. 15) and the normality test behind "sigma units"."""

import numpy as np
import pytest
from scipy import stats

from core.errors import EmptySelection, LetheError, NonFiniteError
from core.metrics import likelihood_quantile, likelihood_quantiles, normality_test, quantile_drop, remember_stats

# NLLs with population mean exactly 10 and population standard deviation exactly 2 (eq. 7).
REFERENCE = np.array([8.0, 12.0] * 50)


def test_remember_stats_use_the_population_standard_deviation():
    assert remember_stats(REFERENCE) == (10.0, 2.0)


def test_quantile_is_one_minus_the_normal_cdf_of_the_nll():
    q = likelihood_quantiles([10.0, 12.0, 18.0, 6.0], REFERENCE)
    assert q[0] == pytest.approx(0.5)  # a typical image
    assert q[1] == pytest.approx(1 - stats.norm.cdf(1.0))  # one sigma less likely than average
    assert q[2] == pytest.approx(3.167e-5, rel=1e-3)  # the paper's delta = 4 threshold, eq. 13
    assert q[3] == pytest.approx(stats.norm.cdf(2.0))  # more likely than average: q above 0.5


def test_quantile_of_a_set_is_the_mean_over_its_images():
    assert likelihood_quantile([10.0, 12.0], REFERENCE) == pytest.approx((0.5 + 1 - stats.norm.cdf(1.0)) / 2)
    assert likelihood_quantile(10.0, REFERENCE) == pytest.approx(0.5)


def test_empirical_quantile_is_the_fraction_of_reference_nlls_at_least_as_large():
    ref = np.arange(1.0, 101.0)
    assert likelihood_quantiles([50.5, 0.0, 100.0, 101.0], ref, method="empirical").tolist() == pytest.approx([0.5, 1.0, 0.01, 0.0])


def test_quantile_drop_is_before_minus_after():
    assert quantile_drop(0.5, 0.03) == pytest.approx(0.47)
    assert quantile_drop([0.4, 0.6], [0.1, 0.1]) == pytest.approx(0.4)


def test_quantile_bad_inputs():
    with pytest.raises(NonFiniteError, match="likelihood_quantile"):
        likelihood_quantile([float("nan")], REFERENCE)
    with pytest.raises(LetheError, match="sigma_R = 0"):
        likelihood_quantile([1.0], [3.0, 3.0])
    with pytest.raises(EmptySelection):
        likelihood_quantile([], REFERENCE)
    with pytest.raises(LetheError):
        likelihood_quantile([1.0], REFERENCE, method="median")


def test_normality_test_accepts_normal_and_rejects_skewed_nlls():
    rng = np.random.default_rng(0)
    stat, p, name = normality_test(rng.normal(size=2000))
    assert name == "D'Agostino-Pearson" and p > 0.01
    assert normality_test(rng.exponential(size=2000)).p_value < 1e-6


def test_normality_test_uses_shapiro_wilk_for_small_samples():
    rng = np.random.default_rng(1)
    result = normality_test(rng.normal(size=12))
    assert result.test_name == "Shapiro-Wilk" and 0 <= result.p_value <= 1
    assert normality_test(rng.normal(size=200), method="ks").test_name == "Kolmogorov-Smirnov"


def test_normality_test_needs_several_distinct_values():
    with pytest.raises(EmptySelection):
        normality_test([1.0, 2.0])
    with pytest.raises(EmptySelection):
        normality_test([3.0] * 30)
