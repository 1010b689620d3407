"""Taming normalizing flows (Malnick, Avidan & Fried, WACV 2024): make a flow forget, or emphasise, chosen images.

    from core.methods.taming import TamingConfig, taming_job, prepare, tame
    flow = load_model("synthfaces-flow")
    sets, judges = prepare(flow, "identity=17")           # D_F, D'_F, D_R, D_R^id, D_R^NN and the judges
    result = tame(flow, sets, TamingConfig(), seed=0)     # Algorithm 1 on a copy; flow is never modified
    result.metrics["qd_forget"], result.bundle            # eq. 15 on D_F, the tamed flow

- `losses`: eq. 8-12 as pure tensor functions (the KL is differentiable in mean and standard deviation).
- `sets`: the forget, held-out, remember, held-out-identity and nearest-identity sets (Sec. 4.1-4.3).
- `own_samples`: D_F from the flow's own samples the judge reads as an attribute (`--forget samples:EXPR`).
- `algorithm`: Algorithm 1 with the stopping rule (eq. 10), both directions, target shares (Sec. 4.2), the
  Table 2 ablations, live metrics, and the before/after measurements (eq. 13-15, BPD, FID, normality).

Command line: `python -m core tame MODEL --forget SPEC [--direction forget|emphasize] [--target-share P] ...`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, fields
from typing import Any

import torch

from core.cli.methods import MethodCall, MethodVerb
from core.data import ImageData, load
from core.data.selection import Selection, parse_spec
from core.errors import LetheError
from core.methods.taming.algorithm import (DIRECTIONS, Judges, ShareJudge, TamingConfig, TamingResult, density_grid,
                                           evaluate, nlls_bpd, tame)
from core.methods.taming.losses import (forget_loss, normal_fit, normal_kl, reached, remember_loss, signed_distance,
                                        threshold, total_loss)
from core.methods.taming.own_samples import SAMPLE_POOL, own_sample_sets, sample_expression
from core.methods.taming.sets import TamingSets, build_sets
from core.models.bundles import Bundle, ClassifierBundle, FlowBundle
from core.methods.inputs import data_requirement, heldout_needs_data, judges_for, user_data, zoo_judges
from core.progress import CancelToken, ProgressFn
from core.models.checkpoint import save_bundle
from core.runs import JobResult, RunRecord
from core.runs.runner import current_run_folder

ABLATIONS = {
    "none": {},
    "no-remember": {"remember_loss": False},
    "no-forward-kl": {"forward_kl": False},
    "no-reverse-kl": {"reverse_kl": False},
    "no-nll": {"nll_term": False},
    "no-kl": {"forward_kl": False, "reverse_kl": False},
}
"""Table 2's ablations: which part of the loss (eq. 11-12) each one drops. The paper names a row by what it drops:
L_R (no-remember), L_KL_R (no-reverse-kl), L_KL_F (no-forward-kl), A_theta_T (no-nll) and L_KL_F + L_KL_R (no-kl:
both KL terms dropped, the remember loss is the NLL term alone)."""


def selection_for(flow: Bundle, forget: str | Selection, dataset: str | None = None) -> Selection:
    """A `Selection` on the flow's training split (or on `dataset`, the name of the user's data) from a spec
    (`identity=17`, `ids=3`, `attr=glasses`, `saved=NAME`, `label=0`) or a ready Selection."""
    dataset = dataset or flow.card.data.get("dataset")
    if isinstance(forget, Selection):
        selection = forget
    else:
        if not dataset:
            raise LetheError(f"model {flow.card.name!r} does not name its training dataset on its card.",
                             "Pass --data DIR|FILE.npz (the flow's training images).")
        selection = parse_spec(forget, dataset)
    if dataset and selection.dataset != dataset:
        raise LetheError(f"the forget set is on {selection.dataset!r} but {flow.card.name} was trained on {dataset!r}.",
                         "Pick images of the flow's own dataset.")
    return selection


def prepare(flow: Bundle, forget: str | Selection, *, remember: str = "train", seed: int = 0, eval_size: int = 500,
            heldout_identities: int = 25, neighbours: int = 5, judges: dict[str, ClassifierBundle] | None = None,
            data=None, test=None, sample_pool: int = SAMPLE_POOL) -> tuple[TamingSets, Judges]:
    """The sets of a taming run and its judges (share of the criterion in samples; FID's domain classifier).

    `forget="samples:EXPR"` takes D_F from the flow's own samples (`sample_pool` of them) that the attribute judge
    reads as EXPR, the rest as for `attr=EXPR` (see `own_samples`)."""
    if not isinstance(flow, FlowBundle):
        raise LetheError(f"taming works on normalizing flows; {flow.card.name!r} is a {flow.family}.",
                         "Pick a flow: synthfaces-flow, mnist-flow or toy-flow.")
    expression = sample_expression(forget)
    if expression is not None:
        forget = f"attr={expression}"  # D_R, D'_F and the share judge as an attribute run builds them
    selection = selection_for(flow, forget, data.name if data is not None else None)
    if judges is None:
        judges = zoo_judges(selection.dataset, flow.device)
    data = data if data is not None else load(selection.dataset, "train")
    test = test if test is not None else load(selection.dataset, "test")
    sets = build_sets(data, selection, test=test, remember=remember, seed=seed, eval_size=eval_size,
                      heldout_identities=heldout_identities, neighbours=neighbours,
                      attribute_judge=judges.get("attributes"), identity_judge=judges.get("embedding"))
    share = None
    if sets.attribute is not None:
        share = ShareJudge(attribute=sets.attribute, classifier=judges.get("attributes")) if judges.get(
            "attributes") else None
    elif sets.labels is not None:
        if len(flow.data_shape) == 1 and data.labels is not None:
            means = torch.stack([data.x[data.labels == k].mean(0) for k in range(int(data.labels.max()) + 1)])
            share = ShareJudge(labels=sets.labels, class_means=means)
        elif judges.get("labels") is not None:
            share = ShareJudge(labels=sets.labels, classifier=judges["labels"])
    if expression is not None:
        if share is None:
            raise LetheError(f"samples:{expression} needs an attribute judge to read the flow's samples.",
                             "Give an attribute classifier with --judge SPEC, or forget attr=EXPR on the data.")
        sets = own_sample_sets(flow, sets, share, sample_pool, seed)
    fid = judges.get("attributes") or judges.get("labels")
    return sets, Judges(share=share, fid=fid)


def taming_study(model: str, forget: str, config: TamingConfig, seed: int = 0, *, eval_size: int = 500,
                 heldout_identities: int = 25, device: str = "cpu") -> TamingResult:
    """One taming run as an independent job for `core.runs.executor.run_jobs` (a notebook's table over sizes,
    seeds, attributes or ablations): a model spec, a `--forget` spec and the config in (all pickle), the tamed copy
    and its measurements out, alike here, in a spawn worker or on Ray. Sets and judges are the flow's dataset's."""
    from core.models.spec import load_model

    flow = load_model(model, device)
    sets, judges = prepare(flow, forget, seed=seed, eval_size=eval_size, heldout_identities=heldout_identities)
    return tame(flow, sets, config, seed=seed, judges=judges)


def taming_job(flow: FlowBundle, forget: str | Selection, config: TamingConfig, seed: int = 0,
               remember: str = "train", eval_size: int = 500, judges: dict[str, ClassifierBundle] | None = None,
               data: ImageData | None = None, test: ImageData | None = None,
               prepared: tuple[TamingSets, Judges] | None = None):
    """A job for `core.runs` (`runner.start(job, ...)` or `run_now`): prepare the sets (unless `prepared` holds
    `prepare`'s result already, as the command line does so a data error fails before a run exists), tame, return
    a JobResult. `data` / `test` replace the flow's dataset (the user's own images; see `user_data`)."""

    def job(progress: ProgressFn, cancel: CancelToken) -> JobResult:
        sets, judge = prepared or prepare(flow, forget, remember=remember, seed=seed, eval_size=eval_size,
                                          judges=judges, data=data, test=test)
        cancel.raise_if_set()
        result = tame(flow, sets, config, seed=seed, progress=progress, cancel=cancel, judges=judge)
        if result.best is not None:
            result.metrics["best_model"] = save_best(result.best)
        figures = dict(result.figures)
        if result.history:
            import pandas as pd

            figures["history"] = pd.DataFrame(result.history)
        return JobResult(result.bundle, result.metrics, figures)

    return job


BEST_FOLDER = "model-best"
"""Where a run keeps its best-share model, beside the final one in `model/` (see `BestShare`)."""


def save_best(best: FlowBundle) -> str | None:
    """Save the best-share model in the current run's folder (`BEST_FOLDER`, a loadable model spec whose parent
    is the run's base model); returns its path, or None outside a run (the caller keeps `result.best`)."""
    folder = current_run_folder()
    if folder is None:
        return None
    config = folder / "config.json"
    if config.is_file():
        best.card.parent = json.loads(config.read_text()).get("model")
    save_bundle(best, folder / BEST_FOLDER)
    return str((folder / BEST_FOLDER).absolute())  # a spec that still loads from another working folder


def best_model_spec(run: RunRecord) -> str | None:
    """The run's best-share model (a folder spec), or None when it kept none (its final model is its best)."""
    folder = run.path / BEST_FOLDER
    return str(folder) if (folder / "card.json").is_file() and (folder / "model.safetensors").is_file() else None


def job_params(forget: str, config: TamingConfig, remember: str = "train", ablation: str = "none") -> dict[str, Any]:
    """What a run's config.json records about a taming run."""
    return {"forget": forget, "remember": remember, "ablation": ablation, **asdict(config)}


# -------------------------------------------------------------------------------------------- command line


def _add(parser: argparse.ArgumentParser) -> None:
    defaults = TamingConfig()
    parser.add_argument("--forget", required=True,
                        help="what to forget: identity=17, ids=3,5, attr='glasses & ~smile', label=0, saved=NAME, or "
                             "samples:EXPR (the flow's own samples the attribute judge reads as EXPR)")
    parser.add_argument("--direction", choices=DIRECTIONS, default="forget",
                        help="forget (raise the NLL to mu_R + delta sigma_R) or emphasize (lower it)")
    parser.add_argument("--target-share", type=float, default=None,
                        help="debias: push the share of samples with the attribute to this fraction (picks the "
                             "direction itself)")
    parser.add_argument("--remember", default="train",
                        help="remember set: train (D minus D_F), test, or test:SPEC (Sec. 4.3, not the training set)")
    parser.add_argument("--ablation", choices=tuple(ABLATIONS), default="none", help="Table 2's ablations")
    parser.add_argument("--heldout", default=None, metavar="DIR|FILE.npz",
                        help="with --data: images of the same kind the flow was NOT trained on (same layout); "
                             "gives the held-out forget images D'_F and the images --remember test remembers")
    for name in ("delta", "alpha", "gamma", "epsilon", "lr"):
        parser.add_argument(f"--{name}", type=float, default=getattr(defaults, name))
    for name in ("max_iterations", "refresh_every", "remember_batch", "forget_batch"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    parser.add_argument("--eval-samples", type=int, default=defaults.eval_samples,
                        help="generated samples for FID and the attribute share")
    parser.add_argument("--eval-size", type=int, default=500, help="images per evaluation set (reference, D_R)")


def config_from(args: argparse.Namespace) -> TamingConfig:
    known = {f.name for f in fields(TamingConfig)}
    values = {k: v for k, v in vars(args).items() if k in known and v is not None}
    values.update(ABLATIONS[args.ablation])
    return TamingConfig(**values)


def requirements(bundle: Bundle) -> list[str]:
    """What taming needs that `bundle` lacks: its training data (the card's dataset, else --data)."""
    return data_requirement(bundle)


def job_inputs(flow: Bundle, data: str | None, judge: str | None, device: torch.device | str,
               heldout: str | None = None) -> dict[str, Any]:
    """`taming_job`'s `data`, `test` and `judges` for the user's data spec, held-out data spec and judge spec
    (None: the flow's own dataset and the zoo's judges for it). Fails before anything is loaded when the flow
    names no data and none is given, or when the judge cannot read the flow's images."""
    heldout_needs_data(data, heldout)
    if data is None and requirements(flow):
        raise LetheError(f"cannot tame {flow.card.name!r}: {requirements(flow)[0]}.",
                         "Run `python -m core show MODEL` to see what each verb needs.")
    inputs: dict[str, Any] = {}
    if judge is not None or data is not None:  # the zoo's judges read the zoo's datasets, not the user's images
        inputs["judges"] = judges_for(flow, data, judge, device)
    if data is not None:
        inputs["data"], inputs["test"] = user_data(data, flow, heldout)
    return inputs


def _prepare(args: argparse.Namespace, bundle: Bundle, device: torch.device) -> MethodCall:
    config = config_from(args)
    config.validate()
    inputs = job_inputs(bundle, args.data, args.judge, device, args.heldout)
    # data errors (a bad spec, an empty or all-covering set, a missing judge) fail before a run is created
    prepared = prepare(bundle, args.forget, remember=args.remember, seed=args.seed, eval_size=args.eval_size,
                       **inputs)
    job = taming_job(bundle, args.forget, config, seed=args.seed, remember=args.remember, eval_size=args.eval_size,
                     prepared=prepared, **inputs)
    params = job_params(args.forget, config, args.remember, args.ablation)
    params.update({k: v for k, v in (("data", args.data), ("heldout", args.heldout), ("judge", args.judge)) if v})
    return MethodCall(params=params, job=job)


_FLAGS = {name: f"--{name.replace('_', '-')}" for name in ("delta", "alpha", "gamma", "epsilon", "lr", "max_iterations",
                                                             "refresh_every", "remember_batch", "forget_batch",
                                                             "eval_samples", "target_share")}


def taming_command(model: str, forget: str, config: TamingConfig, remember: str = "train", ablation: str = "none",
                   seed: int = 0, data: str | None = None, judge: str | None = None,
                   heldout: str | None = None) -> str:
    """`python -m core tame ...` that records the same config as the app's run (see `core.cli.command`);
    `data`, `heldout` and `judge` are the user's own training images, held-out images and classifier (`--data`,
    `--heldout`, `--judge`)."""
    from core.cli.command import config_flags, method_command

    words = ["--forget", forget]
    words += [w for flag, value in (("--data", data), ("--heldout", heldout), ("--judge", judge)) if value
              for w in (flag, value)]
    if config.direction != "forget":
        words += ["--direction", config.direction]
    if remember != "train":
        words += ["--remember", remember]
    if ablation != "none":
        words += ["--ablation", ablation]
    skip = ("direction", *ABLATIONS[ablation])
    words += config_flags(config, TamingConfig(), _FLAGS, skip=skip)
    return method_command("tame", model, words, seed)


CLI_VERB = MethodVerb("tame", "tame a normalizing flow: forget or emphasise images, identities or attributes",
                      _add, _prepare, families=("flow",), requirements=requirements, takes_data=True)

__all__ = [
    "ABLATIONS", "BEST_FOLDER", "CLI_VERB", "DIRECTIONS", "Judges", "ShareJudge", "TamingConfig", "TamingResult",
    "TamingSets", "best_model_spec", "build_sets", "config_from", "density_grid", "evaluate", "forget_loss",
    "job_inputs", "job_params", "nlls_bpd", "normal_fit", "normal_kl", "prepare", "reached", "remember_loss",
    "selection_for", "signed_distance", "tame", "taming_command", "taming_job", "taming_study", "threshold",
    "total_loss", "zoo_judges",
]
