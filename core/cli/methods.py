"""One generic way to run a method from the command line: `python -m core <verb> MODEL [options]`.

A method module in `core.methods` (e.g. `core.methods.redaction`) exposes a `CLI_VERB = MethodVerb(...)`; the
command line finds it there, so adding a method needs no change here. The verb gets MODEL (a model spec),
`--seed`, `--device`, `--json` and `--runs-dir`/`--run-dir` for free and adds its own options:

    def _add(parser):
        parser.add_argument("--forget", required=True)
        parser.add_argument("--epochs", type=int, default=8)

    def _prepare(args, bundle, device):
        config = RedactionConfig(epochs=args.epochs)
        selection = parse_forget(args.forget)
        job = lambda progress, cancel: redact(bundle, selection, config, args.seed, device, progress, cancel)
        return MethodCall(params={"forget": args.forget, **asdict(config)}, job=job)

    CLI_VERB = MethodVerb("redact", "redact data from a pretrained GAN", _add, _prepare, families=("gan",))

The job runs as a run (`core.runs.run_now`): progress lines on stderr, every event in the run store, and with
`--json` the last stdout line is the final metrics plus `model` (a model spec for the edited model, the run's
`model/` folder), `run` (the run id), `run_dir`, `status` and `seconds` (the method's own, else wall time).
The app starts the same job with `core.runs.shared_runner().start(...)`.

Every verb also takes `--precision fp32|bf16|fp16` (`core.precision` refuses it where the method's maths needs
fp32) and runs unchanged under `torchrun --nproc_per_node N -m core VERB ...` (`core.distributed`): rank 0 runs the
job as the run and prints, the other ranks compute their shards of the same job and record nothing.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

import torch

from core.cli.common import Output, StderrProgress, add_precision_option, key_values, run_failure, store_of
from core.cli.validate import writable_folder
from core.device import resolve_device
from core.distributed import Team, check_data_parallel, peer_failures, session
from core.errors import Cancelled, LetheError
from core.models.bundles import Bundle
from core.models.spec import load_model
from core.precision import check_precision
from core.progress import NO_PROGRESS, CancelToken
from core.runs import Job, run_now


@dataclass(frozen=True)
class MethodCall:
    """What a verb prepares from its arguments: the params recorded in config.json and the job to run."""

    params: dict[str, Any]
    job: Job


@dataclass(frozen=True)
class MethodVerb:
    """A method's command-line verb. `families` lists the model families it accepts (empty: any);
    `requirements(bundle)` lists what the verb needs that the model lacks (`python -m core show` prints it);
    a verb that `takes_data` gets `--data DIR|FILE.npz` and `--judge SPEC` (the user's images and classifier)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    prepare: Callable[[argparse.Namespace, Bundle, torch.device], MethodCall]
    families: tuple[str, ...] = ()
    requirements: Callable[[Bundle], list[str]] | None = None
    takes_data: bool = False

    def missing(self, bundle: Bundle) -> list[str]:
        """Why this verb cannot run on `bundle` (empty when it can)."""
        if self.families and bundle.family not in self.families:
            return [f"it works on {' or '.join(self.families)} models and this is a {bundle.family}"]
        return self.requirements(bundle) if self.requirements is not None else []


def discover() -> list[MethodVerb]:
    """Every `CLI_VERB` defined by a module or package directly under `core.methods`, in name order."""
    import core.methods

    verbs = []
    for info in sorted(pkgutil.iter_modules(core.methods.__path__), key=lambda m: m.name):
        verb = getattr(importlib.import_module(f"core.methods.{info.name}"), "CLI_VERB", None)
        if isinstance(verb, MethodVerb):
            verbs.append(verb)
    return verbs


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, verb: MethodVerb) -> None:
    p = sub.add_parser(verb.name, parents=[common], help=verb.help, description=verb.help)
    p.add_argument("model", help="zoo name, saved model folder, or package.module:factory")
    p.add_argument("--seed", type=int, default=0)
    if verb.takes_data:
        p.add_argument("--data", default=None, metavar="DIR|FILE.npz",
                       help="your training images: a folder (flat, or one sub-folder per class), a .zip of one, or "
                            "an .npz with images and optional labels/attributes/identities (default: the dataset "
                            "the model's card names)")
        p.add_argument("--judge", default=None, metavar="SPEC",
                       help="your classifier for invalidity, IS/FID and attributes: zoo name, saved folder or "
                            "package.module:factory (default: the zoo's classifiers for the model's dataset; none with --data)")
    add_precision_option(p)
    verb.add_arguments(p)
    p.set_defaults(handler=lambda args: run_method(verb, args))


def run_method(verb: MethodVerb, args: argparse.Namespace) -> Output:
    """Load MODEL, let the verb prepare its job, run it as a run, report the run's final metrics (under torchrun:
    in every process, within the job's process group)."""
    device = resolve_device(args.device)
    check_precision(verb.name, args.precision)
    check_data_parallel(verb.name, getattr(args, "action", None))
    with session(device) as team:
        return _run_method(verb, args, device, team)


def _run_method(verb: MethodVerb, args: argparse.Namespace, device: torch.device, team: Team) -> Output:
    store = store_of(args)
    writable_folder(store.root, "the runs folder (--runs-dir or $LETHE_RUNS)")
    bundle = load_model(args.model, device)
    if verb.families and bundle.family not in verb.families:
        raise LetheError(f"{verb.name} works on {' or '.join(verb.families)} models; {args.model!r} is a "
                         f"{bundle.family}.", "Run `python -m core zoo list` to pick a model of the right family.")
    torch.manual_seed(args.seed)
    call = verb.prepare(args, bundle, device)
    job = peer_failures(call.job)
    if not team.is_main:
        return _follow(job)
    params = {**call.params, "world_size": team.world} if team.is_distributed else call.params
    run = run_now(job, method=verb.name, model=args.model, params=params, seed=args.seed,
                  device=str(device), store=store, listener=StderrProgress(verb.name))
    metrics = run.metrics
    result = {"seconds": run.duration, **metrics, "model": run.model_spec, "run": run.id, "run_dir": str(run.path),
              "status": run.status}
    failure = run_failure(run)
    if failure is not None:
        result["run_error"] = run.error
        return Output(result, error=failure)
    text = "\n".join([f"{verb.name} {args.model}: {run.status} in {run.duration:.1f} s (run {run.id})",
                      key_values(metrics), f"edited model: {run.model_spec}"])
    return Output(result, text)


def _follow(job: Job) -> Output:
    """A torchrun rank other than 0: compute this rank's shards of the job; rank 0 records the run and prints."""
    try:
        job(NO_PROGRESS, CancelToken())
    except Cancelled as exc:
        return Output({}, error=LetheError(str(exc)), quiet=True)
    except LetheError as exc:
        return Output({}, error=exc, quiet=True)
    return Output({}, quiet=True)
