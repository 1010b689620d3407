"""Influence estimation for GANs (Terashita et al., ICLR 2021): which training instances help or hurt a GAN's
quality metric, checked against counterfactual retraining, and data cleansing.

    from core.methods.influence import InfluenceConfig, TraceConfig, prepare, run_influence
    gan = load_model("influence-fcgan")
    config = InfluenceConfig(metric="all", trace=TraceConfig(epochs=1), targets=40, verify=True, cleanse=500)
    result = run_influence(prepare(gan, config, seed=0), config, seed=0)   # gan itself is never modified
    result.influence.values            # ~ V(without j) - V(with j) for every training instance j (eq. 9)
    result.verification.kendall_tau    # against counterfactual ASGD (Sec. 5.1)
    result.cleansing.after             # test metric after removing n_h instances per selector (Sec. 5.2)

- `game`: the GAN losses as pure functions of the parameters; the joint gradient g (eq. 3) and one backward step
  of Algorithm 2 (u^T B_t J_t and the per-instance terms of eq. 8 from one double-backward pass).
- `trace`: Algorithm 1, ASGD with an on-disk log A[t] (S_t, both learning rates, Z_t, checkpoints of theta[t]),
  and counterfactual replay.
- `metrics`: V as differentiable functions (ALL, IS, FID, discriminator loss) and the seed-fixed Z', D'_x, test sets.
- `estimate`: Algorithm 2, the linear influence of every instance (eq. 8, 10); `EstimateJob` traces once and
  estimates the influence on several metrics, as one job for the executor.
- `verify`: ground truth by counterfactual ASGD, Kendall tau and Jaccard of the 20 critical instances;
  `verify_metrics` scores each replay on several metrics (IS and FID of Fig. 1 on MNIST).
- jobs send their bundles to worker processes as (card, state) (`core.models.portable`), which spectral-norm
  GANs need.
- `cleanse`: removal by influence, discriminator-loss influence, isolation forest or random, and the test metric.
- `algorithm`: the whole run, its config and its job for `core.runs`; its replays and retrains are independent
  jobs for `core.runs.executor` (in-process, local worker processes, or Ray at `$RAY_ADDRESS`).

Command line: `python -m core influence MODEL --metric all|is|fid|dloss --trace-epochs K [--targets N] [--verify]
[--cleanse N_H] [--baseline ...] [--workers W] [--executor local|ray] --json`; `--of-run RUN_ID --verify` or
`--cleanse N_H` checks a finished estimate later from the trace it kept in its run folder.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from core.cli.methods import MethodCall, MethodVerb
from core.errors import LetheError
from core.methods.inputs import data_requirement, input_flags
from core.methods.influence.algorithm import (TRACE_FOLDER, InfluenceConfig, InfluenceContext, InfluenceResult,
                                              TracedRun, check, config_from_params, display_name, follow_up_job,
                                              follow_up_params, influence_job, job_params, load_traced, prepare,
                                              run_influence, training_data)
from core.methods.influence.cleanse import BASELINES, SELECTORS, Cleansing, cleanse, removal_sets
from core.methods.influence.estimate import SIGN_RULES, EstimateJob, Influence, estimate, query_vector, sign_rule
from core.runs.executor import EXECUTORS, run_jobs
from core.methods.influence.game import Game, State, check_traceable, export
from core.methods.influence.metrics import METRICS, MetricSets, make_metric
from core.methods.influence.trace import UPDATES, TraceConfig, TraceLog, replay, run_asgd, schedule, trace
from core.methods.influence.verify import (ReplayJob, ScoredReplay, Verification, pick_targets, random_agreement,
                                          verify, verify_metrics)
from core.models.bundles import Bundle


def _add(parser: argparse.ArgumentParser) -> None:
    t = TraceConfig()
    parser.epilog = "Sign of the printed influence of instance j: " + " ".join(SIGN_RULES.values())
    parser.add_argument("--metric", choices=METRICS, default="all",
                        help="V: all (KDE log-likelihood, 2-D data), is / fid (label classifier), dloss. "
                             "Influence is V with j - V without j (see below for which sign helps or hurts)")
    parser.add_argument("--trace-epochs", type=int, default=t.epochs, help="k: epochs traced back (paper: 1-50)")
    parser.add_argument("--targets", type=int, default=20, help="instances verified by counterfactual replay")
    parser.add_argument("--verify", action="store_true", help="replay the run without each target (ground truth)")
    parser.add_argument("--cleanse", type=int, default=0, metavar="N_H",
                        help="remove the N_H most harmful instances and re-run the traced epochs (0: skip)")
    parser.add_argument("--baseline", action="append", choices=BASELINES, default=None,
                        help="cleansing baselines to compare (repeatable; default: all)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes for the counterfactual jobs")
    parser.add_argument("--executor", choices=EXECUTORS, default="local")
    parser.add_argument("--lr", type=float, default=t.lr_d, help="SGD learning rate of both players")
    parser.add_argument("--batch-size", type=int, default=t.batch_size)
    parser.add_argument("--updates", choices=UPDATES, default=t.updates)
    parser.add_argument("--weight-decay", type=float, default=None,
                        help="L2 rate gamma (default: the card's training weight decay, else 0)")
    parser.add_argument("--checkpoint-every", type=int, default=t.checkpoint_every,
                        help="store theta[t] every C steps and replay the others (1: every step on disk)")
    parser.add_argument("--latents", type=int, default=2000, help="|Z'| and |Z_test|")
    parser.add_argument("--heldout", default=None, metavar="DIR|FILE.npz",
                        help="with --data: images of the same kind the GAN was NOT trained on (same layout); the "
                             "real data D'_x and D_test that V is measured against")
    parser.add_argument("--of-run", default=None, metavar="RUN_ID",
                        help="verify (--verify --targets N) and/or cleanse (--cleanse N_H) the finished influence run "
                             "RUN_ID from the trace it kept, without estimating again")


def config_from(args: argparse.Namespace, bundle: Bundle) -> InfluenceConfig:
    """The run's config from the command line; weight decay defaults to the one the model was trained with."""
    decay = args.weight_decay if args.weight_decay is not None else float(bundle.card.training.get("weight_decay", 0.0))
    tc = replace(TraceConfig(), epochs=args.trace_epochs, lr_g=args.lr, lr_d=args.lr, batch_size=args.batch_size,
                 updates=args.updates, weight_decay=decay, checkpoint_every=args.checkpoint_every)
    return InfluenceConfig(metric=args.metric, trace=tc, latents=args.latents, targets=args.targets,
                           verify=args.verify, cleanse=args.cleanse,
                           baselines=tuple(args.baseline) if args.baseline else BASELINES, workers=args.workers,
                           executor=args.executor)


def _prepare(args: argparse.Namespace, bundle: Bundle, device: torch.device) -> MethodCall:
    if args.of_run:
        from core.cli.common import store_of

        _no_new_inputs(args)
        run = load_traced(store_of(args).get(args.of_run), device).run  # fails here if it cannot be checked
        check = (args.targets if args.verify else 0, args.cleanse, tuple(args.baseline or BASELINES), args.workers,
                 args.executor)
        return MethodCall(params=follow_up_params(run.id, *check),
                          job=follow_up_job(run, *check, device=device))
    config = config_from(args, bundle)
    inputs = {"data": args.data, "judge": args.judge, "heldout": args.heldout}
    prepare(bundle, config, args.seed, **inputs)  # bad input fails before a run is created
    return MethodCall(params=job_params(config, **inputs), job=influence_job(bundle, config, seed=args.seed, **inputs))


def influence_command(model: str, config: InfluenceConfig, seed: int = 0, data: str | None = None,
                      judge: str | None = None, heldout: str | None = None) -> str:
    """`python -m core influence ...` for an estimate with `config` (the app's settings: metric, traced epochs,
    latents and the traced SGD), on the user's `data`, `heldout` images and `judge` when given."""
    from core.cli.command import method_command

    t = config.trace
    words = ["--metric", config.metric, "--trace-epochs", str(t.epochs), "--latents", str(config.latents),
             "--lr", f"{t.lr_g:g}", "--batch-size", str(t.batch_size), "--updates", t.updates,
             "--checkpoint-every", str(t.checkpoint_every), *input_flags(data, judge, heldout)]
    return method_command("influence", model, words, seed)


def _no_new_inputs(args: argparse.Namespace) -> None:
    """A follow-up (--of-run) replays the estimate's own data and judge: refuse ones given anew."""
    if any((args.data, args.judge, args.heldout)):
        raise LetheError("--of-run checks a finished estimate on the data, held-out images and judge it was run "
                         "with; --data, --heldout and --judge cannot change them.",
                         "Drop --data/--heldout/--judge, or start a new estimate with them.")


def requirements(bundle: Bundle) -> list[str]:
    """What influence needs that `bundle` lacks: a discriminator (the traced game trains both players) and the
    GAN's training data (its card's dataset, else --data)."""
    missing = [] if getattr(bundle, "discriminator", None) is not None else [
        "it has no discriminator D (the traced epochs train G and D): load a model saved with its discriminator"]
    return missing + data_requirement(bundle)


CLI_VERB = MethodVerb("influence", "rank a GAN's training instances by their influence on a quality metric",
                      _add, _prepare, families=("gan",), requirements=requirements, takes_data=True)

__all__ = [
    "BASELINES", "CLI_VERB", "Cleansing", "EXECUTORS", "EstimateJob", "Game", "Influence", "InfluenceConfig",
    "InfluenceContext",
    "InfluenceResult", "METRICS", "MetricSets", "ReplayJob", "SELECTORS", "SIGN_RULES", "State", "TRACE_FOLDER",
    "TraceConfig", "TraceLog", "TracedRun", "UPDATES", "Verification", "check", "check_traceable", "cleanse",
    "config_from", "config_from_params", "display_name", "estimate", "export", "follow_up_job", "follow_up_params",
    "influence_command", "influence_job", "job_params", "load_traced", "make_metric", "pick_targets", "prepare", "query_vector", "random_agreement",
    "removal_sets", "replay", "run_asgd", "run_influence", "run_jobs", "schedule", "ScoredReplay", "sign_rule",
    "trace", "training_data", "verify", "verify_metrics",
]
