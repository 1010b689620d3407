"""Ground truth (Sec. 5.1): counterfactual ASGD without instance j, and how well the estimate ranks the truth.

The true influence of j is V(D_G(Z'; theta_{-j}[T])) - V(D_G(Z'; theta[T])) (eq. 9), where theta_{-j}[T] replays
the logged run exactly (same S_t, Z_t, learning rates, from theta[1]) with j's term dropped from every D step.
Agreement is Kendall's tau over the targets and the Jaccard index of the 20 critical instances (10 most
positive + 10 most negative), as in Hara et al. (2019) and the paper (which verifies 200 targets); with fewer
than 40 targets the critical sets shrink to a quarter of the targets per tail so they never cover them all. Every
replay is an independent job run through `core.runs.executor`; one replay can be scored on several metrics
(`verify_metrics`: IS and FID of the same counterfactual generator, as Fig. 1 on MNIST needs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.metrics import kendall_tau, topk_jaccard
from core.methods.influence.estimate import Influence
from core.runs.executor import run_jobs
from core.methods.influence.game import Game
from core.methods.influence.metrics import MetricSets, make_metric
from core.methods.influence.trace import TraceLog, replay
from core.models.bundles import ClassifierBundle, GANBundle
from core.models.portable import PortableBundles
from core.progress import NO_PROGRESS, CancelToken, ProgressFn

CRITICAL_K = 10  # 10 most positive + 10 most negative = the paper's 20 critical instances


@dataclass
class ReplayJob(PortableBundles):
    """A picklable counterfactual replay: rebuild the game from the bundle, replay the log without `removed`,
    return the metric on Z', D'_x (`on="prime"`) or on the held-out test latents and data (`on="test"`). Its
    bundles travel to a worker as (card, state) (`core.models.portable`)."""

    BUNDLE_FIELDS = ("bundle", "judge")

    bundle: GANBundle
    dtype: torch.dtype
    weight_decay: float
    x: torch.Tensor
    log_folder: Path
    removed: np.ndarray
    metric: str
    sets: MetricSets
    judge: ClassifierBundle | None
    dataset: str
    on: str = "prime"

    def __call__(self) -> float:
        return self.scores((self.metric,))[self.metric]

    def scores(self, metrics: tuple[str, ...]) -> dict[str, float]:
        """Replay once and score the replayed GAN on each of `metrics` (one replay serves IS and FID together)."""
        game = Game(self.bundle, self.dtype, self.weight_decay)
        mask = torch.zeros(len(self.x), dtype=torch.bool)
        mask[torch.as_tensor(self.removed, dtype=torch.long)] = True
        state = replay(game, self.x, TraceLog(self.log_folder), removed=mask)
        out = {}
        for name in metrics:
            metric = make_metric(name, game, self.sets, self.judge, self.dataset)
            if self.on == "test":
                out[name] = metric.test(state)
            else:
                with torch.no_grad():
                    out[name] = float(metric.value(state))
        return out


@dataclass
class ScoredReplay:
    """A picklable replay scored on several metrics at once: `{metric: value}` of `replay` (a `ReplayJob`)."""

    replay: ReplayJob
    metrics: tuple[str, ...]

    def __call__(self) -> dict[str, float]:
        return self.replay.scores(self.metrics)


@dataclass
class Verification:
    """Estimated against true influence on the target instances."""

    targets: np.ndarray
    estimated: np.ndarray
    true: np.ndarray
    kendall_tau: float
    jaccard: float
    seconds: float
    jobs_per_minute: float
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def measured(cls, targets: np.ndarray, estimated: np.ndarray, true: np.ndarray, seconds: float) -> "Verification":
        """Kendall tau and the critical-set Jaccard of `estimated` against `true` on `targets`, replayed in
        `seconds`."""
        k = critical_k(len(targets))  # critical sets of at most half the targets, else Jaccard is trivially 1
        return cls(targets, estimated, true, kendall_tau(estimated, true), topk_jaccard(estimated, true, k, "both"),
                   seconds, 60.0 * len(targets) / seconds)

    def __post_init__(self) -> None:
        self.metrics = {"kendall_tau": self.kendall_tau, "jaccard": self.jaccard, "verified_targets": len(self.targets),
                        "verify_seconds": self.seconds, "verify_jobs_per_minute": self.jobs_per_minute}


def critical_k(n_targets: int) -> int:
    """Instances per tail of the critical set: the paper's 10, or a quarter of the targets below 40."""
    return max(1, min(CRITICAL_K, n_targets // 4))


def random_agreement(true: np.ndarray, seed: int, draws: int = 200) -> tuple[float, float]:
    """Mean Kendall tau and Jaccard of random orderings against the true influence: the paper's "random" line of
    Fig. 1, what an estimate must beat."""
    rng = np.random.default_rng(seed)
    scores = [rng.permutation(len(true)).astype(float) for _ in range(draws)]
    k = critical_k(len(true))
    return (float(np.mean([kendall_tau(s, true) for s in scores])),
            float(np.mean([topk_jaccard(s, true, k, "both") for s in scores])))


def pick_targets(log: TraceLog, n: int, seed: int) -> np.ndarray:
    """n random instances among those the traced steps used (the paper's "randomly selected target instances";
    an instance the traced epochs never drew has influence exactly 0 either way)."""
    used = np.unique(np.asarray(log.indices))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(used, size=min(n, len(used)), replace=False))


def verify(template: ReplayJob, influence: Influence, base_value: float, targets: np.ndarray, workers: int = 1,
           executor: str = "local", progress: ProgressFn = NO_PROGRESS, cancel: CancelToken | None = None) -> Verification:
    """Replay the log once per target without it and compare the true with the estimated influence."""
    start = time.perf_counter()
    jobs = [ReplayJob(**{**template.__dict__, "removed": np.array([j])}) for j in targets]
    estimated = influence.values[targets]

    def describe(i: int, value: float) -> dict[str, float]:
        return {"target": float(targets[i]), "true_influence": value - base_value,
                "estimated_influence": float(estimated[i])}

    values = run_jobs(jobs, workers, executor, progress, cancel, stage="verify", describe=describe)
    return Verification.measured(targets, estimated, np.asarray(values) - base_value, time.perf_counter() - start)


def verify_metrics(template: ReplayJob, influences: dict[str, Influence], targets: np.ndarray, workers: int = 1,
                   executor: str = "local", progress: ProgressFn = NO_PROGRESS,
                   cancel: CancelToken | None = None) -> dict[str, Verification]:
    """`verify` for several metrics estimated on the same trace (Fig. 1's IS and FID on MNIST): one replay per
    target, scored on every metric; the true influence is each replay's value minus the estimate's V(theta[T])."""
    start = time.perf_counter()
    names = tuple(influences)
    jobs = [ScoredReplay(ReplayJob(**{**template.__dict__, "removed": np.array([j])}), names) for j in targets]

    def describe(i: int, values: dict[str, float]) -> dict[str, float]:
        true = {f"true_influence[{m}]": values[m] - influences[m].metric_value for m in names}
        return {"target": float(targets[i]), **true}

    values = run_jobs(jobs, workers, executor, progress, cancel, stage="verify", describe=describe)
    seconds = time.perf_counter() - start
    return {m: Verification.measured(targets, influences[m].values[targets],
                                     np.array([v[m] for v in values]) - influences[m].metric_value, seconds)
            for m in names}

