"""Data cleansing (Sec. 5.2): remove the n_h most harmful instances, re-run the traced epochs without them, and
measure the metric on test latents and test data that played no part in selecting them.

Selectors (each picks n_h instances, most harmful first):
- `influence`: the estimated influence on the chosen metric (harmful = removal improves it, see `Influence.harm`);
- `dloss`: the estimated influence on the discriminator loss (the paper's loss-based baseline; negative = harmful);
- `isolation-forest`: the most anomalous instances under an isolation forest (Liu et al., 2008) fitted on the data
  points (2-D) or on the label classifier's features (images);
- `random`: a seeded random draw;
- `none`: no removal (the traced model itself).

"Re-run the traced epochs" is counterfactual ASGD over the whole log with the removed instances' weights set to 0
(the paper: "counterfactual ASGD only re-ran the latest epoch"), one job per selector through the executor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from core.errors import LetheError
from core.methods.influence.estimate import Influence
from core.runs.executor import run_jobs
from core.methods.influence.verify import ReplayJob
from core.models.bundles import ClassifierBundle
from core.progress import NO_PROGRESS, CancelToken, ProgressFn

SELECTORS = ("influence", "dloss", "isolation-forest", "random", "none")
BASELINES = ("dloss", "isolation-forest", "random")


def isolation_forest_order(x: torch.Tensor, judge: ClassifierBundle | None, seed: int) -> np.ndarray:
    """Instances from most to least anomalous under sklearn's IsolationForest (on points, or classifier features
    for images)."""
    from sklearn.ensemble import IsolationForest

    if x.dim() > 2:
        if judge is None:
            raise LetheError("the isolation-forest baseline on images needs the dataset's label classifier.",
                             "Train the dataset's zoo classifier, or pick another baseline.")
        features = judge.features(x).double().numpy()
    else:
        features = x.double().numpy()
    forest = IsolationForest(random_state=seed).fit(features)
    return np.argsort(forest.score_samples(features), kind="stable")  # lowest score = most anomalous


def removal_sets(n_h: int, n: int, selectors: tuple[str, ...], influence: Influence, dloss: Influence | None,
                 x: torch.Tensor, judge: ClassifierBundle | None, seed: int) -> dict[str, np.ndarray]:
    """The n_h instances each selector removes."""
    if not 0 <= n_h < n:
        raise LetheError(f"cannot remove {n_h} of {n} training instances.", "Choose 0 <= n_h < N.")
    out: dict[str, np.ndarray] = {}
    for name in selectors:
        if name == "influence":
            out[name] = influence.most_harmful(n_h)
        elif name == "dloss":
            if dloss is None:
                raise LetheError("the dloss baseline needs the influence on the discriminator loss.",
                                 "Estimate it first (cleanse() does when asked for the baseline).")
            out[name] = dloss.most_harmful(n_h)
        elif name == "isolation-forest":
            out[name] = isolation_forest_order(x, judge, seed)[:n_h]
        elif name == "random":
            out[name] = np.random.default_rng(seed).permutation(n)[:n_h]
        elif name == "none":
            out[name] = np.zeros(0, dtype=np.int64)
        else:
            raise LetheError(f"unknown cleansing selector {name!r}.", f"Use one of {', '.join(SELECTORS)}.")
    return out


@dataclass
class Cleansing:
    """Test metric after removing each selector's n_h instances; `before` is the traced model's test metric."""

    metric: str
    higher_is_better: bool
    n_h: int
    before: float
    after: dict[str, float]
    removed: dict[str, np.ndarray]
    seconds: float

    def improvement(self, selector: str) -> float:
        """How much the test metric improved (positive = better, whatever the metric's direction)."""
        delta = self.after[selector] - self.before
        return delta if self.higher_is_better else -delta

    @property
    def metrics(self) -> dict[str, float]:
        out = {"cleanse_n_h": self.n_h, f"test_{self.metric}_before": self.before, "cleanse_seconds": self.seconds}
        for name, value in self.after.items():
            out[f"test_{self.metric}_after[{name}]"] = value
            out[f"test_{self.metric}_improvement[{name}]"] = self.improvement(name)
        return out


def cleanse(template: ReplayJob, before: float, removed: dict[str, np.ndarray], higher_is_better: bool,
            workers: int = 1, executor: str = "local", progress: ProgressFn = NO_PROGRESS,
            cancel: CancelToken | None = None) -> Cleansing:
    """Re-run the traced epochs once per selector without its instances; measure the test metric."""
    start = time.perf_counter()
    names = list(removed)
    jobs = [ReplayJob(**{**template.__dict__, "removed": removed[name], "on": "test"}) for name in names]

    def describe(i: int, value: float) -> dict[str, float]:
        return {f"test_{template.metric}": value}

    values = run_jobs(jobs, workers, executor, progress, cancel, stage="cleanse", describe=describe)
    n_h = max((len(r) for r in removed.values()), default=0)
    return Cleansing(template.metric, higher_is_better, n_h, before, dict(zip(names, values)), removed,
                     time.perf_counter() - start)
