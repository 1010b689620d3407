"""The whole influence run on one GAN: trace (Alg. 1), estimate (Alg. 2), optionally verify and cleanse.

`prepare` checks the model and gathers what the run needs (training data named by the card, the dataset's label
classifier for IS/FID, Z' / D'_x / test sets fixed by the seed); `run_influence` executes the phases on private
float64 copies of the players, so the pretrained bundle is never modified, and times each phase.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.data import DATASETS, load
from core.errors import LetheError
from core.methods.influence.cleanse import BASELINES, Cleansing, cleanse, removal_sets
from core.methods.influence.estimate import Influence, estimate
from core.methods.influence.executor import EXECUTORS
from core.methods.influence.game import Game, check_traceable
from core.methods.influence.metrics import METRICS, DiscriminatorLoss, MetricSets, check_metric_fits, make_metric
from core.methods.influence.trace import TraceConfig, TraceLog, trace
from core.metrics import metric_name
from core.methods.influence.verify import ReplayJob, Verification, pick_targets, verify
from core.models.bundles import ClassifierBundle, GANBundle
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn
from core.zoo.lookup import card_dataset, zoo_classifier


@dataclass(frozen=True)
class InfluenceConfig:
    """What to estimate and check. `targets` instances are verified against counterfactual replays when `verify`;
    `cleanse` > 0 removes that many instances per selector (the metric's own influence and each baseline)."""

    metric: str = "all"
    trace: TraceConfig = field(default_factory=TraceConfig)
    latents: int = 2000  # |Z'| = |Z_test|
    targets: int = 20
    verify: bool = False
    cleanse: int = 0
    baselines: tuple[str, ...] = BASELINES
    workers: int = 1
    executor: str = "local"

    def validate(self) -> None:
        if self.metric not in METRICS:
            raise LetheError(f"unknown metric {self.metric!r}.", f"Use one of {', '.join(METRICS)}.")
        if self.verify and self.targets < 4:
            raise LetheError(f"verification needs at least 4 targets, got {self.targets}.",
                             "The paper verifies 200 random instances.")
        if self.latents < 2:
            raise LetheError("need at least 2 latents for Z'.", "The paper uses 10,000.")
        if self.executor not in EXECUTORS:
            raise LetheError(f"unknown executor {self.executor!r}.", f"Use one of {', '.join(EXECUTORS)}.")
        unknown = set(self.baselines) - set(BASELINES)
        if unknown:
            raise LetheError(f"unknown baseline(s) {sorted(unknown)}.", f"Use any of {', '.join(BASELINES)}.")


@dataclass
class InfluenceContext:
    """The model's training data (as the card records it), its label classifier if any, and the metric sets."""

    bundle: GANBundle
    dataset: str
    x: torch.Tensor
    judge: ClassifierBundle | None
    sets: MetricSets


@dataclass
class InfluenceResult:
    """Estimated influence on the metric for every training instance, with verification and cleansing when run."""

    influence: Influence
    verification: Verification | None
    cleansing: Cleansing | None
    metrics: dict[str, Any]
    figures: dict[str, Any]


def display_name(metric: str, judge: ClassifierBundle | None) -> str:
    """How Lethe names the metric elsewhere: "ALL", "IS[mnist-lenet]", "FID[mnist-lenet]", "D loss"."""
    if metric in ("is", "fid") and judge is not None:
        return metric_name(metric.upper(), judge)
    return {"all": "ALL", "dloss": "D loss"}.get(metric, metric.upper())


def training_data(bundle: GANBundle) -> tuple[str, torch.Tensor]:
    """(dataset, the training instances in [0, 1]) named by the card; a LetheError when Lethe lacks them."""
    dataset = card_dataset(bundle.card)
    if not dataset or dataset not in DATASETS:
        raise LetheError(f"{bundle.card.name!r} does not name training data Lethe has (card says {dataset!r}).",
                         "Influence is measured on the GAN's own training set; use a model trained on a Lethe "
                         f"dataset ({', '.join(DATASETS)}).")
    data = load(dataset, bundle.card.data.get("split", "train"))
    size = int(bundle.card.data.get("size") or len(data))
    return dataset, data.x[: min(size, len(data))]


def prepare(bundle: GANBundle, config: InfluenceConfig, seed: int = 0) -> InfluenceContext:
    """Check the model and the metric, and gather the run's data; raises LetheError before any work starts."""
    config.validate()
    check_traceable(bundle)
    dataset, x = training_data(bundle)
    config.trace.validate(len(x))
    check_metric_fits(config.metric, bundle.data_shape, dataset)
    judge = None
    name = zoo_classifier(dataset, "labels")
    if name is not None:
        from core.models.spec import load_model

        judge = load_model(name, bundle.device)
    if config.metric in ("is", "fid") and judge is None:
        raise LetheError(f"{config.metric.upper()} needs a label classifier for {dataset!r}, and Lethe has none.",
                         "Use --metric dloss, or pick a GAN on a dataset with a zoo label classifier (mnist).")
    sets = MetricSets.draw(load(dataset, "test"), bundle.latent_dim, config.latents, seed)
    return InfluenceContext(bundle, dataset, x, judge, sets)


def run_influence(ctx: InfluenceContext, config: InfluenceConfig, seed: int = 0, progress: ProgressFn = NO_PROGRESS,
                  cancel: CancelToken | None = None, trace_dir: str | Path | None = None) -> InfluenceResult:
    """Trace k epochs, estimate the influence of every training instance, then verify and cleanse if asked."""
    cancel = cancel or CancelToken()
    tc = config.trace
    game = Game(ctx.bundle, tc.torch_dtype, tc.weight_decay)
    holder = tempfile.TemporaryDirectory(prefix="lethe-trace-") if trace_dir is None else nullcontext(str(trace_dir))
    with holder as folder:
        start = time.perf_counter()
        log = trace(game, ctx.x, tc, seed, folder, progress, cancel)
        trace_seconds = time.perf_counter() - start
        metric = make_metric(config.metric, game, ctx.sets, ctx.judge, ctx.dataset)
        influence = estimate(game, ctx.x, log, metric, progress, cancel)
        metrics: dict[str, Any] = {
            "metric": config.metric, "metric_name": display_name(config.metric, ctx.judge),
            "metric_value": influence.metric_value, "trace_epochs": tc.epochs,
            "steps": log.n_steps, "trace_seconds": trace_seconds, "inference_seconds": influence.seconds,
            "inference_over_trace": influence.seconds / trace_seconds, "log_bytes_per_step": log.bytes_per_step,
        }
        progress(ProgressEvent(1, 1, {k: v for k, v in metrics.items() if isinstance(v, float)}, stage="estimated",
                               message="influence estimated for every training instance"))
        template = ReplayJob(ctx.bundle, tc.torch_dtype, tc.weight_decay, ctx.x, Path(folder), np.zeros(0, np.int64),
                             config.metric, ctx.sets, ctx.judge, ctx.dataset)
        verification = None
        if config.verify:
            targets = pick_targets(log, config.targets, seed)
            verification = verify(template, influence, influence.metric_value, targets, config.workers,
                                  config.executor, progress, cancel)
            metrics.update(verification.metrics)
        cleansing = None
        if config.cleanse:
            cleansing = _cleanse(ctx, config, seed, game, log, influence, template, progress, cancel)
            metrics.update(cleansing.metrics)
    return InfluenceResult(influence, verification, cleansing, metrics, _figures(influence, verification))


def _cleanse(ctx: InfluenceContext, config: InfluenceConfig, seed: int, game: Game, log: TraceLog,
             influence: Influence, template: ReplayJob, progress: ProgressFn, cancel: CancelToken) -> Cleansing:
    dloss = None
    if "dloss" in config.baselines:
        dloss = influence if config.metric == "dloss" else estimate(game, ctx.x, log, DiscriminatorLoss(game, ctx.sets),
                                                                    progress, cancel)
    selectors = ("influence", *config.baselines)
    removed = removal_sets(config.cleanse, len(ctx.x), selectors, influence, dloss, ctx.x, ctx.judge, seed)
    metric = make_metric(config.metric, game, ctx.sets, ctx.judge, ctx.dataset)
    before = metric.test(log.final(game))
    return cleanse(template, before, removed, metric.higher_is_better, config.workers, config.executor, progress,
                   cancel)


def _figures(influence: Influence, verification: Verification | None) -> dict[str, Any]:
    import pandas as pd

    figures: dict[str, Any] = {"influence": pd.DataFrame({
        "instance": np.arange(len(influence.values)), "influence": influence.values, "harm": influence.harm})}
    if verification is not None:
        figures["verification"] = pd.DataFrame({"instance": verification.targets, "estimated": verification.estimated,
                                                "true": verification.true})
    return figures


def influence_job(bundle: GANBundle, config: InfluenceConfig, seed: int = 0):
    """A job for `core.runs` (`run_now` or `Runner.start`): prepare, run, return the result (metrics, figures)."""

    def job(progress: ProgressFn, cancel: CancelToken) -> InfluenceResult:
        ctx = prepare(bundle, config, seed)
        cancel.raise_if_set()
        return run_influence(ctx, config, seed, progress, cancel)

    return job


def job_params(config: InfluenceConfig) -> dict[str, Any]:
    """What a run's config.json records about an influence run."""
    return asdict(config)
