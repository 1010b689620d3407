"""GAN evaluation metrics V as differentiable functions of the parameters (influence paper, Sec. 3.2, eq. 9-10).

The inference phase starts from u = grad_theta V(D_G(Z'; theta[T])) (eq. 10), so every metric here is a torch
function of the generated samples (and, for the discriminator loss, of D). Each equals Lethe's reference metric
in `core.metrics` on the same inputs (the tests check it); those work on detached arrays, these keep the graph.

- `all`:   average log-likelihood of the real points D'_x under a bandwidth-1 Gaussian KDE of the generated
           samples (App. C.1), as `core.metrics.kde_log_likelihood`. Higher is better.
- `is`:    Inception Score exp(E KL(p(y|x) || p(y))) with the dataset's label classifier, one split (the
           paper's formula in Sec. 3.2), as `core.metrics.inception_score(splits=1)`. Higher is better.
- `fid`:   Frechet distance between the classifier features of the samples and of D'_x, as
           `core.metrics.fid_from_features`; the reference covariance is fixed, so
           tr (S1 S2)^(1/2) = sum sqrt(eig(S2^(1/2) S1 S2^(1/2))) is differentiable through `eigvalsh`. Lower is
           better.
- `dloss`: the discriminator's expected loss L_D with D_G(Z') and D'_x (Sec. 5.2's baseline); depends on both
           players. Following the paper, an instance is harmful when its influence on it is negative.

Z' and D'_x (and the test latents and data of cleansing, Sec. 5.2) are drawn independently of training and
fixed by a seed (`MetricSets`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from core.data.base import ImageData
from core.errors import LetheError
from core.methods.influence.game import Game, State
from core.models.bundles import ClassifierBundle

METRICS = ("all", "is", "fid", "dloss")
HIGHER_IS_BETTER = {"all": True, "is": True, "fid": False, "dloss": False}


@dataclass
class MetricSets:
    """Z' and D'_x (influence estimation) and Z_test, D_test (cleansing's test metric), disjoint halves of the
    dataset's test split and independent latents, all fixed by `seed`."""

    z_prime: torch.Tensor
    x_prime: torch.Tensor
    z_test: torch.Tensor
    x_test: torch.Tensor

    @classmethod
    def draw(cls, test: ImageData, latent_dim: int, n_latents: int, seed: int) -> "MetricSets":
        gen = torch.Generator().manual_seed(10_000 + seed)
        order = torch.randperm(len(test), generator=gen)
        half = len(test) // 2
        z_prime = torch.randn(n_latents, latent_dim, generator=gen)
        z_test = torch.randn(n_latents, latent_dim, generator=gen)
        return cls(z_prime, test.x[order[:half]], z_test, test.x[order[half:]])


class Metric(ABC):
    """V as a differentiable function of a state; `value(state)` evaluates it on Z' and D'_x, `test(state)` on
    the held-out Z_test and D_test."""

    name: str = ""

    def __init__(self, game: Game, sets: MetricSets) -> None:
        self.game, self.sets = game, sets

    @property
    def higher_is_better(self) -> bool:
        return HIGHER_IS_BETTER[self.name]

    @abstractmethod
    def of(self, state: State, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """V(D_G(z; theta_G)) against real data x, differentiable in the state's parameters."""

    def value(self, state: State) -> torch.Tensor:
        return self.of(state, self.sets.z_prime, self.sets.x_prime)

    def test(self, state: State) -> float:
        with torch.no_grad():
            return float(self.of(state, self.sets.z_test, self.sets.x_test))


def kde_all(samples: torch.Tensor, data: torch.Tensor, bandwidth: float = 1.0) -> torch.Tensor:
    """ALL = 1/M sum_j log(1/N sum_i N(x_j; s_i, h^2 I)), differentiable in the samples s."""
    s, x = samples.reshape(len(samples), -1), data.reshape(len(data), -1).to(samples)
    n, d = s.shape
    sq = torch.cdist(x, s).square()
    log_norm = math.log(n) + 0.5 * d * math.log(2 * math.pi * bandwidth**2)
    return (torch.logsumexp(-sq / (2 * bandwidth**2), dim=1) - log_norm).mean()


def inception_score_t(logits: torch.Tensor) -> torch.Tensor:
    """exp(mean KL(p(y|x) || p(y))) with p(y) the mean prediction, one split, differentiable."""
    log_p = torch.log_softmax(logits, dim=1)
    log_py = torch.logsumexp(log_p, dim=0) - math.log(len(log_p))
    return (log_p.exp() * (log_p - log_py)).sum(1).mean().exp()


def frechet_to_reference(features: torch.Tensor, ref_mean: torch.Tensor, ref_cov: torch.Tensor) -> torch.Tensor:
    """|mu - mu_r|^2 + tr S + tr S_r - 2 tr (S S_r)^(1/2) for the Gaussian fit of `features` (unbiased covariance),
    differentiable in the features; tr (S S_r)^(1/2) = sum sqrt(eig(S_r^(1/2) S S_r^(1/2)))."""
    mu = features.mean(0)
    centred = features - mu
    cov = centred.T @ centred / (len(features) - 1)
    evals, evecs = torch.linalg.eigh(ref_cov)
    root = evecs @ torch.diag(evals.clamp_min(0).sqrt()) @ evecs.T
    inner = torch.linalg.eigvalsh(root @ cov @ root).clamp_min(1e-12).sqrt().sum()
    return (mu - ref_mean).square().sum() + cov.trace() + ref_cov.trace() - 2 * inner


class AverageLogLikelihood(Metric):
    name = "all"

    def of(self, state: State, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return kde_all(self.game.samples(state, z), x)


class _Judged(Metric):
    """IS / FID through a label classifier copied into the game's dtype (its weights never change)."""

    def __init__(self, game: Game, sets: MetricSets, judge: ClassifierBundle) -> None:
        super().__init__(game, sets)
        self.judge = judge.copy().to(game.device)
        self.net = self.judge.net.to(game.dtype).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.judge_name = judge.card.name

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x.to(self.game.device, self.game.dtype))


class InceptionScore(_Judged):
    name = "is"

    def of(self, state: State, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return inception_score_t(self.net.head_logits(self.features(self.game.samples(state, z))))


class FrechetDistance(_Judged):
    name = "fid"

    def __init__(self, game: Game, sets: MetricSets, judge: ClassifierBundle) -> None:
        super().__init__(game, sets, judge)
        self._ref: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _reference(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = id(x)
        if key not in self._ref:
            with torch.no_grad():
                f = self.features(x)
                centred = f - f.mean(0)
                self._ref[key] = (f.mean(0), centred.T @ centred / (len(f) - 1))
        return self._ref[key]

    def of(self, state: State, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return frechet_to_reference(self.features(self.game.samples(state, z)), *self._reference(x))


class DiscriminatorLoss(Metric):
    name = "dloss"

    def of(self, state: State, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        game = self.game
        game.D.module.eval()
        try:
            fake = game.generate(state, z.to(game.device, game.dtype))
            logit_fake = game.D(state.d, state.d_buffers, fake).reshape(-1)
            logit_real = game.D(state.d, state.d_buffers, game.data(x)).reshape(-1)
        finally:
            game.D.module.train()
        return F.softplus(logit_fake).mean() + F.softplus(-logit_real).mean()


def make_metric(name: str, game: Game, sets: MetricSets, judge: ClassifierBundle | None, dataset: str) -> Metric:
    """The metric `name` (one of METRICS) on `sets`; IS and FID need the dataset's label classifier."""
    if name == "all":
        return AverageLogLikelihood(game, sets)
    if name == "dloss":
        return DiscriminatorLoss(game, sets)
    if name in ("is", "fid"):
        if judge is None or judge.kind != "labels":
            raise LetheError(f"{name.upper()} needs a label classifier for {dataset!r}, and Lethe has none.",
                             "Use --metric all (2-D data) or dloss, or train the dataset's zoo classifier first.")
        return InceptionScore(game, sets, judge) if name == "is" else FrechetDistance(game, sets, judge)
    raise LetheError(f"unknown metric {name!r}.", f"Use one of {', '.join(METRICS)}.")


def check_metric_fits(name: str, data_shape: tuple[int, ...], dataset: str) -> None:
    """ALL needs low-dimensional points (the paper uses it on 2-D data only), IS/FID images."""
    if name == "all" and len(data_shape) != 1:
        raise LetheError(f"ALL (KDE log-likelihood) is meant for low-dimensional points; {dataset!r} holds images "
                         f"of shape {data_shape}.", "Use --metric is or fid for images (App. C.1).")
    if name in ("is", "fid") and len(data_shape) == 1:
        raise LetheError(f"{name.upper()} needs images and a label classifier; {dataset!r} holds {data_shape[0]}-D "
                         "points.", "Use --metric all or dloss for 2-D data.")
