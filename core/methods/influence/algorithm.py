"""The whole influence run on one GAN: trace (Alg. 1), estimate (Alg. 2), optionally verify and cleanse.

`prepare` checks the model and gathers what the run needs (training data named by the card, the dataset's label
classifier for IS/FID, Z' / D'_x / test sets fixed by the seed); `run_influence` executes the phases on private
float64 copies of the players, so the pretrained bundle is never modified, and times each phase.

As a run (`influence_job`), the trace is kept in the run's folder (`<run>/trace/`), with eq. 9's estimate in
`figures/removal_effect.npy`, so a finished run can be verified or cleansed later (`follow_up_job`, a new run that
reads the first one's trace and never writes to it).
"""

from __future__ import annotations

import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.data import DATASETS, load
from core.errors import LetheError
from core.methods.inputs import check_data, input_params, judges_for, need_heldout, need_judge, train_and_test
from core.methods.inputs import training_data as shared_training_data
from core.methods.influence.cleanse import BASELINES, Cleansing, cleanse, removal_sets
from core.methods.influence.estimate import Influence, estimate, sign_rule
from core.runs.executor import EXECUTORS
from core.methods.influence.game import Game, check_traceable
from core.methods.influence.metrics import (HIGHER_IS_BETTER, METRICS, DiscriminatorLoss, MetricSets,
                                           check_metric_fits, make_metric)
from core.methods.influence.trace import TraceConfig, TraceLog, trace
from core.metrics import metric_name
from core.methods.influence.verify import ReplayJob, Verification, pick_targets, verify
from core.models.bundles import ClassifierBundle, GANBundle
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn
from core.runs.runner import current_run_folder
from core.runs.store import RunRecord
from core.zoo.lookup import card_dataset

TRACE_FOLDER = "trace"  # inside the run's folder


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
    ids: np.ndarray  # the dataset's sample id of each training instance (what forget sets name)


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


def training_data(bundle: GANBundle, data: str | None = None) -> tuple[str, torch.Tensor, np.ndarray]:
    """(dataset, the training instances in [0, 1], their sample ids): the user's data spec `data`, else the data
    named by the card (its split and size); a LetheError when Lethe lacks them."""
    if data is not None:
        user = shared_training_data(bundle, data, "influence")
        return user.name, user.x, user.ids.numpy()
    dataset = card_dataset(bundle.card)
    if not dataset or dataset not in DATASETS:
        raise LetheError(f"{bundle.card.name!r} does not name training data Lethe has (card says {dataset!r}).",
                         "Influence is measured on the GAN's own training set: pass --data DIR|FILE.npz (your "
                         f"training images) and --heldout DIR|FILE.npz, or use a model trained on {', '.join(DATASETS)}.")
    data = load(dataset, bundle.card.data.get("split", "train"))
    size = min(int(bundle.card.data.get("size") or len(data)), len(data))
    return dataset, data.x[:size], data.ids[:size].numpy()


def prepare(bundle: GANBundle, config: InfluenceConfig, seed: int = 0, data: str | None = None,
            judge: str | None = None, heldout: str | None = None) -> InfluenceContext:
    """Check the model and the metric, and gather the run's data; raises LetheError before any work starts.
    `data`, `heldout` and `judge` are the user's training images, held-out images (D'_x and D_test) and label
    classifier for IS/FID (`--data`, `--heldout`, `--judge`)."""
    config.validate()
    check_traceable(bundle)
    check_data(bundle, data, "influence")
    check_metric_fits(config.metric, bundle.data_shape, data or card_dataset(bundle.card) or bundle.card.name)
    need_heldout(data, heldout, "influence", f"V ({config.metric}) against real data D'_x")
    judges = judges_for(bundle, data, judge)
    judge_model = judges.get("labels")
    if config.metric in ("is", "fid"):
        judge_model = need_judge(judges, ("labels",), config.metric.upper(), "influence",
                                 "use --metric dloss, which needs none")
    dataset, x, ids = training_data(bundle, data)
    config.trace.validate(len(x))
    test = load(dataset, "test") if data is None else train_and_test(bundle, data, heldout, "influence")[1]
    sets = MetricSets.draw(test, bundle.latent_dim, config.latents, seed)
    return InfluenceContext(bundle, dataset, x, judge_model, sets, ids)


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
            "metric_value": influence.metric_value, "influence_sign": sign_rule(config.metric),
            "trace_epochs": tc.epochs, "steps": log.n_steps, "trace_seconds": trace_seconds,
            "inference_seconds": influence.seconds, "inference_over_trace": influence.seconds / trace_seconds,
            "log_bytes_per_step": log.bytes_per_step, "trace_kept": trace_dir is not None,
            "most_harmful_ids": ctx.ids[influence.most_harmful(10)].tolist(),
            "most_helpful_ids": ctx.ids[influence.most_helpful(10)].tolist(),
        }
        progress(ProgressEvent(1, 1, {k: v for k, v in metrics.items() if isinstance(v, float)}, stage="estimated",
                               message="influence estimated for every training instance"))
        verification, cleansing = check(ctx, config, seed, game, log, influence, progress, cancel)
        for done in (verification, cleansing):
            metrics.update(done.metrics if done is not None else {})
    return InfluenceResult(influence, verification, cleansing, metrics,
                           _figures(influence, verification, cleansing, ctx.ids))


def check(ctx: InfluenceContext, config: InfluenceConfig, seed: int, game: Game, log: TraceLog, influence: Influence,
          progress: ProgressFn = NO_PROGRESS, cancel: CancelToken | None = None
          ) -> tuple[Verification | None, Cleansing | None]:
    """Verify (`config.verify`, on `config.targets` random instances) and cleanse (`config.cleanse` > 0) an
    estimate against counterfactual replays of the logged run."""
    cancel = cancel or CancelToken()
    tc = config.trace
    template = ReplayJob(ctx.bundle, tc.torch_dtype, tc.weight_decay, ctx.x, log.folder, np.zeros(0, np.int64),
                         config.metric, ctx.sets, ctx.judge, ctx.dataset)
    verification = None
    if config.verify:
        targets = pick_targets(log, config.targets, seed)
        verification = verify(template, influence, influence.metric_value, targets, config.workers, config.executor,
                              progress, cancel)
    cleansing = None
    if config.cleanse:
        cleansing = _cleanse(ctx, config, seed, game, log, influence, template, progress, cancel)
    return verification, cleansing


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


def _figures(influence: Influence | None, verification: Verification | None, cleansing: Cleansing | None,
             ids: np.ndarray | None = None) -> dict[str, Any]:
    """Tables in the sign users read (`sign_rule`: V with j - V without j), plus eq. 9's exact values."""
    import pandas as pd

    figures: dict[str, Any] = {}
    if influence is not None:
        figures["influence"] = pd.DataFrame({"instance": np.arange(len(influence.values)), "id": ids,
                                             "influence": influence.contribution, "harm": influence.harm})
        figures["removal_effect"] = np.asarray(influence.values, dtype=np.float64)
    if verification is not None:
        figures["verification"] = pd.DataFrame({"instance": verification.targets,
                                                "estimated": -verification.estimated, "true": -verification.true})
    if cleansing is not None:
        figures["cleansing"] = pd.DataFrame({
            "selector": list(cleansing.after), "removed": [len(cleansing.removed[k]) for k in cleansing.after],
            "before": cleansing.before, "after": list(cleansing.after.values()),
            "improvement": [cleansing.improvement(k) for k in cleansing.after]})
    return figures


def influence_job(bundle: GANBundle, config: InfluenceConfig, seed: int = 0, data: str | None = None,
                  judge: str | None = None, heldout: str | None = None):
    """A job for `core.runs` (`run_now` or `Runner.start`): prepare, run, return the result (metrics, figures).
    The trace is kept in the run's folder (`TRACE_FOLDER`) for a later `follow_up_job`."""

    def job(progress: ProgressFn, cancel: CancelToken) -> InfluenceResult:
        ctx = prepare(bundle, config, seed, data, judge, heldout)
        cancel.raise_if_set()
        folder = current_run_folder()
        return run_influence(ctx, config, seed, progress, cancel, None if folder is None else folder / TRACE_FOLDER)

    return job


def job_params(config: InfluenceConfig, data: str | None = None, judge: str | None = None,
               heldout: str | None = None) -> dict[str, Any]:
    """What a run's config.json records about an influence run (the user's data, held-out images and judge when
    given)."""
    return {**asdict(config), **input_params(data, judge, heldout)}


def config_from_params(params: dict[str, Any]) -> InfluenceConfig:
    """The `InfluenceConfig` a run's recorded params (`job_params`) describe."""
    fields = {k: v for k, v in params.items() if k in InfluenceConfig.__dataclass_fields__}
    return InfluenceConfig(**{**fields, "trace": TraceConfig(**fields.get("trace", {})),
                              "baselines": tuple(fields.get("baselines", BASELINES))})


@dataclass
class TracedRun:
    """A finished influence run read back from the run store: what it ran on, its trace and its estimate."""

    run: RunRecord
    ctx: InfluenceContext
    config: InfluenceConfig
    seed: int
    log: TraceLog
    influence: Influence


def load_traced(run: RunRecord, device: str | torch.device = "cpu") -> TracedRun:
    """Read back a succeeded influence run with its kept trace; a LetheError says why one cannot be."""
    from core.models.spec import load_model

    params = run.config.get("params", {}) or {}
    if run.config.get("method") != "influence" or "of_run" in params:
        raise LetheError(f"run {run.id} is not an influence estimate.", "Pick a run of the influence method.")
    if run.status != "succeeded":
        raise LetheError(f"influence run {run.id} is {run.status}; only a finished estimate can be checked.",
                         "Wait for it to finish, or start a new influence run.")
    folder, values = run.path / TRACE_FOLDER, run.path / "figures" / "removal_effect.npy"
    if not (folder / "meta.json").is_file() or not values.is_file():
        raise LetheError(f"influence run {run.id} kept no trace to replay.",
                         "Runs kept their trace from this version on: start the influence run again.")
    config, seed = config_from_params(params), int(run.config.get("seed", 0))
    ctx = prepare(load_model(run.config["model"], device), config, seed, params.get("data"), params.get("judge"),
                  params.get("heldout"))
    log = TraceLog(folder)
    influence = Influence(config.metric, np.load(values), HIGHER_IS_BETTER[config.metric],
                          float(run.metrics["metric_value"]), float(run.metrics.get("inference_seconds", 0.0)))
    return TracedRun(run, ctx, config, seed, log, influence)


def follow_up_params(run_id: str, targets: int = 0, cleanse: int = 0, baselines: tuple[str, ...] = BASELINES,
                     workers: int = 1, executor: str = "local") -> dict[str, Any]:
    """What a follow-up run (verify and/or cleanse a finished estimate) records in its config.json."""
    return {"of_run": run_id, "verify_targets": targets, "cleanse": cleanse, "baselines": list(baselines),
            "workers": workers, "executor": executor}


def follow_up_job(run: RunRecord, targets: int = 0, cleanse: int = 0, baselines: tuple[str, ...] = BASELINES,
                  workers: int = 1, executor: str = "local", device: str | torch.device = "cpu"):
    """A job that verifies (`targets` > 0 counterfactual replays) and/or cleanses (`cleanse` = n_h) the finished
    influence run `run` from its kept trace, without estimating again; the original run is only read."""
    if targets <= 0 and cleanse <= 0:
        raise LetheError("nothing to do: ask for verification targets or a cleansing size.",
                         "e.g. verify 40 targets, or cleanse 500 instances.")

    def job(progress: ProgressFn, cancel: CancelToken) -> InfluenceResult:
        traced = load_traced(run, device)
        config = replace(traced.config, verify=targets > 0, targets=max(targets, 4), cleanse=max(cleanse, 0),
                         baselines=tuple(baselines), workers=workers, executor=executor)
        config.validate()
        game = Game(traced.ctx.bundle, config.trace.torch_dtype, config.trace.weight_decay)
        verification, cleansing = check(traced.ctx, config, traced.seed, game, traced.log, traced.influence,
                                        progress, cancel)
        metrics: dict[str, Any] = {"of_run": run.id, "metric": config.metric,
                                   "metric_name": display_name(config.metric, traced.ctx.judge),
                                   "influence_sign": sign_rule(config.metric)}
        for done in (verification, cleansing):
            metrics.update(done.metrics if done is not None else {})
        return InfluenceResult(traced.influence, verification, cleansing, metrics,
                               _figures(None, verification, cleansing))

    return job
