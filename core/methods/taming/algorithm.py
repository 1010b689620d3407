"""Algorithm 1 of *Taming Normalizing Flows* and the measurements around it (Sec. 4.1-4.2, eq. 13-15, Table 1-2).

`tame(flow, sets, config, ...)` fine-tunes a copy of `flow` (the base is never modified) until every forget image's
NLL is within epsilon sigma_R of the threshold mu_R +- delta sigma_R (eq. 10), a target attribute share is met, or
`max_iterations` pass; then it measures both models on every set of `TamingSets`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from core.distributed import team as current_team
from core.errors import LetheError, NonFiniteError
from core.methods.taming import losses
from core.data.selection import attribute_index, evaluate_expression, expression_names, parse_expression
from core.methods.taming.sets import TamingSets
from core.metrics.normality import normality_test
from core.metrics.quality import fid_from_features, metric_name
from core.metrics.quantiles import likelihood_quantile, remember_stats
from core.models.bundles import ClassifierBundle, FlowBundle
from core.models.flows import standard_normal_log_prob
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn

DIRECTIONS = ("forget", "emphasize")


@dataclass
class TamingConfig:
    """Hyperparameters of Algorithm 1, with where each default comes from.

    From the paper: `delta` = 4 (Sec. 3.3, "delta = 4 in our experiments"), `refresh_every` = 10 (Sec. 4: the
    remember NLL distribution is re-estimated every 10 iterations), `max_iterations` = 800 (Sec. 4, "no more
    than 800 iterations").
    From the authors' code, where the paper gives no number: `alpha` = 0.6 (loss = 0.6 forget + 0.4 remember),
    `gamma` = 0.6 (remember = 0.6 KLs + 0.4 NLL), `epsilon` = 0.15 (stop when every forget image is within
    0.15 sigma of the threshold), losses in bits per dimension, mu_R/sigma_R from a sample of remember images.
    Lethe's own choices, for 32x32 flows with ~0.4 M parameters on 2 CPU cores (the authors fine-tune a
    128x128 Glow with Adam 5e-5, remember batch 8, statistics from 1024 images):
    - `lr` = 2e-4 Adam (the authors' 5e-5 is for a far larger Glow). Measured on synthfaces-flow forgetting
      identity 17 (20 images): 1e-4 brings the forget images' mean distance to ~0 in ~250 iterations but moves on
      slowly after; 5e-4 jolts the remember distribution in its first steps (KL 0.8, remember mu_R +3.6% after 20
      iterations). At 2e-4 the forget images' mean distance still wanders by ~0.1-0.2 sigma_R between refreshes
      near the threshold, so eq. 10 is met at a moment when the whole person sits inside the band; checking it
      at every refresh (below) catches such moments.
    - `remember_batch` = 32 and `stats_size` = 512: a normal fit (mean, std) to 8 NLLs is too noisy for the KL
      terms on a small model, and 512 images give sigma_R to about 3% while costing a quarter of 1024's time.
    - `forget_batch` = 32: every forget image at once when there are fewer (one identity has 20), a random
      batch per iteration otherwise (Algorithm 1, line 3), and the stopping rule is checked on that batch.
    - `forget_pairs` = 1 and `check_pairs` = 8: on 5-bit images "the NLL of x" is an expectation over the
      dequantization noise u, and one draw is a noisy estimate of it. On the base synthfaces-flow one draw's
      noise is 0.08 sigma_R (0.011 bits/dim), but taming carves the density around the forget images and it grows
      to 0.31 sigma_R (0.042 bits/dim, measured after 400 iterations on identity 101): with one or three
      independent draws twenty images sitting exactly on the threshold essentially never all pass |d| < 0.15,
      and the run used to end at the cap with max |d| jittering between 0.3 and 0.7 (identities 101 and 250).
      An antithetic pair (u, 1 - u; `FlowBundle.dequantize_antithetic`) cancels the part of the NLL that is
      linear in u: 8 pairs have a noise of 0.0036 bits/dim against 0.011 for 16 independent draws. So the
      training loss scores each forget image on one pair, and eq. 10 is judged on 8 pairs with fresh
      statistics at every refresh and whenever the batch's own estimate passes. Identities 101 and 250 then
      stop at iterations 264 and 270.
    Ablations of Table 2: `remember_loss=False` drops L_R, `forward_kl` / `reverse_kl` / `nll_term` drop one of
    its terms.
    `target_share` (debiasing, Sec. 4.2) picks the direction from the attribute's current share of generated
    samples and stops once the share is within `share_tolerance` of the target (or crosses it), judged every
    `monitor_every` iterations on `monitor_samples` = 512 fixed latents: with 256, smile rebalancing toward 0.5
    stopped at 0.496 on the monitor batch but measured 0.547 on 2,000 fresh samples (the monitor's standard error
    is about 3 points at 256).
    """

    delta: float = 4.0
    epsilon: float = 0.15
    alpha: float = 0.6
    gamma: float = 0.6
    lr: float = 2e-4
    max_iterations: int = 800
    refresh_every: int = 10
    remember_batch: int = 32
    forget_batch: int = 32
    forget_pairs: int = 1
    check_pairs: int = 8
    stats_size: int = 512
    direction: str = "forget"
    target_share: float | None = None
    share_tolerance: float = 0.02
    remember_loss: bool = True
    forward_kl: bool = True
    reverse_kl: bool = True
    nll_term: bool = True
    monitor_every: int = 20
    monitor_samples: int = 512
    eval_samples: int = 1000
    temperature: float | None = None
    preview: int = 16

    def validate(self) -> None:
        if self.direction not in DIRECTIONS:
            raise LetheError(f"unknown direction {self.direction!r}.", "Use forget or emphasize.")
        checks = [(self.delta > 0, "delta must be positive (the paper uses 4)"),
                  (self.epsilon > 0, "epsilon must be positive (the authors use 0.15)"),
                  (0 < self.alpha <= 1, "alpha must be in (0, 1]"), (0 <= self.gamma <= 1, "gamma must be in [0, 1]"),
                  (self.lr > 0, "lr must be positive"), (self.max_iterations >= 1, "max_iterations must be >= 1"),
                  (self.refresh_every >= 1, "refresh_every must be >= 1"),
                  (self.remember_batch >= 2 and self.forget_batch >= 1, "batches must hold at least 2 / 1 images"),
                  (self.stats_size >= 2, "stats_size must be >= 2")]
        if self.target_share is not None:
            checks.append((0 <= self.target_share <= 1, "target_share must be a fraction in [0, 1]"))
        for ok, what in checks:
            if not ok:
                raise LetheError(f"bad taming setting: {what}.", "See TamingConfig for the defaults and their sources.")
        if self.remember_loss and not (self.nll_term or self.forward_kl or self.reverse_kl):
            raise LetheError("every term of the remember loss is switched off.",
                             "Use remember_loss=False for the 'no remember loss' ablation.")


@dataclass
class TamingResult:
    """The tamed model (a copy), final metrics, figures (data the run store saves) and the per-iteration history.

    `best`: for a run that judges a share, the model at the judged iteration whose share was best (see
    `BestShare`) when that is not the final model; None otherwise (then the final model is the best one)."""

    bundle: FlowBundle
    metrics: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    best: FlowBundle | None = None


class BestShare:
    """The best share seen at the judged iterations of a run, and the model's weights there.

    Best is closest to the target share when there is one (debiasing, Sec. 4.2), else the lowest share when
    forgetting and the highest when emphasising. An attribute run's share is not monotone in the iterations (on
    synthfaces-flow, forgetting glasses falls to 10-12% by iteration 80-200 and rebounds to 28% by 300), so the
    model at the end of a fixed number of iterations can be worse than one the run passed through. The share
    compared is the monitor batch's (`monitor_samples` fixed latents), the one the stopping rule reads; the best
    model is then measured again on the evaluation's own latents, so picking the best of noisy readings does not
    flatter it."""

    def __init__(self, direction: str, target: float | None) -> None:
        self.direction, self.target = direction, target
        self.iteration: int | None = None
        self.share: float | None = None
        self.state: dict[str, torch.Tensor] | None = None

    def gap(self, share: float) -> float:
        """How far `share` is from the best possible (smaller is better)."""
        if self.target is not None:
            return abs(share - self.target)
        return share if self.direction == "forget" else -share

    def offer(self, iteration: int, share: float, model: FlowBundle) -> None:
        """Keep `model`'s weights if `share` beats the best so far (the earliest iteration wins a tie)."""
        if self.share is None or self.gap(share) < self.gap(self.share):
            self.iteration, self.share = iteration, share
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.flow.state_dict().items()}

    def model(self, final: FlowBundle, final_iteration: int) -> FlowBundle | None:
        """A copy of `final` with the best weights, or None when the best is the final model (or none was seen)."""
        if self.state is None or self.iteration == final_iteration:
            return None
        best = final.copy()
        best.flow.load_state_dict(self.state)
        best.eval()
        return best


# --------------------------------------------------------------------------------------------- measurements


def to_bpd(flow: FlowBundle, nll: torch.Tensor) -> torch.Tensor:
    """NLL in nats per sample -> bits per dimension (the unit of every taming loss): `bits_per_dim`'s formula,
    without its finiteness check (a host read per call): non-finite values pass through for the callers to flag."""
    return (nll + flow.dim * flow.n_bits * math.log(2)) / (flow.dim * math.log(2))


@torch.no_grad()
def _bpd_in_batches(flow: FlowBundle, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Per-row NLL in bits/dim (CPU float64) of inputs already on the flow's continuous scale (dequantized)."""
    out = [to_bpd(flow, -flow.log_prob(x[i:i + batch_size].to(flow.device))).double().cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


@torch.no_grad()
def nlls_bpd(flow: FlowBundle, x: torch.Tensor, seed: int = 0, batch_size: int = 256) -> torch.Tensor:
    """Per-image NLL in bits/dim (CPU float64), dequantized with `seed`; non-finite values are kept (not raised),
    so a caller can flag them in a histogram and stop with a clear message."""
    gen = torch.Generator().manual_seed(seed)
    flow.eval()
    # Dequantized batch by batch (not all at once) so a seed gives the same noise it always has.
    batches = (flow.dequantize(x[i:i + batch_size].cpu(), generator=gen) for i in range(0, len(x), batch_size))
    return torch.cat([_bpd_in_batches(flow, b, batch_size) for b in batches] or
                     [torch.zeros(0, dtype=torch.float64)])


@torch.no_grad()
def expected_nlls_bpd(flow: FlowBundle, x: torch.Tensor, pairs: int, seed: int = 0) -> torch.Tensor:
    """Per-image NLL in bits/dim averaged over `pairs` antithetic pairs of dequantizations (CPU float64): the
    expectation over dequantization noise that "the NLL of an image" means, estimated with little noise (see
    `FlowBundle.dequantize_antithetic`). Continuous data has no noise: one exact pass."""
    if not flow.n_bits:
        return nlls_bpd(flow, x, seed)
    gen = torch.Generator().manual_seed(seed)
    flow.eval()
    copies = flow.dequantize_antithetic(x.cpu(), pairs, gen).reshape(2 * pairs, len(x), *x.shape[1:])
    return torch.stack([_bpd_in_batches(flow, c) for c in copies]).mean(0)


def _finite_or_raise(values: torch.Tensor, what: str, model: str) -> None:
    bad = int((~torch.isfinite(values)).sum())
    if bad:
        raise NonFiniteError(f"{model} gives non-finite NLLs for {bad} of {len(values)} {what}.",
                             "The flow is broken on these inputs (check they are the flow's own data in [0, 1]); "
                             "taming cannot measure distances to the threshold.")


def sample_temperature(flow: FlowBundle, config: TamingConfig) -> float:
    """Sampling temperature for shares, FID and previews: 0.7 for image flows (Glow), 1 for 2-D toys."""
    if config.temperature is not None:
        return config.temperature
    return 0.7 if len(flow.data_shape) == 3 else 1.0


@torch.no_grad()
def samples_from(flow: FlowBundle, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The flow's samples for fixed latents `z` (clamped to [0, 1] for images), on the CPU."""
    flow.eval()
    x = torch.cat([flow.inverse(z[i:i + batch_size].to(flow.device)).cpu() for i in range(0, len(z), batch_size)])
    return x.clamp(0, 1) if flow.n_bits else x


def fixed_latents(flow: FlowBundle, n: int, seed: int, temperature: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((n, *flow.flow.latent_shape), generator=gen) * temperature


#: A judge's reading of a sample is "unsure" when its probability for an attribute the criterion names (or its
#: top label probability) lies strictly between these bounds.
UNSURE = (0.1, 0.9)


class ShareJudge:
    """The share of samples carrying the forget criterion: an attribute expression judged by the attribute
    classifier, a label judged by a label classifier, or for 2-D toys the nearest class mean of the training data.

    `unsure` is the fraction of samples the classifier cannot call (see `UNSURE`). A share read on samples where
    the judge is unsure of many is a coin-flip for those: on synthfaces-flow's samples at T = 0.7 the attribute
    judge is unsure of glasses on 48% (4% of the training faces, 11% of their T = 0.7 reconstructions), so a
    share that does not move says little about the attribute; the run reports it beside the share."""

    def __init__(self, *, attribute: str | None = None, labels: tuple[int, ...] | None = None,
                 classifier: ClassifierBundle | None = None, class_means: torch.Tensor | None = None) -> None:
        self.attribute, self.labels, self.classifier, self.class_means = attribute, labels, classifier, class_means
        self.expr = parse_expression(attribute) if attribute else None
        self.name = attribute or (f"label={','.join(map(str, labels))}" if labels else "")

    def share(self, x: torch.Tensor) -> float:
        """Fraction of `x` that carries the criterion."""
        return self.read(x).share

    def read(self, x: torch.Tensor) -> ShareReading:
        """The share of `x` carrying the criterion, the fraction the judge is unsure of and the share among the
        samples it is sure of (both None for class means, which have no notion of doubt)."""
        hit, unsure = self.carries(x)
        if unsure is None:
            return ShareReading(float(hit.float().mean()), None, None)
        sure = ~unsure
        confident = float(hit[sure].float().mean()) if bool(sure.any()) else None
        return ShareReading(float(hit.float().mean()), float(unsure.float().mean()), confident)

    def carries(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per row of `x`: (carries the criterion, the judge is unsure of it; None for class means)."""
        if self.class_means is not None:
            pred = torch.cdist(x.float(), self.class_means.float()).argmin(1)
            return torch.isin(pred, torch.tensor(self.labels)), None
        logits = self.classifier.logits(x)
        lo, hi = UNSURE
        if self.expr is not None:
            names = tuple(self.classifier.class_names)
            hit = evaluate_expression(self.expr, logits > 0, names)
            cols = sorted({attribute_index(n, names) for n in expression_names(self.expr)})
            p = torch.sigmoid(logits[:, cols])
            unsure = ((p > lo) & (p < hi)).any(1)
        else:
            hit = torch.isin(logits.argmax(1), torch.tensor(self.labels))
            top = torch.softmax(logits, 1).max(1).values
            unsure = top < hi
        return hit, unsure


class ShareReading(NamedTuple):
    """One reading of a batch of samples by a `ShareJudge`.

    `share`: the fraction carrying the criterion. `unsure`: the fraction the judge cannot call (`UNSURE`).
    `confident`: the share among the samples the judge is sure of, None when it is sure of none. With the judge
    unsure of most samples (smile on synthfaces-flow: 81%), `share` moves with how the doubtful ones tip over the
    0.5 line, while `confident` counts only samples that clearly do or do not carry the attribute."""

    share: float
    unsure: float | None
    confident: float | None

    def metrics(self, suffix: str = "") -> dict[str, float]:
        """`share{suffix}`, `share_unsure{suffix}`, `share_confident{suffix}` (the last two when known)."""
        values = {"share": self.share, "share_unsure": self.unsure, "share_confident": self.confident}
        return {f"{k}{suffix}": v for k, v in values.items() if v is not None}


@dataclass
class Judges:
    """Optional classifiers: the share judge, and the domain classifier whose features give FID."""

    share: ShareJudge | None = None
    fid: ClassifierBundle | None = None


# ------------------------------------------------------------------------------------------------ Algorithm 1


def _batch(x: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    return x if len(x) <= n else x[torch.randperm(len(x), generator=gen)[:n]]


def random_rows(x: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """A seeded uniform sample of n rows of x without replacement (all of x when it has at most n rows).

    FID's real reference must be a random sample of its pool: the remember pool is ordered by identity, so its
    first rows would cover a few people with their own attribute shares."""
    return _batch(x, n, torch.Generator().manual_seed(seed))


def tame(flow: FlowBundle, sets: TamingSets, config: TamingConfig | None = None, seed: int = 0,
         progress: ProgressFn = NO_PROGRESS, cancel: CancelToken | None = None,
         judges: Judges | None = None) -> TamingResult:
    """Algorithm 1: tame a copy of `flow` so that `sets.forget` sits at the threshold; measure before and after.

    Raises LetheError (nothing edited, `flow` untouched) for a non-flow, a forget set already beyond the
    threshold, a remember set too small for sigma_R, non-finite NLLs, or a run that diverges."""
    config = config or TamingConfig()
    config.validate()
    cancel = cancel or CancelToken()
    judges = judges or Judges()
    if not isinstance(flow, FlowBundle):
        raise LetheError(f"taming needs a normalizing flow; {flow.card.name!r} is a {flow.family}.",
                         "Pick a flow (synthfaces-flow, mnist-flow, toy-flow).")
    if len(sets.forget) == 0:
        raise LetheError("the forget set is empty.", "Select at least one image to forget.")
    if len(sets.reference) < 2 or len(sets.remember) < config.remember_batch // 4 + 2:
        raise LetheError(f"only {len(sets.remember)} remember images: too few to estimate sigma_R.",
                         "Use a larger remember set.")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    name = flow.card.name
    temperature = sample_temperature(flow, config)
    is_image = len(flow.data_shape) == 3

    # Fixed evaluation inputs: the same dequantization noise for base and tamed models.
    base = flow
    base.eval()
    base_params = {k: v.detach().clone() for k, v in base.flow.state_dict().items()}
    stats_x = _batch(sets.remember, config.stats_size, gen)
    base_stats = nlls_bpd(base, stats_x, seed)
    base_forget = nlls_bpd(base, sets.forget, seed)
    _finite_or_raise(base_stats, "remember images", name)
    _finite_or_raise(base_forget, "forget images", name)
    mu_b, sigma_b = remember_stats(base_stats.numpy())

    # Direction: given, or (debiasing) from the share of samples that carry the attribute.
    direction = config.direction
    latents = fixed_latents(flow, config.monitor_samples, seed + 1, temperature)
    share0, reading0 = None, None
    if judges.share is not None:
        reading0 = judges.share.read(samples_from(base, latents))
        share0 = reading0.share
    if config.target_share is not None:
        if judges.share is None:
            raise LetheError("a target share needs a judge of the forget criterion in samples.",
                             "Select by attribute (synthfaces) or label (a dataset with a label classifier or a toy).")
        if abs(share0 - config.target_share) <= config.share_tolerance:
            raise LetheError(f"the share of {judges.share.name} is already {share0:.3f}, within "
                             f"{config.share_tolerance} of the target {config.target_share}.", "Nothing to do.")
        direction = "forget" if share0 > config.target_share else "emphasize"

    d0 = losses.signed_distance(base_forget, mu_b, sigma_b, config.delta, direction)
    beyond = (d0 >= -config.epsilon) if direction == "forget" else (d0 <= config.epsilon)
    if bool(beyond.all()) and bool(((d0 < 0) if direction == "forget" else (d0 > 0)).any()):
        raise LetheError(  # only the tolerance makes them count as done: epsilon is too large for these images
            f"epsilon = {config.epsilon:g} sigma_R already counts every forget image as at the threshold (distances "
            f"{float(d0.min()):.2f} to {float(d0.max()):.2f} sigma_R), so taming would stop before its first step.",
            "Lower epsilon (--epsilon on the command line; the authors use 0.15).")
    if bool(beyond.all()):
        where = "above" if direction == "forget" else "below"
        raise LetheError(
            f"every forget image is already at or {where} the threshold (distances {float(d0.min()):.2f} to "
            f"{float(d0.max()):.2f} sigma_R; threshold mu_R {'+' if direction == 'forget' else '-'} "
            f"{config.delta} sigma_R): there is nothing to {direction}.",
            "Lower or raise delta, or pick images the model still finds likely.")

    tamed: FlowBundle = flow.copy()  # Alg. 1 line 1: theta_T <- theta_B, on a copy (the base is only read)
    tamed.eval()
    params = list(tamed.flow.parameters())
    for p in params:
        p.requires_grad_(True)
    team = current_team()  # torchrun: every rank draws the same batch and computes the NLLs of its rows of it
    trained = team.wrap(tamed.flow)

    def train_nll(x: torch.Tensor, model: FlowBundle, module: torch.nn.Module) -> torch.Tensor:
        """NLL in bits/dim of every row of x, this rank computing its rows (through DDP's forward when wrapped)."""
        mine = x[team.rows(len(x))]
        if module is model.flow:
            log_p = model.log_prob(mine)
        else:
            z, logdet = module(mine)
            log_p = standard_normal_log_prob(z) + logdet
        return team.gather_rows(to_bpd(model, -log_p), len(x))
    opt = torch.optim.Adam(params, lr=config.lr)
    preview_z = latents[: config.preview]
    # Continuous data has no dequantization noise: one copy of each forget image, no pairs.
    copies = 2 * config.forget_pairs if flow.n_bits else 1
    history: list[dict[str, float]] = []
    best = BestShare(direction, config.target_share)
    total = config.max_iterations
    start = time.perf_counter()

    def event(step: int, metrics: dict[str, float], message: str, images: bool) -> None:
        imgs = samples_from(tamed, preview_z).numpy() if images and is_image and config.preview else None
        progress(ProgressEvent(step, total, metrics, images=imgs, message=message, stage="tame"))

    first = {"mu_R": mu_b, "sigma_R": sigma_b, "threshold": losses.threshold(mu_b, sigma_b, config.delta, direction),
             **_distance_metrics(d0, config.epsilon)}
    if reading0 is not None:
        first.update(reading0.metrics())
    event(0, first, f"{direction}: {len(sets.forget)} images, threshold mu_R "
                    f"{'+' if direction == 'forget' else '-'} {config.delta} sigma_R", True)

    def refresh() -> tuple[float, float]:
        stats = nlls_bpd(tamed, stats_x, seed)
        _finite_or_raise(stats, "remember images", f"the model being tamed (iteration {it})")
        return remember_stats(stats.numpy())

    def settled(x_f: torch.Tensor, stats_age: int) -> bool:
        """Eq. 10 with fresh statistics, on each forget image's NLL averaged over `check_pairs` antithetic pairs.

        Lethe's reading of "the NLL of x" for a dequantized flow: its expectation over the dequantization noise,
        not one noisy draw (see `TamingConfig.check_pairs`). Called at every refresh of mu_R, sigma_R and whenever
        the training batch's own estimate passes eq. 10; mu_R, sigma_R are then up to refresh_every - 1 updates
        old, and a few updates move them enough on a small model for a stale threshold to stop too early."""
        nonlocal mu_r, sigma_r, checked
        if stats_age:
            mu_r, sigma_r = refresh()
        nll = expected_nlls_bpd(tamed, x_f, config.check_pairs, seed + it)
        _finite_or_raise(nll, "forget images", f"the model being tamed (iteration {it})")
        d_check = losses.signed_distance(nll, mu_r, sigma_r, config.delta, direction)
        checked = float(d_check.abs().max())
        return losses.reached(d_check, config.epsilon)

    reached, stop_reason, it, share, checked = False, "max_iterations", 0, share0, None
    mu_r, sigma_r = mu_b, sigma_b
    for it in range(1, config.max_iterations + 1):
        team.agree_cancel(cancel, it - 1)
        checked = None  # max |d| of this iteration's eq. 10 check, if one ran
        stats_age = (it - 1) % config.refresh_every
        if stats_age == 0 and it > 1:  # Alg. 1 line 4, every `refresh_every` iterations
            mu_r, sigma_r = refresh()
        x_f = _batch(sets.forget, config.forget_batch, gen)  # line 3
        x_r = _batch(sets.remember, config.remember_batch, gen)
        n_f = len(x_f) * copies
        x_f_deq = tamed.dequantize_antithetic(x_f.cpu(), config.forget_pairs, gen) if flow.n_bits else x_f.cpu()
        xb = torch.cat([x_f_deq, tamed.dequantize(x_r.cpu(), gen)])
        xb = xb.to(tamed.device)
        nll = train_nll(xb, tamed, trained)
        nll_f, nll_r = nll[:n_f].reshape(copies, len(x_f)).mean(0), nll[n_f:]
        d = losses.signed_distance(nll_f, mu_r, sigma_r, config.delta, direction)  # line 5, eq. 8
        # the iteration's one host read before the step: the stopping rule needs it
        finite, near = torch.stack([torch.isfinite(nll).all(), (d.detach().abs() < config.epsilon).all()]).tolist()
        if not finite:
            raise NonFiniteError(f"the NLL became non-finite at iteration {it} of taming {name}.",
                                 f"Lower the learning rate (now {config.lr}); the base model is unchanged.")
        if (stats_age == 0 or near) and settled(x_f, stats_age):
            reached, stop_reason = True, "threshold"  # line 6-7, eq. 10
            it -= 1
            break
        d = losses.signed_distance(nll_f, mu_r, sigma_r, config.delta, direction)  # settled() may refresh mu_R
        l_f = losses.forget_loss(d, sigma_r)  # eq. 9
        live = {"loss_forget": l_f}  # this iteration's metrics, read from the device once after the step
        l_r = None
        with torch.no_grad():
            base_r = train_nll(xb[n_f:], base, base.flow)
        if config.remember_loss:
            l_r, parts = losses.remember_loss(nll_r, base_r, config.gamma, nll_term=config.nll_term,
                                              forward_kl=config.forward_kl, reverse_kl=config.reverse_kl)
            live["loss_remember"] = l_r
        else:
            _, parts = losses.remember_loss(nll_r.detach(), base_r, config.gamma)
        loss = losses.total_loss(l_f, l_r, config.alpha)  # eq. 12, line 8
        opt.zero_grad(set_to_none=True)
        team.full_loss(loss).backward()
        opt.step()  # line 9
        distances = _distance_tensors(d.detach(), config.epsilon)
        read = read_scalars({**live, "loss": loss, **parts, **distances})  # the iteration's second host read
        if not math.isfinite(read["loss"]):  # the step was taken on the copy, which is dropped
            raise NonFiniteError(f"the taming loss became non-finite at iteration {it}.",
                                 f"Lower the learning rate (now {config.lr}); the base model is unchanged.")
        metrics = {k: read[k] for k in (*live, "loss", *parts)}
        metrics.update(mu_R=mu_r, sigma_R=sigma_r, threshold=losses.threshold(mu_r, sigma_r, config.delta, direction),
                       **{k: read[k] for k in distances})
        if checked is not None:
            metrics["distance_checked_max_abs"] = checked
        monitor = it % config.monitor_every == 0
        if monitor and judges.share is not None:
            reading = judges.share.read(samples_from(tamed, latents))
            share = reading.share
            metrics.update(reading.metrics())
            best.offer(it, share, tamed)
        history.append({"iteration": it, **metrics})
        event(it, metrics, f"iteration {it}", monitor)
        if (config.target_share is not None and monitor and share is not None
                and (abs(share - config.target_share) <= config.share_tolerance
                     or (direction == "forget") == (share < config.target_share))):
            stop_reason = "target_share"
            break
    seconds = time.perf_counter() - start
    if any(not torch.equal(v, base.flow.state_dict()[k]) for k, v in base_params.items()):
        raise RuntimeError("taming modified the base model; this is a bug")  # the base is only ever read
    if not team.is_main:  # torchrun: the other ranks computed their rows; rank 0 measures and reports
        return TamingResult(tamed, {}, {}, history)
    tamed.card.name = name if name.endswith("-tamed") else f"{name}-tamed"
    tamed.card.parent = None  # the runner records the base's model spec here
    tamed.card.description = (f"{flow.card.name} tamed ({direction}) on {len(sets.forget)} images: "
                              f"{sets.notes.get('forget', '')}")
    tamed.card.training = {**dict(tamed.card.training or {}), "taming": {
        **asdict(config), "direction": direction, "iterations": it, "reached_threshold": reached, "seed": seed}}

    stop_stats = {"base": (mu_b, sigma_b), "tamed": refresh()}
    metrics, figures = evaluate(base, tamed, sets, config, seed, judges, direction, stop_stats)
    metrics.update(iterations=it, reached_threshold=reached, stop_reason=stop_reason, seconds=round(seconds, 3),
                   iterations_per_second=round(it / seconds, 3) if seconds > 0 else None, direction=direction,
                   delta=config.delta, lr=config.lr, seconds_total=round(time.perf_counter() - start, 3))
    if share0 is not None:
        metrics["share_monitor_before"] = share0
    best_model = best.model(tamed, it)
    if best.iteration is not None:
        metrics.update(best_share_iteration=best.iteration, best_share_monitor=best.share,
                       best_is_final=best_model is None)
    if best_model is not None:
        best_model.card.name = f"{tamed.card.name}-best"
        best_model.card.description = (f"{tamed.card.description}; the weights at iteration {best.iteration} of "
                                       f"{it}, whose share of {judges.share.name} was the run's best")
        best_model.card.training["taming"] = {**best_model.card.training["taming"], "iterations": best.iteration,
                                              "best_share_of": it}
        metrics.update(evaluate_best(best_model, sets, config, seed, judges))
    event(it, {}, f"done after {it} iterations: {stop_reason}", True)
    return TamingResult(tamed, metrics, figures, history, best=best_model)


def _distance_tensors(d: torch.Tensor, epsilon: float) -> dict[str, torch.Tensor]:
    """Live view of eq. 10: the forget images' distances to the threshold (sigma_R units), as 0-d tensors."""
    d = d.double()
    return {"distance_max_abs": d.abs().max(), "distance_mean": d.mean(), "distance_min": d.min(),
            "distance_max": d.max(), "within_epsilon": (d.abs() < epsilon).double().mean()}


def _distance_metrics(d: torch.Tensor, epsilon: float) -> dict[str, float]:
    return read_scalars(_distance_tensors(d, epsilon))


def read_scalars(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """0-d tensors -> floats with ONE device-to-host transfer (a float() per value waits on the device each time)."""
    read = torch.stack([v.detach().double() for v in values.values()]).tolist()
    return dict(zip(values, read))


# -------------------------------------------------------------------------------------------------- evaluation

SET_NAMES = {"forget": "D_F", "holdout": "D'_F", "remember_eval": "D_R", "identities": "D_R^id",
             "neighbours": "D_R^NN"}
_METRIC_KEY = {"forget": "forget", "holdout": "holdout", "remember_eval": "remember", "identities": "identities",
               "neighbours": "neighbours"}


@torch.no_grad()
def evaluate(base: FlowBundle, tamed: FlowBundle, sets: TamingSets, config: TamingConfig, seed: int,
             judges: Judges, direction: str,
             stop_stats: dict[str, tuple[float, float]] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Before/after measurements: q (eq. 14) and QD (eq. 15) per set, BPD on D_R, FID, normality, shares.

    `stop_stats` ({"base": (mu, sigma), "tamed": ...}) are the remember statistics the stopping rule used, so the
    reported forget distances are eq. 10 as the run judged it; without them the evaluation's reference is used."""
    metrics: dict[str, Any] = {}
    nll: dict[str, dict[str, list[float]]] = {"base": {}, "tamed": {}}
    stats: dict[str, tuple[float, float]] = {}
    for label, model in (("base", base), ("tamed", tamed)):
        ref = nlls_bpd(model, sets.reference, seed + 7)
        _finite_or_raise(ref, "reference remember images", f"the {label} model")
        stats[label] = remember_stats(ref.numpy())
        nll[label]["reference"] = ref.tolist()
        for key in SET_NAMES:
            x = getattr(sets, key)
            if x is None or len(x) == 0:
                continue
            values = nlls_bpd(model, x, seed + 7)
            nll[label][key] = values.tolist()
            if not torch.isfinite(values).all():
                metrics[f"nonfinite_{_METRIC_KEY[key]}_{label}"] = int((~torch.isfinite(values)).sum())
                values = values[torch.isfinite(values)]
            if len(values):
                suffix = "before" if label == "base" else "after"
                metrics[f"q_{_METRIC_KEY[key]}_{suffix}"] = likelihood_quantile(values.numpy(), ref.numpy())
    for key in SET_NAMES:
        k = _METRIC_KEY[key]
        if f"q_{k}_before" in metrics and f"q_{k}_after" in metrics:
            metrics[f"qd_{k}"] = metrics[f"q_{k}_before"] - metrics[f"q_{k}_after"]
        else:
            metrics[f"qd_{k}"] = None
    for label, suffix in (("base", "before"), ("tamed", "after")):
        values = np.asarray(nll[label].get("remember_eval", []), dtype=float)
        metrics[f"bpd_remember_{suffix}"] = float(np.nanmean(values)) if len(values) else None
        f_values = np.asarray(nll[label]["forget"], dtype=float)
        metrics[f"bpd_forget_{suffix}"] = float(np.nanmean(f_values))
        if len(sets.forget) <= config.forget_batch:  # eq. 10 on expected NLLs, as the stopping rule judges it
            model = base if label == "base" else tamed
            f_values = expected_nlls_bpd(model, sets.forget, config.check_pairs, seed + 7).numpy()
        mu, sigma = (stop_stats or stats)[label]
        d = (f_values - losses.threshold(mu, sigma, config.delta, direction)) / sigma
        metrics[f"forget_distance_max_abs_{suffix}"] = float(np.nanmax(np.abs(d)))
        test = normality_test(np.asarray(nll[label]["reference"]))
        metrics[f"normality_p_{suffix}"] = test.p_value
        metrics["normality_test"] = test.test_name
        metrics[f"mu_R_{suffix}"], metrics[f"sigma_R_{suffix}"] = stats[label]
    if metrics["bpd_remember_before"]:
        metrics["bpd_remember_change"] = (metrics["bpd_remember_after"] / metrics["bpd_remember_before"]) - 1
    metrics["q_threshold"] = float(1 - _phi(config.delta))  # eq. 13: 1 - Phi(delta), ~3.2e-5 at delta = 4
    metrics["sizes"] = sets.sizes()

    temperature = sample_temperature(base, config)
    z = fixed_latents(base, config.eval_samples, seed + 2, temperature)
    x_base, x_tamed = samples_from(base, z), samples_from(tamed, z)
    if judges.share is not None:
        metrics.update(judges.share.read(x_base).metrics("_before"))
        metrics.update(judges.share.read(x_tamed).metrics("_after"))
        if sets.data_share is not None:
            metrics["share_data"] = sets.data_share
        metrics["share_attribute"] = judges.share.name
        metrics["share_samples"] = len(z)
        if config.target_share is not None:
            metrics["target_share"] = config.target_share
    if judges.fid is not None and len(base.data_shape) == 3:
        # FID against D_R, the distribution the tamed model should keep generating. When D_F is a share of the
        # data (an attribute or a label), that reference already lacks D_F, so generating less of it lowers this
        # FID by itself; FID against D_R and D_F together (the data as it was) is reported beside it.
        metrics["fid_judge"] = metric_name("FID", judges.fid)
        feats = {"before": judges.fid.features(x_base), "after": judges.fid.features(x_tamed)}
        refs = {"fid": random_rows(sets.remember, config.eval_samples, seed + 3)}  # as many real images as samples
        if sets.attribute is not None or sets.labels is not None:
            refs["fid_all"] = random_rows(torch.cat([sets.remember, sets.forget]), config.eval_samples, seed + 3)
        for key, ref in refs.items():
            feats_ref = judges.fid.features(ref)
            for when, f in feats.items():
                metrics[f"{key}_{when}"] = fid_from_features(f, feats_ref)
            metrics[f"{key}_change"] = metrics[f"{key}_after"] / metrics[f"{key}_before"] - 1

    figures: dict[str, Any] = {"nlls": {
        "unit": "bits/dim", "delta": config.delta, "direction": direction, "epsilon": config.epsilon,
        "stats": {k: {"mu": v[0], "sigma": v[1]} for k, v in stats.items()}, "nll": nll,
        "sets": {k: v for k, v in SET_NAMES.items()}, "notes": sets.notes}}
    if len(base.data_shape) == 3 and config.preview:
        n = min(config.preview, len(z))
        figures["fixed_latents"] = torch.cat([x_base[:n], x_tamed[:n]]).numpy()
    elif base.data_shape == (2,):
        figures["toy"] = toy_picture(base, tamed, z)
    return metrics, figures


@torch.no_grad()
def evaluate_best(best: FlowBundle, sets: TamingSets, config: TamingConfig, seed: int,
                  judges: Judges) -> dict[str, Any]:
    """The best-share model measured as `evaluate` measures the final one: its share on the same evaluation
    latents (`*_best`), BPD on the same D_R sample, FID against the same D_R reference."""
    z = fixed_latents(best, config.eval_samples, seed + 2, sample_temperature(best, config))
    x = samples_from(best, z)
    metrics: dict[str, Any] = judges.share.read(x).metrics("_best")
    if sets.remember_eval is not None and len(sets.remember_eval):
        values = nlls_bpd(best, sets.remember_eval, seed + 7).numpy()
        metrics["bpd_remember_best"] = float(np.nanmean(values))
    if judges.fid is not None and len(best.data_shape) == 3:
        ref = judges.fid.features(random_rows(sets.remember, config.eval_samples, seed + 3))
        metrics["fid_best"] = fid_from_features(judges.fid.features(x), ref)
    return metrics


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@torch.no_grad()
def density_grid(flow: FlowBundle, extent: float = 3.5, n: int = 120) -> dict[str, list]:
    """log p on an n x n grid over [-extent, extent]^2 (2-D flows): the data of the paper's Fig. 2 panels."""
    axis = torch.linspace(-extent, extent, n)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).to(flow.device)
    logp = torch.cat([flow.log_prob(pts[i:i + 4096]).cpu() for i in range(0, len(pts), 4096)])
    return {"x": axis.tolist(), "y": axis.tolist(), "log_prob": logp.reshape(n, n).tolist()}


def toy_picture(base: FlowBundle, tamed: FlowBundle, z: torch.Tensor, n_points: int = 1000) -> dict[str, Any]:
    """Densities on a grid and samples from the same latents, before and after (Fig. 2)."""
    return {"density_before": density_grid(base), "density_after": density_grid(tamed),
            "samples_before": samples_from(base, z[:n_points]).tolist(),
            "samples_after": samples_from(tamed, z[:n_points]).tolist()}
