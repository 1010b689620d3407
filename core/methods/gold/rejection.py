"""GOLD rejection sampling (Mo et al. 2019, Sec. 3.1, eq. 6), with the logit shift of discriminator rejection
sampling (Azadi et al. 2019, Sec. 3.2).

Eq. 6:   r(x) = exp(d_bal(x, c)) / M,   M = max of exp(d_bal) over a burn-in of generated samples.
Shift:   F(x) = logit(r(x)) - gamma_c = (d_bal - log M) - log(1 - exp(d_bal - log M - eps)) - gamma_c, and x is
         accepted with probability sigmoid(F(x)); gamma_c is the p-th percentile of logit(r) over the burn-in
         samples of class c, so every class keeps about the same acceptance rate and the accepted labels stay
         uniform. p = 0.1 for 1-channel images and 0.5 for 3-channel ones (the paper's choice); a larger p
         rejects more (precision over recall). As in DRS, M grows when a later sample exceeds it.

`rejection_sample` draws exactly the number of samples asked for and reports the acceptance rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import time

import torch

from core.errors import LetheError
from core.methods.gold.estimator import GoldScores, balance_ratio, check_classes, check_finite, score
from core.models.bundles import GANBundle
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn

EPS = 1e-6


def default_p(gan: GANBundle) -> float:
    """The paper's percentile: 0.1 for 1-channel images (and non-image data), 0.5 for 3-channel images."""
    shape = gan.card.data_shape or []
    return 0.5 if len(shape) == 3 and shape[0] == 3 else 0.1


def check_p(p: float) -> float:
    p = float(p)
    if not 0.0 <= p < 1.0:
        raise LetheError(f"the rejection percentile p must be in [0, 1), got {p}.",
                         "The paper uses p = 0.1 for 1-channel images and 0.5 for 3-channel ones.")
    return p


@dataclass(frozen=True)
class Calibration:
    """What the burn-in fixes: log M (eq. 6), sigma_G / sigma_C (eq. 4) and the per-class shifts gamma_c."""

    log_m: float
    ratio: float
    gamma: torch.Tensor
    p: float
    burn_in: int


def acceptance_logit(d_bal: torch.Tensor, log_m: float) -> torch.Tensor:
    """logit(r) for r = exp(d_bal - log M) <= 1 (DRS's F before the shift), finite for every d_bal <= log M."""
    shifted = d_bal - log_m - EPS
    return shifted - torch.log(-torch.expm1(shifted))


def calibrate(scores: GoldScores, p: float, num_classes: int, ratio: float | None = None) -> Calibration:
    """M, the balance ratio and gamma_c from scores of generated burn-in samples (eq. 4 and 6)."""
    p = check_p(p)
    if scores.kind != "generated":
        raise LetheError("rejection sampling calibrates on generated samples.", "Score a burn-in of samples of G.")
    ratio = balance_ratio(scores.marginal, scores.conditional) if ratio is None else float(ratio)
    d_bal = scores.gold(ratio)
    log_m = float(d_bal.max())
    f = acceptance_logit(d_bal, log_m)
    gamma = torch.full((num_classes,), float(torch.quantile(f, p)))
    for c in range(num_classes):
        mine = f[scores.labels == c]
        if len(mine):
            gamma[c] = torch.quantile(mine, p)
    return Calibration(log_m, ratio, gamma, p, len(scores))


def acceptance_probability(scores: GoldScores, calibration: Calibration) -> torch.Tensor:
    """sigmoid(logit(r(x)) - gamma_c) for generated samples, with M at least the largest score seen here."""
    d_bal = scores.gold(calibration.ratio)
    log_m = max(calibration.log_m, float(d_bal.max()))
    f = acceptance_logit(d_bal, log_m) - calibration.gamma[scores.labels]
    prob = torch.sigmoid(f)
    check_finite(prob, "acceptance probability")
    return prob


@dataclass
class RejectionResult:
    """Accepted samples (exactly as many as asked), their labels and scores, a few rejected ones, the counts."""

    x: torch.Tensor
    labels: torch.Tensor
    scores: GoldScores
    proposed: int
    calibration: Calibration
    rejected_x: torch.Tensor
    rejected_labels: torch.Tensor
    seconds: float = 0.0

    @property
    def acceptance_rate(self) -> float:
        return len(self.x) / self.proposed


def burn_in(gan: GANBundle, n: int, seed: int, p: float, batch_size: int = 500) -> Calibration:
    """Score `n` fresh samples of G (uniform classes) and calibrate on them."""
    if n < 2:
        raise LetheError(f"the burn-in needs at least 2 samples, got {n}.", "The authors use 50,000.")
    x, y = gan.sample(n, seed=seed, batch_size=batch_size)
    return calibrate(score(gan, x, y, "generated", batch_size), p, gan.num_classes)


def rejection_sample(gan: GANBundle, n: int, p: float, seed: int = 0, label: int | None = None,
                     calibration: Calibration | None = None, burn_in_size: int = 50_000, batch_size: int = 500,
                     keep_rejected: int = 64, max_proposals: int | None = None, progress: ProgressFn = NO_PROGRESS,
                     cancel: CancelToken | None = None) -> RejectionResult:
    """Draw exactly `n` samples of G accepted with probability sigmoid(logit r(x) - gamma_c) (eq. 6 with the DRS
    shift), labels uniform or all `label`; proposals come from seed `seed` (the burn-in from `seed + 1`)."""
    start = time.perf_counter()
    check_p(p)
    if n < 1:
        raise LetheError(f"asked for {n} samples.", "Ask for at least one.")
    if label is not None:
        check_classes(gan, label)
    calibration = calibration or burn_in(gan, burn_in_size, seed + 1, p, batch_size)
    max_proposals = max_proposals or 1000 * n + 10_000
    gen = torch.Generator().manual_seed(seed)
    accepted: list[tuple[torch.Tensor, torch.Tensor, GoldScores]] = []
    rejected_x, rejected_y = [], []
    count = proposed = 0
    while count < n:
        if cancel is not None:
            cancel.raise_if_set()
        if proposed >= max_proposals:
            raise LetheError(f"rejection sampling accepted {count} of {proposed} proposals, short of {n}.",
                             "Lower p (a smaller percentile shift accepts more).")
        z = gan.sample_latent(batch_size, gen)
        y = (torch.full((batch_size,), label, dtype=torch.long) if label is not None
             else torch.randint(0, gan.num_classes, (batch_size,), generator=gen))
        with torch.no_grad():
            gan.eval()
            x = gan.generate(z, y.to(gan.device)).cpu()
        scores = score(gan, x, y, "generated", batch_size)
        keep = torch.rand(batch_size, generator=gen) < acceptance_probability(scores, calibration)
        positions = keep.nonzero().reshape(-1)
        if count + len(positions) >= n:  # stop at the n-th acceptance: later proposals were never needed
            used = int(positions[n - count - 1]) + 1
            keep[used:] = False
        else:
            used = batch_size
        proposed += used
        accepted.append((x[keep], y[keep], scores.subset(keep)))
        count += int(keep.sum())
        if sum(len(r) for r in rejected_x) < keep_rejected:
            rejected = ~keep
            rejected[used:] = False
            rejected_x.append(x[rejected])
            rejected_y.append(y[rejected])
        progress(ProgressEvent(count, n, {"acceptance_rate": count / proposed}, stage="rejection sampling"))
    picked = GoldScores(torch.cat([a[2].marginal for a in accepted]), torch.cat([a[2].conditional for a in accepted]),
                        torch.cat([a[1] for a in accepted]), "generated")
    return RejectionResult(torch.cat([a[0] for a in accepted]), picked.labels, picked, proposed, calibration,
                           torch.cat(rejected_x)[:keep_rejected], torch.cat(rejected_y)[:keep_rejected],
                           time.perf_counter() - start)
