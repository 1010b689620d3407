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
from core.data.base import ImageData
from core.distributed import team
from core.errors import LetheError
from core.methods.inputs import data_requirement, known_judges
from core.methods.inputs import training_data as shared_training_data
from core.methods.redaction.algorithm import (RedactionConfig, RedactionResult, generator_reported, invalidity_keys,
                                              redact)
from core.methods.redaction.deletion import (CORRELATED_DISTANCE, DELETION_VARIANTS, check_variant, deleted_rows,
                                             retrain_without)
from core.methods.redaction.measure import Meter, valid_training
from core.methods.redaction.scores import redaction_scores
from core.methods.redaction.sets import ALGORITHMS, Judges, RedactionSet, parse_redaction_spec
from core.models.bundles import Bundle, ClassifierBundle, GANBundle
from core.progress import CancelToken, ProgressEvent, ProgressFn
from core.runs.runner import Job, JobResult
from core.zoo.lookup import card_dataset

__all__ = ["ALGORITHMS", "RedactionConfig", "RedactionContext", "RedactionResult", "RedactionSet", "deletion_job",
           "deletion_study", "judge_kinds", "preflight", "redact", "redaction_command", "redaction_context",
           "redaction_job", "redaction_study", "requirements", "retrain_without", "training_data"]


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


def dataset_judges(dataset: str | None, device: torch.device | str = "cpu", judge: str | None = None,
                   data_shape: tuple[int, ...] | None = None) -> Judges:
    """The judges of a redaction on `dataset`: the user's `judge` spec (a classifier, used for its kind: labels,
    attributes or embedding) and the shipped zoo classifiers for `dataset` in the other roles (any may be None)."""
    found = known_judges(dataset, device, judge, data_shape)
    return Judges(found.get("labels"), found.get("attributes"), found.get("embedding"))  # type: ignore[arg-type]


def training_data(gan: GANBundle, data: str | None = None) -> ImageData:
    """The GAN's training set X: the user's data spec `data` (fitted to the GAN's shape), else its card's."""
    return shared_training_data(gan, data, "redaction")


def requirements(bundle: Bundle, data: str | None = None) -> list[str]:
    """What redaction needs of `bundle` that it lacks (empty when it can run): an unconditional GAN with its
    discriminator, and training data (its card's dataset, or `data`)."""
    if not isinstance(bundle, GANBundle):
        return [f"it is a {bundle.family} model; redaction fine-tunes a GAN"]
    missing = []
    if bundle.conditional:
        missing.append("it is a conditional GAN; the paper's redaction is defined for unconditional GANs")
    if bundle.discriminator is None:
        missing.append("it has no discriminator D (redaction fine-tunes G and D together): load a model saved "
                       "with its discriminator")
    return missing + data_requirement(bundle, data)


def judge_kinds(forget: str) -> list[str]:
    """The judge kinds a `--forget` spec needs, read from the spec alone (nothing is loaded): labels for
    `label=` and `ambiguity`, attributes for `attr=`; ids, identities, saved sets and boundaries need none."""
    kinds = []
    for part in (p.strip() for p in forget.split(" + ")):
        key = part.partition("=")[0].strip().lower()
        if key in ("label", "labels", "ambiguity") and "labels" not in kinds:
            kinds.append("labels")
        elif key in ("attr", "attribute") and "attributes" not in kinds:
            kinds.append("attributes")
    return kinds


def preflight(gan: Bundle, forget: str, data: str | None, judges: Judges | None = None) -> None:
    """Fail in seconds, before any data is loaded or sample drawn, naming the first missing piece: the GAN's
    own requirements, then (once `judges` are known) the judge the `--forget` spec needs."""
    missing = requirements(gan, data)
    if missing:
        raise LetheError(f"cannot redact {gan.card.name!r}: {'; '.join(missing)}.",
                         "Run `python -m core show MODEL` to see what each verb needs.")
    for kind in judge_kinds(forget) if judges is not None else ():
        if getattr(judges, kind) is None:
            what = {"labels": "a label classifier", "attributes": "an attribute classifier"}[kind]
            raise LetheError(f"--forget {forget!r} needs {what} as judge and none is known for this data.",
                             f"Pass --judge SPEC ({what}: zoo name, saved folder or package.module:factory), "
                             "or forget by ids=... / saved=NAME, which need no judge.")


def redaction_context(gan: GANBundle, forget: str | RedactionSet, tau: float = 0.5,
                      data: ImageData | None = None, judges: Judges | None = None) -> RedactionContext:
    """Load the GAN's training split and judges and build the redaction set from a `--forget` spec (or take a
    ready `RedactionSet`, e.g. a predicate built through the API)."""
    if data is None:
        data = training_data(gan)
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
        if not team().is_main:  # torchrun: rank 0 alone measures and saves the run
            return JobResult()
        return JobResult(result.bundle, result.metrics, _figures(result, gan, ctx, config, seed))

    return job


def deletion_job(gan: GANBundle, ctx: RedactionContext, algorithm: str = "data", tau: float = 0.5, seed: int = 0,
                 epochs: int | None = None, eval_samples: int = 10_000, variant: str = "exact",
                 max_distance: float = CORRELATED_DISTANCE) -> Job:
    """The runner's job for the deletion baseline: retrain without X ∩ Omega (as `algorithm` defines it on X;
    with `variant="correlated"` also without the samples correlated with it, Table III), and measure invalidity /
    IS / FID of the pre-trained and the retrained model on the same latents, against the same reference (the
    valid training samples) as the redaction runs."""
    check_variant(variant, ctx.data.is_image, max_distance)

    def job(progress: ProgressFn, cancel: CancelToken) -> JobResult:
        members = ctx.redaction_set.training_omega(ctx.data, algorithm, tau)
        omega = deleted_rows(ctx.data.x, members, variant, max_distance)
        retain = ctx.data.x[~omega]
        reference = valid_training(ctx.redaction_set, ctx.data) if ctx.judge is not None else None
        meter = Meter(ctx.redaction_set, ctx.judge, reference, n=eval_samples, seed=seed + 1)
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
        metrics = {"algorithm": "deletion", "redaction_set": ctx.redaction_set.name, "deletion_variant": variant,
                   "deleted": int(omega.sum()), "deleted_correlated": int((omega & ~members).sum()),
                   "real_size": len(retain), "epochs": epochs_run, "seconds": seconds,
                   **invalidity_keys(before, after),
                   **generator_reported(float(model.card.training.get("generator_ema") or 0.0))}
        if variant == "correlated":
            metrics["correlated_distance"] = max_distance
        if reference is not None:
            metrics.update(fid_reference="valid training samples (v(x) = 1)", fid_reference_size=len(reference))
        for name in before:
            for key, short in (("IS[", "is"), ("FID[", "fid")):
                if name.startswith(key):
                    metrics.update({f"{short}_before": before[name], f"{short}_after": after[name],
                                    f"{short}_metric": name})
        figures = {} if ctx.judges.labels is None else {
            "class_shares": class_shares_table(gan, model, ctx.judges.labels, eval_samples, seed + 1)}
        return JobResult(model, metrics, figures)

    return job


def redaction_study(model: str, forget: str, config: RedactionConfig, seed: int, data: ImageData | None = None,
                    device: str = "cpu") -> RedactionResult:
    """One `redact` run as an independent job for `core.runs.executor.run_jobs` (a notebook's table over
    algorithms, settings and seeds): a model spec, a `--forget` spec, the config and the training images in (all
    pickle), the redacted copy and its measurements out, alike here, in a spawn worker or on Ray. The redaction
    set's tau is the config's."""
    from core.models.spec import load_model

    gan = load_model(model, device)
    ctx = redaction_context(gan, forget, config.tau, data=data)
    return redact(gan, ctx.redaction_set, ctx.data, config, seed, ctx.judge)


def deletion_study(model: str, forget: str, algorithm: str, tau: float, seed: int, epochs: int | None,
                   eval_samples: int, data: ImageData | None = None, device: str = "cpu") -> dict[str, Any]:
    """`deletion_job`'s metrics as an independent job for `core.runs.executor.run_jobs` (a notebook's deletion
    baselines over settings and seeds): a model spec, a `--forget` spec and the training images in (all pickle),
    so it runs alike here, in a spawn worker or on Ray."""
    from core.models.spec import load_model
    from core.progress import NO_PROGRESS

    gan = load_model(model, device)
    ctx = redaction_context(gan, forget, tau, data=data)  # type: ignore[arg-type]
    return deletion_job(gan, ctx, algorithm, tau, seed, epochs, eval_samples)(NO_PROGRESS, CancelToken()).metrics


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
    parser.add_argument("--deletion-variant", choices=DELETION_VARIANTS, default="exact",
                        help="with --baseline deletion: delete X ∩ Omega (exact) or also the samples correlated "
                             "with it (correlated, the paper's Table III)")
    parser.add_argument("--correlated-distance", type=float, default=CORRELATED_DISTANCE,
                        help="correlated deletion: delete samples within this cosine distance (1 - Pearson "
                             f"correlation) of a member of X ∩ Omega (default {CORRELATED_DISTANCE})")
    parser.add_argument("--ema", type=float, default=None,
                        help="decay of the moving average of G that is measured and kept (default: as the "
                             "pre-trained G, shortened to the run; 0 = the live G)")
    for f in fields(RedactionConfig):
        if f.name in _FLAGS:
            parser.add_argument(_FLAGS[f.name], dest=f.name, type=type(getattr(defaults, f.name)),
                                default=getattr(defaults, f.name), help=f"default {getattr(defaults, f.name)}")


def _check_retrainable(gan: GANBundle) -> None:
    """The deletion baseline retrains with the zoo recipe of the GAN's family: fail before any data is loaded
    when the GAN has none (a user's own architecture)."""
    from core.methods.redaction.deletion import zoo_recipe

    try:
        zoo_recipe(gan)
    except LetheError as exc:
        raise LetheError(f"--baseline deletion retrains {gan.card.name!r} from scratch with its zoo recipe, and it "
                         f"has none ({exc.message.rstrip('.')}).",
                         "Run the deletion baseline on a zoo GAN or a model edited from one; redaction itself "
                         "works on your GAN.") from exc


def _prepare(args: argparse.Namespace, bundle: GANBundle, device: torch.device) -> MethodCall:
    config = RedactionConfig(**{f.name: getattr(args, f.name) for f in fields(RedactionConfig)
                                if getattr(args, f.name, None) is not None})
    config.validate()
    preflight(bundle, args.forget, args.data)
    if args.baseline == "deletion":
        _check_retrainable(bundle)
        if team().is_distributed:
            raise LetheError("the deletion baseline retrains with the zoo recipe, which does not split its work over "
                             "torchrun's processes.", "Run --baseline deletion as one process.")
    judges = dataset_judges(args.data or card_dataset(bundle.card), device, args.judge,
                            bundle.data_shape)
    preflight(bundle, args.forget, args.data, judges)
    ctx = redaction_context(bundle, args.forget, config.tau, data=training_data(bundle, args.data), judges=judges)
    params = {"forget": args.forget, "redaction_set": ctx.redaction_set.name, **asdict(config)}
    params.update({k: v for k, v in (("data", args.data), ("judge", args.judge)) if v})
    if args.baseline == "deletion":
        params.update(baseline="deletion", epochs=args.epochs, deletion_variant=args.deletion_variant,
                      correlated_distance=args.correlated_distance)
        return MethodCall(params, deletion_job(bundle, ctx, config.algorithm, config.tau, args.seed, args.epochs,
                                               config.eval_samples, args.deletion_variant, args.correlated_distance))
    return MethodCall(params, redaction_job(bundle, ctx, config, args.seed))


CLI_VERB = MethodVerb("redact", "redact a set of samples from a pretrained GAN (Kong & Chaudhuri 2023)",
                      _add_arguments, _prepare, families=("gan",), requirements=requirements, takes_data=True)



def redaction_command(model: str, forget: str, config: RedactionConfig, seed: int = 0,
                      deletion_epochs: int | None = None, baseline: bool = False, data: str | None = None,
                      judge: str | None = None, deletion_variant: str = "exact") -> str:
    """`python -m core redact ...` that records the same config as the app's run (see `core.cli.command`);
    `data` and `judge` are the user's own training images and classifier (`--data`, `--judge`)."""
    from core.cli.command import config_flags, method_command

    words = ["--forget", forget, "--algorithm", config.algorithm]
    words += [w for flag, value in (("--data", data), ("--judge", judge)) if value for w in (flag, value)]
    if baseline:
        words += ["--baseline", "deletion"] + (["--epochs", str(deletion_epochs)] if deletion_epochs else [])
        if deletion_variant != "exact":
            words += ["--deletion-variant", deletion_variant]
    elif config.epochs != RedactionConfig().epochs:
        words += ["--epochs", str(config.epochs)]
    words += config_flags(config, RedactionConfig(), {**_FLAGS, "ema": "--ema", "precision": "--precision"},
                          {"fixed_discriminator": "--fixed-discriminator"}, skip=("algorithm", "epochs"))
    return method_command("redact", model, words, seed)
