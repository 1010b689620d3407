"""Metrics: pure functions on tensors/arrays, plus thin wrappers that take model bundles.

- invalidity: `invalidity`, `gan_invalidity`, `binomial_stderr`, `wilson_interval` (redaction paper)
- quality: `inception_score`, `frechet_distance`, `fid_from_features`, `classifier_inception_score`,
  `classifier_fid`, `gan_inception_score`, `gan_fid`, `metric_name`, `class_shares` (IS/FID judged by a named domain classifier)
- likelihood: `kde_log_likelihood` (influence paper's ALL), `nll_nats`, `bits_per_dim`, `flow_nll`,
  `flow_bits_per_dim`
- quantiles: `likelihood_quantile(s)`, `quantile_drop`, `remember_stats` (taming paper, eq. 13-15)
- normality: `normality_test`
- ranking: `kendall_tau`, `topk_jaccard` (influence paper's evaluation)
- sampling: `iter_gan_samples` (batches identical to `GANBundle.sample`)
- fitting_capacity: `fitting_capacity`, `gan_fitting_capacity` (GOLD paper)
"""

from core.metrics.fitting_capacity import fitting_capacity, gan_fitting_capacity
from core.metrics.invalidity import binomial_stderr, gan_invalidity, invalidity, wilson_interval
from core.metrics.likelihood import bits_per_dim, flow_bits_per_dim, flow_nll, kde_log_likelihood, nll_nats
from core.metrics.normality import NormalityResult, normality_test
from core.metrics.quality import (
    class_shares,
    classifier_fid,
    classifier_inception_score,
    fid_from_features,
    frechet_distance,
    gan_fid,
    gan_inception_score,
    gaussian_stats,
    inception_score,
    metric_name,
)
from core.metrics.quantiles import likelihood_quantile, likelihood_quantiles, quantile_drop, remember_stats
from core.metrics.ranking import critical_set, kendall_tau, topk_jaccard
from core.metrics.results import Estimate, NamedScore, SplitScore
from core.metrics.sampling import iter_gan_samples

__all__ = [
    "Estimate",
    "NamedScore",
    "NormalityResult",
    "SplitScore",
    "binomial_stderr",
    "bits_per_dim",
    "class_shares",
    "classifier_fid",
    "classifier_inception_score",
    "critical_set",
    "fid_from_features",
    "fitting_capacity",
    "flow_bits_per_dim",
    "flow_nll",
    "frechet_distance",
    "gan_fid",
    "gan_fitting_capacity",
    "gan_inception_score",
    "gan_invalidity",
    "gaussian_stats",
    "iter_gan_samples",
    "inception_score",
    "invalidity",
    "kde_log_likelihood",
    "kendall_tau",
    "likelihood_quantile",
    "likelihood_quantiles",
    "metric_name",
    "nll_nats",
    "normality_test",
    "quantile_drop",
    "remember_stats",
    "topk_jaccard",
    "wilson_interval",
]
