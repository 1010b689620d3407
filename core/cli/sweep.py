"""`python -m core sweep FILE.yaml|FILE.json [--executor local|ray] [--ray-address ADDR] [--workers N] [--dry-run]`:
a grid of method runs from a small file, run through the executor (`core.runs.executor`).

    name: delta study          # optional: how the Runs page names the sweep
    method: tame               # a method verb, or a list of verbs
    model: toy-flow            # a model spec, or a list of specs
    forget: label=0            # the forget request (the verb's --forget), or a list; leave out if the verb has none
    params:                    # the verb's own flags, without "--"; a list is an axis of the grid
      delta: [1.0, 2.0]
      max-iterations: 20
      verify: true             # a switch: true gives the flag, false leaves it out
    seeds: [0, 1]              # one seed or a list (default 0)

Every combination (method x model x forget x each listed param x seed) is one job. A job runs the method's verb
exactly as `python -m core VERB MODEL --forget ... --flag=value --seed S` would (the verb's own parser and
`run_method`, no per-method code here) and writes its own run, tagged in its config's params with the sweep id
(`sweep`) and the values it was given on the grid's axes (`sweep_point`). The sweep itself is a run too (method
`sweep`): its events are the jobs as they finish, its id is the sweep id, and cancelling it (Ctrl-C, `runs cancel
ID`, the Runs page) stops the jobs that have not finished; `core.runs.sweeps` reads a sweep back.

The whole file is checked before any job starts: unknown keys, an empty axis, more than MAX_JOBS jobs, an unknown
verb, model or flag, a value the verb's parser refuses. YAML is read with `yaml.safe_load` only, and every value
reaches the verb as one `--flag=value` word, so a value can never become another flag.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml  # PyYAML (requirements.txt); only yaml.safe_load is used

from core.cli.common import Output, StderrProgress, store_of
from core.cli.methods import discover
from core.cli.validate import writable_folder
from core.errors import Cancelled, LetheError
from core.models.spec import FACTORY_SPEC, saved_model_path
from core.models.trust import trusting
from core.progress import CancelToken, ProgressFn
from core.runs import JobResult, run_now
from core.runs.executor import EXECUTORS, check_executor, run_jobs
from core.runs.runner import current_run_folder
from core.runs.sweeps import SWEEP_METHOD, sweep_table
from core.zoo.registry import ZOO

MAX_JOBS = 256
MAX_FILE_BYTES = 256 * 1024
KEYS = ("name", "method", "model", "forget", "params", "seeds")
RESERVED = {"json": "the sweep prints its own result", "runs-dir": "pass --runs-dir to the sweep itself",
            "run-dir": "pass --runs-dir to the sweep itself", "trust-factory": "pass --trust-factory to the sweep",
            "device": "pass --device to the sweep itself", "seed": "use the top-level `seeds` list",
            "forget": "use the top-level `forget` key", "help": "not a setting"}
Scalar = str | int | float | bool


@dataclass(frozen=True)
class Grid:
    """A sweep file, checked and normalised: every axis a non-empty tuple."""

    name: str
    methods: tuple[str, ...]
    models: tuple[str, ...]
    forgets: tuple[str | None, ...]
    params: dict[str, tuple[Scalar, ...]]
    seeds: tuple[int, ...]

    @property
    def size(self) -> int:
        n = len(self.methods) * len(self.models) * len(self.forgets) * len(self.seeds)
        for values in self.params.values():
            n *= len(values)
        return n

    def axes(self) -> list[str]:
        """The names of the axes with more than one value (what tells a sweep's runs apart)."""
        every = {"method": self.methods, "model": self.models, "forget": self.forgets, **self.params,
                 "seed": self.seeds}
        return [k for k, v in every.items() if len(v) > 1]


@dataclass(frozen=True)
class SweepJob:
    """One point of the grid, picklable for any executor: the verb's command-line words and the sweep it is in.
    Calling it runs the verb here (its progress lines silenced; every event goes to its run) and returns what
    happened: {index, run, status, error, hint}."""

    index: int
    argv: tuple[str, ...]
    point: tuple[tuple[str, Scalar | None], ...]
    sweep: str = ""
    cancel_flag: str = ""

    def __call__(self) -> dict[str, Any]:
        outcome: dict[str, Any] = {"index": self.index, "run": None, "status": "failed", "error": None, "hint": None}
        if self.cancel_flag and Path(self.cancel_flag).exists():
            return {**outcome, "status": "cancelled"}
        parser = _parser_for(self.argv[0], self._tag)
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            try:
                args = parser.parse_args(list(self.argv))
                with trusting(args.trust_factory or ()):
                    output = args.handler(args)
            except LetheError as error:  # before its run existed (the model or the data could not be read)
                return {**outcome, "error": error.message, "hint": error.hint}
        result = output.result
        error = output.error
        return {**outcome, "run": result.get("run"), "status": result.get("status", "failed"),
                "error": error.message if error else None, "hint": error.hint if error else None}

    def _tag(self, call):
        """The verb's prepared call with the sweep's tags in its params and the sweep's cancel flag honoured."""
        params = {**call.params, "sweep": self.sweep, "sweep_index": self.index, "sweep_point": dict(self.point)}
        flag, inner = self.cancel_flag, call.job

        def job(progress: ProgressFn, cancel: CancelToken) -> Any:
            def watched(event):
                if flag and Path(flag).exists():
                    cancel.set()
                return progress(event)

            if flag and Path(flag).exists():
                raise Cancelled("the sweep was cancelled")
            return inner(watched, cancel)

        return replace(call, params=params, job=job)


def _parser_for(verb_name: str, tag=None) -> argparse.ArgumentParser:
    """The command line's parser with only the method verbs, their `prepare` wrapped by `tag` (if given), and
    argparse's own exits turned into LetheErrors (a sweep reports a bad flag instead of exiting)."""
    from core.cli import build_parser  # the package imports this module

    verbs = {v.name: v for v in discover()}
    if verb_name not in verbs:
        raise LetheError(f"unknown method verb {verb_name!r}.", f"Use one of {', '.join(sorted(verbs))}.")
    verb = original = verbs[verb_name]
    if tag is not None:
        verb = replace(original, prepare=lambda args, bundle, device: tag(original.prepare(args, bundle, device)))
    parser = build_parser(method_verbs=[verb])
    parser.error = _raise_usage(verb_name)  # unrecognized arguments are reported by the top-level parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            action.choices[verb_name].error = _raise_usage(verb_name)
    return parser


def _raise_usage(verb: str):
    def error(message: str):
        raise LetheError(f"{verb}: {message}.", f"Run `python -m core {verb} --help` for its flags.")

    return error


# ---------------------------------------------------------------------------------------------- the file


def read_file(path: str | Path) -> dict[str, Any]:
    """The sweep file as a mapping: JSON for .json, else YAML through `yaml.safe_load` (no tags that build
    objects), at most MAX_FILE_BYTES."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise LetheError(f"no sweep file at {path}.", "Give the path of a .yaml or .json sweep file.")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise LetheError(f"the sweep file {path} is larger than {MAX_FILE_BYTES // 1024} KB.",
                         "A sweep file lists a few axes; split a larger study into several files.")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        doc = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise LetheError(f"cannot read the sweep file {path}: {exc}", "Check its JSON syntax.") from exc
    except (yaml.YAMLError, RecursionError) as exc:  # bad syntax, a tag that would build an object, deep nesting
        raise LetheError(f"cannot read the sweep file {path}: {str(exc).splitlines()[0]}",
                         "Check its YAML syntax; only plain mappings, lists, strings and numbers are read.") from exc
    if not isinstance(doc, dict):
        raise LetheError(f"the sweep file {path} holds a {type(doc).__name__}, not a mapping of keys.",
                         f"Write a mapping with the keys {', '.join(KEYS)}.")
    return doc


def _axis(doc: dict[str, Any], key: str, kinds: tuple[type, ...], default: Any = ...) -> tuple[Any, ...]:
    value = doc.get(key, default)
    if value is ...:
        raise LetheError(f"the sweep file has no `{key}`.", f"Add `{key}:` (one value or a list).")
    values = tuple(value) if isinstance(value, list) else (value,)
    if not values:
        raise LetheError(f"`{key}` is an empty list: the grid has no jobs.", f"Give `{key}` at least one value.")
    for v in values:
        if not isinstance(v, kinds) or (bool not in kinds and isinstance(v, bool)):
            names = " or ".join(k.__name__ for k in kinds if k is not type(None)) or "a value"
            raise LetheError(f"`{key}` holds {v!r}; each value must be {names}.", f"Fix `{key}` in the sweep file.")
    return values


def parse_grid(doc: dict[str, Any]) -> Grid:
    """Check a sweep file's mapping and normalise it (see the module docstring for the keys)."""
    unknown = sorted(str(k) for k in doc if k not in KEYS)
    if unknown:
        raise LetheError(f"unknown key{'s' if len(unknown) > 1 else ''} in the sweep file: {', '.join(unknown)}.",
                         f"The keys are {', '.join(KEYS)}; a method's own flags go under `params`.")
    name = doc.get("name", "")
    if not isinstance(name, str) or len(name) > 100:
        raise LetheError("`name` must be a short string.", "Name the sweep in a few words, or leave `name` out.")
    methods = _axis(doc, "method", (str,))
    models = _axis(doc, "model", (str,))
    for model in models:
        if not model or model.startswith("-"):
            raise LetheError(f"model {model!r} is not a model spec.", "Give a zoo name, a saved model folder or "
                                                                       "package.module:factory.")
    forgets = _axis(doc, "forget", (str, type(None)), default=None)
    seeds = _axis(doc, "seeds", (int,), default=0)
    params_doc = doc.get("params") or {}
    if not isinstance(params_doc, dict):
        raise LetheError("`params` must be a mapping of flag names to values or lists.",
                         "For example:  params: {delta: [1.0, 2.0], max-iterations: 20}")
    params: dict[str, tuple[Scalar, ...]] = {}
    for key in params_doc:
        flag = str(key).removeprefix("--").replace("_", "-")
        if flag in RESERVED:
            raise LetheError(f"`params` cannot set {flag!r}: {RESERVED[flag]}.", "Remove it from `params`.")
        if not flag.replace("-", "").isalnum():
            raise LetheError(f"`params` has the key {key!r}, which is not a flag name.",
                             "Use the verb's flag names without the dashes, e.g. max-iterations.")
        params[flag] = _axis(params_doc, key, (str, int, float, bool))
    grid = Grid(name, methods, models, forgets, params, seeds)
    if grid.size > MAX_JOBS:
        raise LetheError(f"the grid has {grid.size} jobs; a sweep runs at most {MAX_JOBS}.",
                         "Shorten an axis or split the study into several sweep files.")
    return grid


def _flag_words(flag: str, value: Scalar) -> list[str]:
    if value is True:
        return [f"--{flag}"]
    if value is False:
        return []
    return [f"--{flag}={value:g}" if isinstance(value, float) else f"--{flag}={value}"]


def expand(grid: Grid, common: list[str] = ()) -> list[SweepJob]:
    """Every point of the grid as a job (method, model, forget, params, seed order); `common` words (device, runs
    folder, trusted factories) go to every job."""
    names = list(grid.params)
    axes = grid.axes()
    jobs = []
    for method, model, forget, *values, seed in itertools.product(grid.methods, grid.models, grid.forgets,
                                                                  *grid.params.values(), grid.seeds):
        argv = [method, model, *([f"--forget={forget}"] if forget is not None else [])]
        for flag, value in zip(names, values):
            argv += _flag_words(flag, value)
        argv += [f"--seed={seed}", *common]
        every = {"method": method, "model": model, "forget": forget, **dict(zip(names, values)), "seed": seed}
        jobs.append(SweepJob(len(jobs), tuple(argv), tuple((k, every[k]) for k in axes)))
    return jobs


def check_jobs(jobs: list[SweepJob]) -> None:
    """Parse every job's words with its verb's parser and check its model names something of the verb's family,
    so a typo fails before the first job starts (the message names the job)."""
    families = {v.name: v.families for v in discover()}
    parsers: dict[str, argparse.ArgumentParser] = {}
    for job in jobs:
        verb, model = job.argv[0], job.argv[1]
        parser = parsers.get(verb) or parsers.setdefault(verb, _parser_for(verb))
        try:
            parser.parse_args(list(job.argv))
        except LetheError as error:
            raise LetheError(f"sweep job {job.index} ({' '.join(job.argv[:2])}): {error.message}", error.hint) from None
        if model in ZOO:
            if families[verb] and ZOO[model].family not in families[verb]:
                raise LetheError(f"sweep job {job.index}: {verb} works on {' or '.join(families[verb])} models; "
                                 f"{model} is a {ZOO[model].family}.",
                                 "Run `python -m core zoo list` for the families.")
        elif saved_model_path(model) is None and not FACTORY_SPEC.fullmatch(model):
            raise LetheError(f"sweep job {job.index}: {model!r} names no zoo model, saved model or factory.",
                             "Run `python -m core zoo list`, or give the folder of a saved model.")


# ------------------------------------------------------------------------------------------- the verb


def sweep_job(jobs: list[SweepJob], workers: int, executor: str, ray_address: str | None):
    """The sweep as a job for `core.runs`: run every grid job through the executor, tagged with this run's id."""

    def job(progress: ProgressFn, cancel: CancelToken) -> JobResult:
        folder = current_run_folder()
        sweep_id = folder.name
        flag = folder / "cancel.request"
        tagged = [replace(j, sweep=sweep_id, cancel_flag=str(flag)) for j in jobs]

        def describe(i: int, outcome: dict[str, Any]) -> dict[str, float]:
            return {"succeeded": float(outcome["status"] == "succeeded")}

        results = run_jobs(tagged, workers, executor, progress, cancel, stage="sweep", describe=describe,
                           keep_going=True, ray_address=ray_address, on_cancel=flag.touch)
        outcomes = [r if isinstance(r, dict) else {"index": r.index, "run": None, "status": "failed",
                                                   "error": f"{r.type}: {r.message}", "hint": r.hint}
                    for r in results]
        counts = {s: sum(o["status"] == s for o in outcomes) for s in ("succeeded", "failed", "cancelled")}
        return JobResult(metrics={"jobs": len(outcomes), **counts}, figures={"outcomes": pd.DataFrame(outcomes)})

    return job


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("sweep", parents=[common], help="run a grid of method runs from a YAML or JSON file",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("file", help="the sweep file (.yaml, .yml or .json)")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local worker processes (default) or Ray (pip install -r requirements-ray.txt)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --executor ray: join this Ray cluster (host:port or auto); default: start a local Ray")
    p.add_argument("--workers", type=int, default=1, help="jobs at once (default 1)")
    p.add_argument("--dry-run", action="store_true", help="check the file and list the jobs without running them")
    p.set_defaults(handler=run_sweep)


def _short_table(table: pd.DataFrame, axes: list[str]) -> str:
    """The jobs for reading in a terminal: axes, status, seconds and run id (--json has every final metric)."""
    columns = ["job", *(a for a in axes if a in table), "status", "seconds", "run"]
    return table[[c for c in columns if c in table]].to_string(index=False, float_format=lambda v: f"{v:.4g}")


def run_sweep(args: argparse.Namespace) -> Output:
    """Check the file, then run its grid as a sweep run (or, with --dry-run, list the jobs)."""
    check_executor(args.executor, args.workers)
    if args.ray_address and args.executor != "ray":
        raise LetheError("--ray-address is given without --executor ray.", "Add --executor ray, or drop the address.")
    grid = parse_grid(read_file(args.file))
    store = store_of(args)
    common = [f"--device={args.device}", f"--runs-dir={store.root.resolve()}",
              *(f"--trust-factory={m}" for m in args.trust_factory)]
    jobs = expand(grid, common)
    check_jobs(jobs)
    listing = [{"index": j.index, "command": "python -m core " + " ".join(j.argv[:-len(common)]),
                "point": dict(j.point)} for j in jobs]
    if args.dry_run:
        text = "\n".join([f"sweep {grid.name or args.file}: {len(jobs)} jobs (dry run, nothing started)",
                          *(f"  {j['index']:>3}  {j['command']}" for j in listing)])
        return Output({"name": grid.name, "jobs": listing, "axes": grid.axes(), "dry_run": True}, text)
    writable_folder(store.root, "the runs folder (--runs-dir or $LETHE_RUNS)")
    params = {"name": grid.name, "file": str(Path(args.file).resolve()), "axes": grid.axes(), "jobs": len(jobs),
              "executor": args.executor, "workers": args.workers, "grid": {
                  "method": list(grid.methods), "model": list(grid.models), "forget": list(grid.forgets),
                  "params": {k: list(v) for k, v in grid.params.items()}, "seeds": list(grid.seeds)}}
    run = run_now(sweep_job(jobs, args.workers, args.executor, args.ray_address),
                  method=SWEEP_METHOD, model=", ".join(grid.models), params=params, store=store,
                  device=args.device, listener=StderrProgress("sweep"))
    table = sweep_table(store, run.id)
    result = {"sweep": run.id, "status": run.status, "seconds": run.duration, **run.metrics,
              "runs": table.to_dict(orient="records")}
    lines = [f"sweep {grid.name or args.file}: {run.status} in {run.duration:.1f} s (sweep id {run.id})",
             _short_table(table, grid.axes()) if len(table) else "  (no runs)"]
    error = None
    if run.status != "succeeded":
        error = LetheError(f"sweep {run.id} {run.status}: {(run.error or {}).get('message', '')}".strip(),
                           (run.error or {}).get("hint") or f"Its finished runs are kept; see {run.path}.")
    elif run.metrics.get("succeeded") != len(jobs):
        failed = [r for r in table.to_dict(orient="records") if r["status"] != "succeeded"]
        error = LetheError(f"{len(failed)} of {len(jobs)} sweep jobs did not succeed: " + "; ".join(
            f"job {r['job']} {r['status']} ({r.get('error') or r['run']})" for r in failed[:5]),
            "See a run with `python -m core runs show ID`; a job without a run failed before it started.")
    return Output(result, "\n".join(lines), error=error)

