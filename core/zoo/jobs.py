"""Jobs on zoo recipes and evaluators, in the runner's job shape `job(progress, cancel) -> result`.

These are the two jobs the workbench offers before any method exists, and the ones its tests start and cancel:
measuring a model's quality with the evaluator of the zoo entry it belongs to, and running a zoo recipe
(in smoke mode by default: a handful of steps on a tiny subset, seconds on a CPU).
"""

from __future__ import annotations

from core.errors import LetheError
from core.models.bundles import Bundle
from core.models.card import ModelCard
from core.progress import CancelToken, ProgressEvent, ProgressFn
from core.runs.runner import Job, JobResult
from core.zoo.lookup import entry_for
from core.zoo.registry import ZOO


def evaluate_job(bundle: Bundle, spec: str | None = None, device: str = "cpu") -> Job:
    """A job that measures a copy of `bundle` (loaded from `spec`) with the evaluator `core.zoo.lookup.entry_for`
    picks, and reports which of that zoo entry's floors the model misses."""
    entry = entry_for(bundle.card, spec)
    model = bundle.copy()
    floors = ModelCard(entry.name, entry.family, "", floors={k: list(v) for k, v in entry.floors.items()})

    def job(progress: ProgressFn, cancel: CancelToken) -> JobResult:
        progress(ProgressEvent(0, 1, stage="evaluate", message=f"measuring with {entry.evaluator}"))
        cancel.raise_if_set()
        metrics = {k: float(v) for k, v in entry.evaluate(model, device=device).items()}
        failures = floors.floor_failures(metrics)
        message = "all floors met" if not failures else "below floor: " + "; ".join(failures)
        progress(ProgressEvent(1, 1, metrics=metrics, stage="done", message=message))
        return JobResult(metrics=metrics)

    return job


def train_job(name: str, seed: int = 0, device: str = "cpu", smoke: bool = True) -> Job:
    """A job that runs zoo recipe `name` (smoke mode: a few steps) and returns the trained model and its metrics."""
    if name not in ZOO:
        raise LetheError(f"{name!r} is not a zoo model.", f"Known: {', '.join(ZOO)}.")
    entry = ZOO[name]

    def job(progress: ProgressFn, cancel: CancelToken) -> JobResult:
        progress(ProgressEvent(0, 0, stage="start", message=f"running {entry.recipe}" + (" (smoke)" if smoke else "")))
        bundle = entry.train(seed=seed, device=device, progress=progress, cancel=cancel, smoke=smoke)
        return JobResult(bundle=bundle, metrics=dict(bundle.card.metrics))

    return job
