"""Invalidity: the mass a generator puts on a forget region (redaction paper, Sec. IV "Evaluation Metrics").

Inv(p_G) = integral over Omega of p_G(x) dx, measured as "the fraction of N generated samples that fall into Omega"
(the paper uses N = 50K). The fraction of N independent samples is a binomial proportion, so its standard error
is sqrt(p (1 - p) / N); it is reported with the value so that two invalidities can be told apart honestly.

That standard error is 0 when no sample is invalid, which would claim an invalidity of exactly 0. The Wilson score
interval (Wilson 1927) does not collapse there: for 0 of N its upper end is z^2 / (N + z^2), about 3.8 / N at 95%,
so "0 of 2,000" honestly reads "below 0.19%". `wilson_interval` gives it for any count.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Callable

import numpy as np
import torch

from core.errors import LetheError, ShapeMismatch
from core.metrics.checks import as_flags
from core.metrics.results import Estimate
from core.metrics.sampling import iter_gan_samples
from core.models.bundles import GANBundle
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn


def binomial_stderr(p: float, n: int) -> float:
    """Standard error sqrt(p (1 - p) / n) of a proportion p measured on n independent samples."""
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (lower, upper) for a binomial proportion of `successes` in `n` trials.

    centre = (k + z^2/2) / (n + z^2), half-width = z sqrt(k (n - k) / n + z^2 / 4) / (n + z^2), with z the two-sided
    normal quantile of `confidence`. Unlike p +- z SE it stays inside [0, 1] and has a positive width at k = 0
    (upper end z^2 / (n + z^2)) and at k = n."""
    if n < 1 or not 0 <= successes <= n:
        raise LetheError(f"a binomial interval needs 0 <= successes <= n and n >= 1 (got {successes} of {n}).",
                         "Count the invalid samples among at least one generated sample.")
    if not 0.0 < confidence < 1.0:
        raise LetheError(f"confidence {confidence} is not in (0, 1).", "Use e.g. 0.95.")
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    z2 = z * z
    centre = (successes + z2 / 2.0) / (n + z2)
    half = z * math.sqrt(successes * (n - successes) / n + z2 / 4.0) / (n + z2)
    lower = 0.0 if successes == 0 else max(0.0, centre - half)
    upper = 1.0 if successes == n else min(1.0, centre + half)
    return lower, upper


def invalidity(invalid_flags: Any = None, *, valid_mask: Any = None) -> Estimate:
    """Fraction of samples that are invalid, with its binomial standard error.

    Pass exactly one of `invalid_flags` (True = inside the forget region Omega) or `valid_mask` (True = valid,
    the paper's v(x) = 1); booleans or 0/1 numbers, one per generated sample.
    """
    if (invalid_flags is None) == (valid_mask is None):
        raise LetheError(
            "invalidity needs exactly one of invalid_flags or valid_mask.",
            "Pass invalid_flags (True = sample is in the forget region) or valid_mask=... (True = valid).",
        )
    if invalid_flags is not None:
        flags = as_flags(invalid_flags, "invalidity", "invalid_flags")
    else:
        flags = ~as_flags(valid_mask, "invalidity", "valid_mask")
    n = len(flags)
    p = float(flags.mean())
    return Estimate(p, binomial_stderr(p, n), n, "invalidity")


@torch.no_grad()
def gan_invalidity(
    gan: GANBundle,
    is_invalid: Callable[[torch.Tensor], torch.Tensor],
    n: int = 10_000,
    seed: int = 0,
    batch_size: int = 500,
    progress: ProgressFn = NO_PROGRESS,
    cancel: CancelToken | None = None,
) -> Estimate:
    """Invalidity of `gan` on n samples: `is_invalid(x)` maps a batch in [0, 1] to one bool per sample.

    Samples are drawn exactly as `gan.sample(n, seed)` draws them (same latents, same labels for a conditional
    GAN), but judged batch by batch so that 50K images never sit in memory at once.
    """
    invalid, seen = 0, 0
    total_batches = math.ceil(max(n, 0) / batch_size)
    for step, (x, _) in enumerate(iter_gan_samples(gan, n, seed, batch_size), start=1):
        if cancel is not None:
            cancel.raise_if_set()
        flags = as_flags(is_invalid(x), "gan_invalidity", "is_invalid(x)")
        if len(flags) != len(x):
            raise ShapeMismatch(
                f"gan_invalidity: is_invalid returned {len(flags)} flags for {len(x)} samples.",
                "is_invalid must return one boolean per sample in the batch.",
            )
        invalid += int(np.count_nonzero(flags))
        seen += len(x)
        progress(ProgressEvent(step, total_batches, {"invalidity": invalid / seen}))
    p = invalid / n
    return Estimate(p, binomial_stderr(p, n), n, "invalidity")
