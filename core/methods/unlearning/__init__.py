"""Machine unlearning for image-to-image models (Li et al., ICLR 2024): make an inpainting model fill forgotten
classes or people with noise while it completes everything else as before.

    from core.methods.unlearning import UnlearnConfig, prepare, unlearn, evaluate
    i2i = load_model("mnist-i2i")
    sets, judges = prepare(i2i, "label=0,1", retain="train")     # D_F, D_R, held-out sets, the judges
    result = unlearn(i2i, sets, UnlearnConfig(method="ours"))     # eq. 10 on a copy; i2i is never modified
    evaluate(result.bundle, sets.eval, judges.quality)            # FID/IS/cosine/PSNR per degradation and set

- `sets`: forget set, the three retain sources (train / proxy:SPEC / limited:K) and held-out evaluation sets.
- `algorithm`: eq. 10 (encoder only, frozen teacher, shared degradations, noise target) and the four baselines
  of App. C.6 behind one `unlearn`.
- `measure`: FID/IS on the dataset's Lethe classifier, feature cosine, PSNR, identity recognition against the
  noise-filled reference, the cross-validation of App. E.2 and the Fig. 4 embedding points.

Command line: `python -m core unlearn MODEL --forget SPEC [--method ours|max-loss|...] [--retain ...] --json`.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from core.cli.methods import MethodCall, MethodVerb
from core.data.selection import Selection, parse_spec
from core.distributed import team
from core.errors import LetheError
from core.methods.inputs import (check_data, data_requirement, input_flags, input_params, known_judges, need_heldout, need_judge,
                                 train_and_test)
from core.methods.unlearning.algorithm import (ENCODER_ONLY, METHOD_NAMES, METHODS, NOISES, UnlearnConfig,
                                               UnlearnResult, draw_noise, losses, unlearn)
from core.methods.unlearning.measure import (SETS, complete, degrade_for_eval, embedding_points, eval_kinds,
                                             evaluate, judge_label)
from core.methods.unlearning.sets import RETAIN_SOURCES, UnlearnSets, build_sets
from core.models.bundles import Bundle, ClassifierBundle, I2IBundle
from core.progress import CancelToken, ProgressEvent, ProgressFn
from core.runs import JobResult
from core.zoo.lookup import card_dataset

BEFORE = "before:"
"""Prefix of the original model's measurements in a run's metrics (`before:fid_forget[center]`)."""


@dataclass
class Judges:
    """`quality`: the classifier whose features and logits give FID, IS and cosine; `identity`: the identity
    embedding for people (None for classes)."""

    quality: ClassifierBundle
    identity: ClassifierBundle | None = None


def eval_sets(sets: UnlearnSets, unseen: bool = False) -> dict[str, Any]:
    """The held-out sets by name, in `SETS` order; with `unseen`, also the kept classes a proxy never showed (when
    the request has them; see `UnlearnSets.eval_unseen`)."""
    out = {"retain": sets.eval_retain, "forget": sets.eval_forget}
    if unseen and sets.eval_unseen is not None:
        out["unseen"] = sets.eval_unseen
    return out


def selection_for(bundle: Bundle, forget: str | Selection, dataset: str | None = None) -> Selection:
    """A Selection on the model's training data (its card's dataset, or `dataset`, the name of the user's data)
    from a spec (`label=0,1`, `identity=0-9`, `saved=NAME`, ...)."""
    dataset = dataset or card_dataset(bundle.card)
    if not dataset:
        raise LetheError(f"model {bundle.card.name!r} does not name its training dataset on its card.",
                         "Pass --data DIR|FILE.npz (the model's training images) and --heldout DIR|FILE.npz.")
    selection = forget if isinstance(forget, Selection) else parse_spec(forget, dataset)
    if selection.dataset != dataset:
        raise LetheError(f"the forget set is on {selection.dataset!r} but {bundle.card.name} was trained on "
                         f"{dataset!r}.", "Pick images of the model's own dataset.")
    return selection


def pick_judges(dataset: str | None, device: torch.device | str = "cpu", judge: str | None = None,
                data_shape: tuple[int, ...] | None = None) -> Judges:
    """The judges of `dataset` (see `core.methods.inputs.known_judges`; the user's `judge` spec takes the role of
    its kind): a label classifier for FID/IS if there is one, else the identity embedding; the identity embedding
    also judges people."""
    found = known_judges(dataset, device, judge, data_shape)
    quality = need_judge(found, ("labels", "embedding"), "FID, IS and feature cosine", "unlearning",
                         "train one with `python -m core zoo train` (mnist-lenet, synthfaces-identity)")
    return Judges(quality, found.get("embedding"))


def prepare(bundle: Bundle, forget: str | Selection, retain: str = "train", seed: int = 0, eval_size: int = 500,
            judges: Judges | None = None, data: str | None = None, heldout: str | None = None,
            judge: str | None = None) -> tuple[UnlearnSets, Judges]:
    """Check the model, build the sets of a request and pick its judges (every bad input fails here, before any
    training). `data`, `heldout` and `judge` are the user's training images, held-out images (the evaluation
    sets come from them) and classifier (`--data`, `--heldout`, `--judge`)."""
    if not isinstance(bundle, I2IBundle):
        raise LetheError(f"unlearning works on image-to-image models; {bundle.card.name!r} is a {bundle.family}.",
                         "Pick an I2I model: mnist-i2i or synthfaces-i2i.")
    need_heldout(data, heldout, "unlearning", "FID, IS and cosine of the forget and retain images")
    check_data(bundle, data, "unlearning")
    judges = judges or pick_judges(data or card_dataset(bundle.card), bundle.device, judge, tuple(bundle.data_shape))
    train, test = train_and_test(bundle, data, heldout, "unlearning")
    selection = selection_for(bundle, forget, train.name)
    sets = build_sets(train, test, selection, retain=retain, seed=seed, eval_size=eval_size)
    return sets, judges


def measure(bundle: I2IBundle, sets: UnlearnSets, judges: Judges, original: I2IBundle | None = None,
            kinds: tuple[str, ...] | None = None) -> dict[str, float]:
    """`measure.evaluate` on the request's held-out sets (with the proxy's unseen classes) with its judges."""
    return evaluate(bundle, eval_sets(sets, unseen=True), judges.quality, judges.identity, original,
                    (sets.pixel_mean, sets.pixel_std), kinds)


def unlearning_study(model: str, forget: str, config: UnlearnConfig, seed: int = 0, *, retain: str = "train",
                     eval_size: int = 500, kinds: tuple[str, ...] | None = None,
                     device: str = "cpu") -> tuple[I2IBundle, dict[str, float]]:
    """One unlearning run as an independent job for `core.runs.executor.run_jobs` (a notebook's table over methods,
    alphas or retain sources): a model spec, a `--forget` spec and the config in (all pickle), the unlearned copy
    and its measurements (with the cross-validation against the original) out, alike here or in a spawn worker."""
    from core.models.spec import load_model

    bundle = load_model(model, device)
    sets, judges = prepare(bundle, forget, retain=retain, seed=seed, eval_size=eval_size)
    result = unlearn(bundle, sets, config, seed=seed)
    return result.bundle, {"seconds": result.seconds, **measure(result.bundle, sets, judges, original=bundle,
                                                                kinds=kinds)}


def unlearning_job(bundle: I2IBundle, forget: str | Selection, config: UnlearnConfig, seed: int = 0,
                   retain: str = "train", eval_size: int = 500, prepared: tuple[UnlearnSets, Judges] | None = None,
                   kinds: tuple[str, ...] | None = None, data: str | None = None, heldout: str | None = None,
                   judge: str | None = None):
    """A job for `core.runs`: measure the original, unlearn, measure the result (with the cross-validation
    against the original); metrics hold both, the original's under the `before:` prefix."""

    def job(progress: ProgressFn, cancel: CancelToken) -> JobResult:
        sets, judges = prepared or prepare(bundle, forget, retain=retain, seed=seed, eval_size=eval_size, data=data,
                                           heldout=heldout, judge=judge)
        progress(ProgressEvent(0, 0, message="measuring the original model", stage="measure"))
        before = measure(bundle, sets, judges, original=bundle, kinds=kinds) if team().is_main else {}  # E.2
        result = unlearn(bundle, sets, config, seed=seed, progress=progress, cancel=cancel)
        if not team().is_main:  # torchrun: rank 0 alone measures and saves the run
            return JobResult()
        done = result.history[-1]["step"] if result.history else 0
        progress(ProgressEvent(done, done, message="measuring the unlearned model", stage="measure"))
        after = measure(result.bundle, sets, judges, original=bundle, kinds=kinds)
        metrics = {"seconds": result.seconds, "forget_images": float(len(sets.forget)),
                   "retain_images": float(len(sets.retain)), **after,
                   **{BEFORE + k: v for k, v in before.items()}}
        figures: dict[str, Any] = {}
        if result.history:
            import pandas as pd

            figures["history"] = pd.DataFrame(result.history)
        return JobResult(result.bundle, metrics, figures)

    return job


def job_params(forget: str, config: UnlearnConfig, retain: str = "train", eval_size: int = 500,
               data: str | None = None, heldout: str | None = None, judge: str | None = None) -> dict[str, Any]:
    """What a run's config.json records about an unlearning run (the user's data, held-out images and judge when
    given)."""
    return {"forget": forget, "retain": retain, "eval_size": eval_size, **asdict(config),
            **input_params(data, judge, heldout)}


def comparison(runs: list[tuple[str, dict[str, Any], dict[str, float]]], kind: str = "center") -> "Any":
    """Tables 1-2 for one request: a row for the original model and one per run (label, params, metrics), columns
    FID / IS / cosine / PSNR on retain (R) and forget (F) for degradation `kind`, and FID on the kept classes a
    proxy retain set never showed (U) when a run has them."""
    import pandas as pd

    with_unseen = any(f"fid_unseen[{kind}]" in m for _, _, m in runs)  # a proxy run: the classes it never showed

    def row(label: str, metrics: dict[str, float], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {"model": label}
        for key, name in (("fid", "FID"), ("is", "IS"), ("cos", "cos"), ("psnr", "PSNR")):
            for s, tag in (("retain", "R"), ("forget", "F")):
                out[f"{name} {tag}"] = metrics.get(f"{prefix}{key}_{s}[{kind}]")
        if with_unseen:
            out["FID U"] = metrics.get(f"{prefix}fid_unseen[{kind}]")
        if f"{prefix}recognised_forget[{kind}]" in metrics:
            out["recognised F"] = metrics[f"{prefix}recognised_forget[{kind}]"]
        return out

    original: dict[str, float] = {}
    for _, _, metrics in runs:  # the first run's before-values, and the unseen classes' from a proxy run
        original.update({k: v for k, v in metrics.items() if k.startswith(BEFORE) and k not in original})
    rows = [row("Original model", original, BEFORE)] if runs else []
    for label, params, metrics in runs:
        rows.append(row(f"{METHOD_NAMES.get(params.get('method'), label)} ({label})" if label else
                        METHOD_NAMES.get(params.get("method"), "?"), metrics))
    return pd.DataFrame(rows)


# -------------------------------------------------------------------------------------------- command line


def _add(parser: argparse.ArgumentParser) -> None:
    defaults = UnlearnConfig()
    parser.add_argument("--forget", required=True,
                        help="what to forget: label=0,1, identity=0-9, attr='glasses & hat', ids=..., saved=NAME")
    parser.add_argument("--method", choices=METHODS, default="ours", help="ours (eq. 10) or a baseline (App. C.6)")
    parser.add_argument("--retain", default="train",
                        help="retain set: train, proxy:SPEC (proxy:fashion-mnist, proxy:label=9) or limited:K")
    parser.add_argument("--noise", choices=NOISES, default=defaults.noise,
                        help="noise of eq. 10: Sigma = I on normalised images, or each image's mean and std")
    for name in ("alpha", "lr", "weight_decay", "clip", "warmup_fraction"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name))
    for name in ("epochs", "batch_size", "retain_ratio", "noise_draws"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    parser.add_argument("--eval-size", type=int, default=500, help="held-out images per evaluation set")
    parser.add_argument("--heldout", default=None, metavar="DIR|FILE.npz",
                        help="with --data: images of the same kind the model was NOT trained on (same layout); the "
                             "held-out forget and retain images every metric is measured on")


def config_from(args: argparse.Namespace) -> UnlearnConfig:
    known = {f.name for f in fields(UnlearnConfig)}
    return UnlearnConfig(**{k: v for k, v in vars(args).items() if k in known and v is not None})


def requirements(bundle: Bundle) -> list[str]:
    """What unlearning needs that `bundle` lacks: its training data (the card's dataset, else --data)."""
    return data_requirement(bundle)


def _prepare(args: argparse.Namespace, bundle: Bundle, device: torch.device) -> MethodCall:
    config = config_from(args)
    config.validate()
    if args.eval_size < 2:
        raise LetheError(f"--eval-size must be at least 2, got {args.eval_size}.", "FID needs two images per set.")
    inputs = {"data": args.data, "heldout": args.heldout, "judge": args.judge}
    prepared = prepare(bundle, args.forget, retain=args.retain, seed=args.seed, eval_size=args.eval_size, **inputs)
    job = unlearning_job(bundle, args.forget, config, seed=args.seed, retain=args.retain, eval_size=args.eval_size,
                         prepared=prepared)
    return MethodCall(params=job_params(args.forget, config, args.retain, args.eval_size, **inputs), job=job)


_FLAGS = {name: f"--{name.replace('_', '-')}" for name in ("alpha", "lr", "weight_decay", "clip", "warmup_fraction",
                                                             "epochs", "batch_size", "noise")}


def unlearning_command(model: str, forget: str, config: UnlearnConfig, retain: str = "train", eval_size: int = 500,
                       seed: int = 0, data: str | None = None, judge: str | None = None,
                       heldout: str | None = None) -> str:
    """`python -m core unlearn ...` that records the same config as the app's run (see `core.cli.command`);
    `data`, `heldout` and `judge` are the user's own training images, held-out images and classifier."""
    from core.cli.command import config_flags, method_command

    words = ["--forget", forget, *input_flags(data, judge, heldout)]
    if config.method != "ours":
        words += ["--method", config.method]
    if retain != "train":
        words += ["--retain", retain]
    if eval_size != 500:
        words += ["--eval-size", str(eval_size)]
    words += config_flags(config, UnlearnConfig(), _FLAGS, skip=("method",))
    return method_command("unlearn", model, words, seed)


CLI_VERB = MethodVerb("unlearn", "unlearn classes or people from an image-to-image model (encoder-only, eq. 10)",
                      _add, _prepare, families=("i2i",), requirements=requirements, takes_data=True)

__all__ = [
    "BEFORE", "CLI_VERB", "ENCODER_ONLY", "Judges", "METHODS", "METHOD_NAMES", "NOISES", "RETAIN_SOURCES", "SETS",
    "UnlearnConfig", "UnlearnResult", "UnlearnSets", "build_sets", "comparison", "complete", "config_from",
    "degrade_for_eval", "draw_noise", "embedding_points", "eval_kinds", "eval_sets", "evaluate", "job_params",
    "judge_label", "losses", "measure", "pick_judges", "prepare", "requirements", "selection_for", "unlearn",
    "unlearning_command", "unlearning_job", "unlearning_study",
]
