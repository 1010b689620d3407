"""Invalidity: the mass a generator puts on a forget region (redaction paper, Sec. IV "Evaluation Metrics").

Inv(p_G) = integral over Omega of p_G(x) dx, measured as "the fraction of N generated samples that fall into Omega"
(the paper uses N = 50K). The fraction of N independent samples is a binomial proportion, so its standard error
is sqrt(p (1 - p) / N); it is reported with the value so that two invalidities can be told apart honestly.
"""

from __future__ import annotations

import math
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
