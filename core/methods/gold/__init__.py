"""GOLD for conditional GANs (Mo, Kim, Shin & Shin, NeurIPS 2019): score every sample with the discriminator's two
heads, reject bad samples, re-weight training, pick queries for labelling.

    from core.methods.gold import score_generated, score, rejection_sample
    gan = load_model("mnist-acgan")
    x, scores = score_generated(gan, 1000, seed=0)          # eq. 3: scores.marginal, scores.conditional, scores.gold()
    real = score(gan, data.x, data.labels, "real")           # eq. 3 for real images (which ones G fits worst)
    result = rejection_sample(gan, 1000, p=0.1, seed=0)      # eq. 6: exactly 1000 accepted samples
    result.acceptance_rate

- `estimator`: eq. 3, 4, 8, 9 with the marginal and conditional parts kept apart, and the model checks.
- `rejection`: eq. 6 with the DRS logit shift, per-class percentiles, exact sample counts.
- `measure`: fitting capacity of plain vs rejection samples (Tables 3-4).
- `training`: re-weighting (eq. 5) and active learning (Sec. 3.2) as jobs with per-epoch / per-round curves.

Command line: `python -m core gold MODEL score|sample|reweight|active ...` (see `CLI_VERB`).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.cli.methods import MethodCall, MethodVerb
from core.errors import LetheError
from core.methods.inputs import input_flags, input_params, need_heldout, train_and_test, training_data
from core.methods.gold.estimator import (KINDS, PARTS, GoldScores, extremes, part, balance_ratio, check_classes, check_finite,
                                         check_gold_model, discriminator_heads, score, score_generated, terms)
from core.methods.gold.measure import rejection_gain, rounds_table
from core.methods.gold.training import (SCHEDULES, ActiveConfig, ReweightConfig, active_learning,
                                        query, reweight, reweight_power, validation_split)
from core.methods.gold.rejection import (Calibration, RejectionResult, acceptance_logit, acceptance_probability,
                                         burn_in, calibrate, check_p, default_p, rejection_sample)
from core.models.bundles import Bundle, GANBundle
from core.progress import CancelToken, ProgressEvent, ProgressFn
from core.runs import JobResult

ACTIONS = ("score", "sample", "reweight", "active")


FC_WHY = "the fitting capacity (a classifier trained on samples of G, tested on real labelled images)"


def real_data(gan: GANBundle, split: str = "train", data: str | None = None, heldout: str | None = None,
              labelled: bool = True):
    """The GAN's real images: the user's training images `data` (split "train") or held-out images `heldout`
    (split "test"), else the split of the dataset its card names; when `labelled`, checked to carry the labels
    GOLD's conditional term log D_C(c|x) reads, within the GAN's classes (eq. 8's unlabeled images need none)."""
    if split == "train":
        images = training_data(gan, data, "GOLD on real images")
    else:
        need_heldout(data, heldout, "GOLD", FC_WHY)
        images = train_and_test(gan, data, heldout, "GOLD")[1]
    return check_labelled(images, gan) if labelled else images


def check_labelled(images, gan: GANBundle):
    """`images` if every one has a class the GAN knows; a LetheError naming what is missing otherwise."""
    where = Path(images.name).name
    if images.labels is None:
        raise LetheError(f"GOLD's conditional term log D_C(c|x) needs the class of every real image, and {where} "
                         f"({images.split}) has no labels.",
                         "Give the images with their classes: one sub-folder per class, or a `labels` array in "
                         "the .npz.")
    classes = int(images.labels.max()) + 1 if len(images) else 0
    if classes > gan.num_classes:
        raise LetheError(f"{where} ({images.split}) has {classes} classes but {gan.card.name!r} generates "
                         f"{gan.num_classes}.", "Give images of the GAN's own classes (class k = the k-th "
                                                "sub-folder in name order, or labels 0..K-1 in the .npz).")
    return images


def score_job(gan: GANBundle, on: str, n: int | None, seed: int, label: int | None, out: Path,
              data: str | None = None):
    """A job that scores generated, real or unlabeled samples and writes one CSV row per sample to `out`."""

    def job(progress: ProgressFn, cancel: CancelToken) -> JobResult:
        progress(ProgressEvent(0, 1, stage="score", message=f"scoring {on} samples"))
        if on == "generated":
            _, scores = score_generated(gan, n or 10_000, seed=seed, labels=label)
            ids = torch.arange(len(scores))
        else:
            images = real_data(gan, data=data, labelled=on == "real" or label is not None)
            keep = torch.ones(len(images), dtype=torch.bool) if label is None else images.labels == label
            x, ids = images.x[keep][:n], images.ids[keep][:n]
            y = None if images.labels is None else images.labels[keep][:n]
            scores = score(gan, x, y, on)
        ratio = scores.balance_ratio()
        table = scores.table(ratio)
        table.insert(0, "id", ids.tolist())
        table.to_csv(out, index=False)
        progress(ProgressEvent(1, 1, stage="score", message=f"wrote {len(table)} rows to {out}"))
        return JobResult(metrics={"out": str(out), "n": len(scores), "marginal_mean": float(scores.marginal.mean()),
                                  "conditional_mean": float(scores.conditional.mean()),
                                  "gold_mean": float(scores.gold().mean()), "balance_ratio": ratio})

    return job


def sample_job(gan: GANBundle, n: int, p: float, seed: int, label: int | None, burn_in_size: int, out: Path):
    """A job that draws exactly `n` samples with GOLD rejection (eq. 6) into `out` (.png grid or .npy array,
    labels beside it as in `python -m core sample`)."""

    def job(progress: ProgressFn, cancel: CancelToken) -> JobResult:
        result = rejection_sample(gan, n, p, seed=seed, label=label, burn_in_size=burn_in_size, progress=progress,
                                  cancel=cancel)
        write_samples(result.x, result.labels, out)
        return JobResult(metrics={"out": str(out), "n": len(result.x), "proposed": result.proposed,
                                  "acceptance_rate": result.acceptance_rate, "p": p,
                                  "balance_ratio": result.calibration.ratio, "log_M": result.calibration.log_m,
                                  "sampling_seconds": result.seconds})

    return job


def reweight_job(gan: GANBundle, config: ReweightConfig, seed: int, data: str | None = None,
                 heldout: str | None = None):
    """A job that trains baseline and eq. 5 re-weighted cGANs from the same seed on the model's own data; the
    re-weighted model is the run's model, the per-epoch curves its `history` table."""

    def job(progress: ProgressFn, cancel: CancelToken) -> JobResult:
        import pandas as pd

        out = reweight(gan, real_data(gan, data=data), real_data(gan, "test", data, heldout), config, seed, progress,
                       cancel)
        return JobResult(out["bundle"], out["metrics"], {"history": pd.DataFrame(out["history"])})

    return job


def active_job(gan: GANBundle, config: ActiveConfig, seed: int, compare: bool = True, data: str | None = None,
               heldout: str | None = None):
    """A job that runs active learning with `config.strategy` and, with `compare`, the random-query baseline from
    the same start; with `config.val_size`, held-out images (one fixed random draw) pick each round's best epoch, the
    rest measure the fitting capacity; for 2-D data the pool with each round's queries is a figure (Fig. 3)."""

    def job(progress: ProgressFn, cancel: CancelToken) -> JobResult:
        import pandas as pd

        images, test = real_data(gan, data=data), real_data(gan, "test", data, heldout)
        strategies = [config.strategy] + (["random"] if compare and config.strategy != "random" else [])
        results, rows, figures = {}, [], {}
        for i, strategy in enumerate(strategies):
            def staged(event, i=i, strategy=strategy):
                metrics = {f"{k}_{strategy}": v for k, v in event.metrics.items()}
                progress(ProgressEvent(i * event.total + event.step, len(strategies) * event.total, metrics,
                                       stage=event.stage))
            results[strategy] = active_learning(gan, images, test, replace(config, strategy=strategy), seed, staged,
                                                cancel)
            rows += [{**row, "strategy": strategy} for row in results[strategy]["history"]]
            if images.x.dim() == 2:
                pool = images.x[:len(results[strategy]["rounds"])]
                figures[f"pool_{strategy}"] = {"x": pool.tolist(), "labels": images.labels[:len(pool)].tolist(),
                                               "rounds": results[strategy]["rounds"].tolist()}
        metrics = {f"{k}_{s}": v for s, r in results.items() for k, v in r["metrics"].items()
                   if k in ("fitting_capacity", "labelled")}
        figures["history"] = pd.DataFrame(rows)
        return JobResult(results[config.strategy]["bundle"], metrics, figures)

    return job


def write_samples(x: torch.Tensor, labels: torch.Tensor, out: Path) -> None:
    """`python -m core sample`'s file conventions: a .png grid or an .npy array, labels in `<out>.labels.npy`."""
    from core.cli.sample import labels_path
    from core.runs.store import save_png_grid

    if out.suffix == ".png":
        save_png_grid(x, out)
    else:
        np.save(out, x.numpy().astype(np.float32), allow_pickle=False)
    np.save(labels_path(out), labels.numpy().astype(np.int64), allow_pickle=False)


# -------------------------------------------------------------------------------------------- command line


def _add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="score: per-sample GOLD terms to a CSV; "
                                                         "sample: draw with rejection sampling")
    parser.add_argument("-n", type=int, default=None,
                        help="samples to score (default 10,000 generated / every real image) or to draw (default 64)")
    parser.add_argument("--on", choices=KINDS, default="generated", help="score: which samples (default generated)")
    parser.add_argument("--class", dest="label", type=int, default=None, help="only this class")
    parser.add_argument("--reject", type=float, default=None, metavar="P",
                        help="sample: the percentile p of the logit shift, in [0, 1) (default 0.1 for 1-channel "
                             "images, 0.5 for 3-channel)")
    parser.add_argument("--burn-in", type=int, default=50_000, help="sample: samples that fix M and gamma")
    parser.add_argument("--out", default=None, help="score: FILE.csv; sample: FILE.png or FILE.npy")
    parser.add_argument("--epochs", type=int, default=None,
                        help="reweight: total epochs, half plain (default 20); active: epochs per round (default 100)")
    parser.add_argument("--beta", type=float, default=1.0, help="reweight: eq. 5's beta for D (G uses 0)")
    parser.add_argument("--fc-samples", type=int, default=5000, help="reweight/active: samples per fitting capacity")
    parser.add_argument("--fc-epochs", type=int, default=5, help="reweight/active: LeNet epochs per fitting capacity")
    parser.add_argument("--fc-every", type=int, default=1, metavar="N",
                        help="reweight: measure the fitting capacity every N epochs and at the end (default 1: "
                             "every epoch, Fig. 1c's curve; a larger N saves a LeNet training per skipped epoch)")
    parser.add_argument("--schedule", default=None, metavar="INITIAL,QUERY,FINAL",
                        help="active: labelled-set sizes (default: the paper's for the dataset, per class on images)")
    parser.add_argument("--strategy", choices=("gold", "random"), default="gold", help="active: how to query")
    parser.add_argument("--pool-size", type=int, default=None, help="active: use the first N training images")
    parser.add_argument("--lambda-c", type=float, default=None,
                        help="active: weight of the fake-class terms of the ACGAN loss in every round (default 0.1, "
                             "measured better here; the paper's Sec. 4: 'we choose lambda_c = 0.01 and lambda_c = 0 "
                             "for synthetic/MNIST and FMNIST/SVHN datasets'; with few epochs per round 0.01 leaves "
                             "G drawing the wrong class)")
    parser.add_argument("--val-size", type=int, default=0, metavar="N",
                        help="active: N held-out images (one fixed random draw) are a validation set that picks "
                             "each round's best epoch for the query and the next round ('choose the model with the "
                             "best fitting capacity on the validation set (of size 100)'); the fitting capacity is "
                             "measured on the other held-out images; 0, the default, keeps the last epoch; the paper "
                             "uses 100)")
    parser.add_argument("--train-size", type=int, default=None, help="reweight: use the first N training images")
    parser.add_argument("--heldout", default=None, metavar="DIR|FILE.npz",
                        help="reweight/active with --data: labelled images of the same kind the GAN was NOT trained "
                             "on (same layout), the real test images of the fitting capacity (active: "
                             "--val-size of them are the validation set instead)")


def _out(args: argparse.Namespace, suffixes: tuple[str, ...]) -> Path:
    from core.cli.validate import output_file

    if args.out is None or Path(args.out).suffix not in suffixes:
        raise LetheError(f"gold {args.action} writes to --out FILE ending in {' or '.join(suffixes)}"
                         f"{'' if args.out is None else f', not {Path(args.out).name!r}'}.",
                         f"Pass --out with one of {', '.join(suffixes)}.")
    return output_file(args.out)


def _prepare(args: argparse.Namespace, bundle: Bundle, device: torch.device) -> MethodCall:
    check_gold_model(bundle)  # type: ignore[arg-type]
    if args.judge is not None:
        raise LetheError("GOLD uses no judge: it reads the GAN's own discriminator, and its fitting capacity trains "
                         "a fresh classifier on samples of G.", "Drop --judge.")
    if args.label is not None:
        check_classes(bundle, args.label)  # type: ignore[arg-type]
    if args.n is not None and args.n < 1:
        raise LetheError(f"-n must be at least 1 (got {args.n}).", "Ask for one or more samples.")
    params: dict[str, Any] = {"action": args.action, "n": args.n, "class": args.label,
                              **input_params(args.data, None, args.heldout)}
    if args.action in ("reweight", "active"):
        need_heldout(args.data, args.heldout, f"gold {args.action}", FC_WHY)
    elif args.heldout is not None:
        raise LetheError(f"gold {args.action} reads no held-out images.", "Drop --heldout.")
    if args.action == "score":
        out = _out(args, (".csv",))
        if args.on != "generated":
            real_data(bundle, data=args.data, labelled=args.on == "real" or args.label is not None)  # type: ignore[arg-type]
        elif args.data is not None:
            raise LetheError("gold score --on generated scores fresh samples of G; --data is not read.",
                             "Add --on real to score your images, or drop --data.")
        params.update(on=args.on, out=str(out))
        return MethodCall(params, score_job(bundle, args.on, args.n, args.seed, args.label, out,  # type: ignore[arg-type]
                                            args.data))
    if args.action == "reweight":
        config = ReweightConfig(epochs=args.epochs or 20, beta=args.beta, fc_every=args.fc_every,
                                fc_samples=args.fc_samples, fc_epochs=args.fc_epochs, train_size=args.train_size)
        config.validate()
        check_enough(real_data(bundle, data=args.data), config)  # type: ignore[arg-type]
        real_data(bundle, "test", args.data, args.heldout)  # type: ignore[arg-type]
        params.update(asdict(config))
        return MethodCall(params, reweight_job(bundle, config, args.seed, args.data, args.heldout))  # type: ignore[arg-type]
    if args.action == "active":
        config = active_config(bundle, args)  # type: ignore[arg-type]
        validation_split(real_data(bundle, "test", args.data, args.heldout), config.val_size)  # type: ignore[arg-type]
        params.update(asdict(config))
        return MethodCall(params, active_job(bundle, config, args.seed, data=args.data,  # type: ignore[arg-type]
                                             heldout=args.heldout))
    if args.data is not None:
        raise LetheError("gold sample draws fresh samples of G; --data is not read.", "Drop --data.")
    out = _out(args, (".png", ".npy"))
    p = check_p(default_p(bundle) if args.reject is None else args.reject)  # type: ignore[arg-type]
    if args.burn_in < 2:
        raise LetheError(f"--burn-in must be at least 2 (got {args.burn_in}).", "The authors use 50,000.")
    params.update(p=p, burn_in=args.burn_in, out=str(out))
    return MethodCall(params, sample_job(bundle, args.n or 64, p, args.seed, args.label, args.burn_in, out))  # type: ignore[arg-type]


def check_enough(images, config: ReweightConfig) -> None:
    """Refuse a re-weighting run on fewer images than one minibatch: training drops the short last batch, so it
    would take no step and report two untrained models."""
    n = len(images) if config.train_size is None else min(len(images), config.train_size)
    if n < config.batch_size:
        raise LetheError(f"gold reweight trains on minibatches of {config.batch_size} images, and "
                         f"{Path(images.name).name} has {n}: no training step would run.",
                         f"Give at least {config.batch_size} labelled training images.")


def gold_command(model: str, action: str, words: list[str], seed: int = 0, data: str | None = None,
                 heldout: str | None = None) -> str:
    """`python -m core gold MODEL ACTION ...` with the action's own `words` and the user's `data` and `heldout`
    images when given (GOLD reads no judge)."""
    from core.cli.command import method_command

    return method_command("gold", model, [action, *words, *input_flags(data, None, heldout)], seed)


def active_config(gan: GANBundle, args: argparse.Namespace) -> ActiveConfig:
    """ActiveConfig from the command line: the paper's schedule for the model's dataset unless --schedule, with
    --lambda-c and --val-size (held-out images that pick each round's best epoch) when given."""
    data = real_data(gan, data=args.data)
    overrides: dict[str, Any] = {"strategy": args.strategy, "pool_size": args.pool_size,
                                 "fc_samples": args.fc_samples, "fc_epochs": args.fc_epochs, "val_size": args.val_size}
    if args.epochs:
        overrides["epochs"] = args.epochs
    if args.lambda_c is not None:
        overrides["lambda_c"] = args.lambda_c
    if args.schedule:
        try:
            overrides["initial"], overrides["query"], overrides["final"] = (int(v) for v in args.schedule.split(","))
        except ValueError:
            raise LetheError(f"--schedule takes INITIAL,QUERY,FINAL, not {args.schedule!r}.",
                             "For example 10,2,18 (the paper's MNIST schedule, per class).") from None
    config = ActiveConfig.for_dataset(data.name, **overrides)
    config.validate()
    return config


def requirements(bundle: Bundle) -> list[str]:
    """What GOLD needs that `bundle` lacks: classes and a discriminator (its auxiliary head is checked on load).
    Real images (--data) are needed only to score real images, re-weight or query, so they are not listed."""
    missing = []
    if not getattr(bundle, "conditional", False):
        missing.append("it is not a conditional GAN (GOLD needs classes)")
    if getattr(bundle, "discriminator", None) is None:
        missing.append("it has no discriminator")
    return missing


CLI_VERB = MethodVerb("gold", "GOLD for conditional GANs: score samples, draw with rejection sampling, re-weight "
                      "training, active learning",
                      _add, _prepare, families=("gan",), requirements=requirements, takes_data=True)

__all__ = [
    "ACTIONS", "ActiveConfig", "CLI_VERB", "ReweightConfig", "SCHEDULES", "active_config", "active_job", "active_learning", "query", "reweight", "reweight_job", "reweight_power", "validation_split", "Calibration", "GoldScores", "KINDS", "PARTS", "extremes", "part", "rejection_gain", "rounds_table", "RejectionResult", "acceptance_logit",
    "acceptance_probability", "balance_ratio", "burn_in", "calibrate", "check_classes", "check_enough", "check_finite",
    "check_gold_model", "check_p", "default_p", "discriminator_heads", "gold_command", "real_data", "rejection_sample", "sample_job",
    "score", "score_generated", "score_job", "terms", "write_samples",
]
