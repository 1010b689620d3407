"""Data redaction from pre-trained GANs (Kong & Chaudhuri, SaTML 2023): Lethe's reference implementation.

    from core.methods.redaction import RedactionConfig, redaction_context, redact
    ctx = redaction_context(gan, "label=0")                    # training data, judges, the redaction set
    result = redact(gan, ctx.redaction_set, ctx.data, RedactionConfig(algorithm="classifier"), judge=ctx.judge)

Modules: `sets` (what to redact: labels, samples, attributes, boundary artifacts, label ambiguity, predicates,
unions), `algorithm` (Alg. 1-3 and App. H), `measure` (invalidity, IS, FID, the film), `deletion` (the
retrain-from-scratch baseline), `scores` (redaction scores, Fig. 4), `toy1d` (Fig. 1). The app and the command
line run `redaction_job` / `deletion_job` through `core.runs`.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from core.cli.methods import MethodCall, MethodVerb
from core.data import load as load_data
from core.data.base import ImageData
from core.methods.redaction.algorithm import RedactionConfig, RedactionResult, redact
from core.methods.redaction.deletion import retrain_without
from core.methods.redaction.measure import Meter
from core.methods.redaction.scores import redaction_scores
from core.methods.redaction.sets import ALGORITHMS, Judges, RedactionSet, parse_redaction_spec
from core.models.bundles import ClassifierBundle, GANBundle
from core.progress import CancelToken, ProgressEvent, ProgressFn
from core.runs.runner import Job, JobResult
from core.zoo.lookup import card_dataset, zoo_classifier

__all__ = ["ALGORITHMS", "RedactionConfig", "RedactionContext", "RedactionResult", "RedactionSet", "deletion_job",
           "redaction_command",
           "redact", "redaction_context", "redaction_job", "retrain_without"]


@dataclass
class RedactionContext:
    """What a redaction of one GAN needs besides its config: the training set X, the dataset's judges (label
    classifier for invalidity / IS / FID, attribute classifier, identity embedding) and the redaction set."""

    data: ImageData
    judges: Judges
    redaction_set: RedactionSet

    @property
    def judge(self) -> ClassifierBundle | None:
        """The classifier IS and FID are computed with: the label classifier, else the attribute classifier."""
        return self.judges.labels or self.judges.attributes


def dataset_judges(dataset: str | None, device: torch.device | str = "cpu") -> Judges:
    """The shipped zoo classifiers for `dataset` (any of them may be None)."""
    from core.models.spec import load_model

    names = {kind: zoo_classifier(dataset, kind) for kind in ("labels", "attributes", "embedding")}
    loaded = {kind: load_model(name, device) if name else None for kind, name in names.items()}
    return Judges(loaded["labels"], loaded["attributes"], loaded["embedding"])  # type: ignore[arg-type]


def redaction_context(gan: GANBundle, forget: str | RedactionSet, tau: float = 0.5,
                      data: ImageData | None = None, judges: Judges | None = None) -> RedactionContext:
    """Load the GAN's training split and judges and build the redaction set from a `--forget` spec (or take a
    ready `RedactionSet`, e.g. a predicate built through the API)."""
    dataset = card_dataset(gan.card)
    if data is None:
        if dataset is None:
            from core.errors import LetheError

            raise LetheError(f"the card of {gan.card.name!r} names no training dataset.",
                             "Pass the training data to redaction_context(data=...).")
        data = load_data(dataset, "train")
    judges = judges if judges is not None else dataset_judges(data.name, gan.device)
    the_set = forget if isinstance(forget, RedactionSet) else parse_redaction_spec(forget, data, judges, tau)
    return RedactionContext(data, judges, the_set)


def class_shares_table(before: GANBundle, after: GANBundle, classifier: ClassifierBundle, n: int, seed: int):
    """Share of each class (by `classifier`) among n samples of `before` and `after` from the same latents: the
    picture that proves a label was redacted (its share falls to about zero, the others grow)."""
    import pandas as pd

    from core.metrics.quality import class_shares
    from core.metrics.sampling import iter_gan_samples

    k = len(classifier.class_names)
    shares = {}
    for when, gan in (("before", before), ("after", after)):
        labels = torch.cat([classifier.predict(x) for x, _ in iter_gan_samples(gan, n, seed)])
        shares[when] = class_shares(labels, k).tolist()
    return pd.DataFrame({"class": list(classifier.class_names), **shares})


def _figures(result: RedactionResult, base: GANBundle, ctx: RedactionContext, config: RedactionConfig,
             seed: int = 0) -> dict:
    """History table, film frames, and the redaction scores of X ∩ Omega (Fig. 4's points)."""
    import pandas as pd

    figures: dict[str, Any] = {"history": pd.DataFrame(result.history)}
    if result.film is not None:
        figures["film"] = result.film
    if ctx.judges.labels is not None:  # the verdict's proof picture: class shares before/after
        figures["class_shares"] = class_shares_table(base, result.bundle, ctx.judges.labels, config.eval_samples,
                                                     seed + 1)
    omega = ctx.redaction_set.training_omega(ctx.data, config.algorithm, config.tau)
    if bool(omega.any()):
        members = ctx.data.subset(omega)
        figures["redaction_scores"] = redaction_scores(base, result.bundle, members.x, members.ids, members.labels)
    return figures


def redaction_job(gan: GANBundle, ctx: RedactionContext, config: RedactionConfig, seed: int = 0) -> Job:
    """The runner's job for one redaction run: redact a copy of `gan`, return the model, metrics and figures."""

    def job(progress: ProgressFn, cancel: CancelToken) -> JobResult:
        result = redact(gan, ctx.redaction_set, ctx.data, config, seed, ctx.judge, progress, cancel)
        return JobResult(result.bundle, result.metrics, _figures(result, gan, ctx, config, seed))

    return job


def deletion_job(gan: GANBundle, ctx: RedactionContext, algorithm: str = "data", tau: float = 0.5, seed: int = 0,
                 epochs: int | None = None, eval_samples: int = 10_000) -> Job:
    """The runner's job for the deletion baseline: retrain without X ∩ Omega (as `algorithm` defines it on X),
    and measure invalidity / IS / FID of the pre-trained and the retrained model on the same latents."""

    def job(progress: ProgressFn, cancel: CancelToken) -> JobResult:
        omega = ctx.redaction_set.training_omega(ctx.data, algorithm, tau)
        retain = ctx.data.x[~omega]
        meter = Meter(ctx.redaction_set, ctx.judge, retain if ctx.judge is not None else None, n=eval_samples,
                      seed=seed + 1)
        before = meter(gan, cancel)
        progress(ProgressEvent(0, 1, {"epoch": 0.0, **before}, stage="deletion", message="pre-trained model"))

        def forward(event: ProgressEvent) -> None:  # the recipe's per-epoch loss events, as epochs
            progress(ProgressEvent(event.step, event.total, {"epoch": float(event.step), **event.metrics},
                                   message=f"retraining: {event.message}", stage="deletion"))

        model, seconds = retrain_without(gan, retain, seed, epochs, forward, cancel)
        after = meter(model, cancel)
        epochs_run = int(model.card.training["epochs"])
        progress(ProgressEvent(epochs_run, epochs_run, {"epoch": float(epochs_run), **after}, stage="deletion",
                               message="retrained model"))
        metrics = {"algorithm": "deletion", "redaction_set": ctx.redaction_set.name, "deleted": int(omega.sum()),
                   "real_size": len(retain), "epochs": epochs_run, "seconds": seconds,
                   "invalidity_before": before["invalidity"], "invalidity_before_se": before["invalidity_se"],
                   "invalidity_after": after["invalidity"], "invalidity_after_se": after["invalidity_se"]}
        for name in before:
            for key, short in (("IS[", "is"), ("FID[", "fid")):
                if name.startswith(key):
                    metrics.update({f"{short}_before": before[name], f"{short}_after": after[name],
                                    f"{short}_metric": name})
        figures = {} if ctx.judges.labels is None else {
            "class_shares": class_shares_table(gan, model, ctx.judges.labels, eval_samples, seed + 1)}
        return JobResult(model, metrics, figures)

    return job


# --- command line: python -m core redact MODEL --forget SPEC --algorithm data|validity|classifier ---------------

_FLAGS = {"lam": "--lambda", "alpha_pos": "--alpha-pos", "alpha_neg": "--alpha-neg", "queries_per_round": "--T",
          "tau": "--tau", "k_d": "--k-d", "k_g": "--k-g", "batch_size": "--batch-size", "lr": "--lr",
          "eval_samples": "--eval-samples", "first_epoch_checks": "--first-epoch-checks", "film_size": "--film-size"}


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = RedactionConfig()
    parser.add_argument("--forget", required=True,
                        help="what to redact: label=0, ids=1,5-9, identity=17, attr='glasses & ~smile', saved=NAME, "
                             "boundary[=MARGIN], ambiguity; join several with ' + '")
    parser.add_argument("--algorithm", choices=ALGORITHMS, default=defaults.algorithm,
                        help="data-based (Alg. 1), validity-based (Alg. 2) or classifier-based (Alg. 3)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"redaction epochs (default {defaults.epochs}); with --baseline deletion, retraining "
                             "epochs (default: the zoo recipe's)")
    parser.add_argument("--fixed-discriminator", action="store_true",
                        help="update only G (App. H: on-manifold adversarial samples)")
    parser.add_argument("--baseline", choices=("deletion",), default=None,
                        help="run the data-deletion baseline instead: retrain from scratch without X ∩ Omega")
    for f in fields(RedactionConfig):
        if f.name in _FLAGS:
            parser.add_argument(_FLAGS[f.name], dest=f.name, type=type(getattr(defaults, f.name)),
                                default=getattr(defaults, f.name), help=f"default {getattr(defaults, f.name)}")


def _prepare(args: argparse.Namespace, bundle: GANBundle, device: torch.device) -> MethodCall:
    config = RedactionConfig(**{f.name: getattr(args, f.name) for f in fields(RedactionConfig)
                                if getattr(args, f.name, None) is not None})
    config.validate()
    ctx = redaction_context(bundle, args.forget, config.tau)
    params = {"forget": args.forget, "redaction_set": ctx.redaction_set.name, **asdict(config)}
    if args.baseline == "deletion":
        params.update(baseline="deletion", epochs=args.epochs)
        return MethodCall(params, deletion_job(bundle, ctx, config.algorithm, config.tau, args.seed, args.epochs,
                                               config.eval_samples))
    return MethodCall(params, redaction_job(bundle, ctx, config, args.seed))


CLI_VERB = MethodVerb("redact", "redact a set of samples from a pretrained GAN (Kong & Chaudhuri 2023)",
                      _add_arguments, _prepare, families=("gan",))


def redaction_command(model: str, forget: str, config: RedactionConfig, seed: int = 0,
                      deletion_epochs: int | None = None, baseline: bool = False) -> str:
    """`python -m core redact ...` that records the same config as the app's run (see `core.cli.command`)."""
    from core.cli.command import config_flags, method_command

    words = ["--forget", forget, "--algorithm", config.algorithm]
    if baseline:
        words += ["--baseline", "deletion"] + (["--epochs", str(deletion_epochs)] if deletion_epochs else [])
    elif config.epochs != RedactionConfig().epochs:
        words += ["--epochs", str(config.epochs)]
    words += config_flags(config, RedactionConfig(), _FLAGS, {"fixed_discriminator": "--fixed-discriminator"},
                          skip=("algorithm", "epochs"))
    return method_command("redact", model, words, seed)
