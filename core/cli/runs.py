"""`python -m core runs list|show ID|cancel ID`: read the run store (and stop a run another process owns)."""

from __future__ import annotations

import argparse

from core.cli.common import Output, key_values, store_of
from core.errors import LetheError
from core.runs.events import jsonable


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    runs = sub.add_parser("runs", help="list, show and cancel runs in the run store")
    verbs = runs.add_subparsers(dest="runs_verb", required=True, metavar="list|show|cancel")
    verbs.add_parser("list", parents=[common], help="every run, newest first").set_defaults(handler=runs_list)
    show = verbs.add_parser("show", parents=[common], help="one run: config, status, metrics, last events")
    show.add_argument("id")
    show.add_argument("--events", type=int, default=5, help="how many of the last events to show (default 5)")
    show.set_defaults(handler=runs_show)
    cancel = verbs.add_parser("cancel", parents=[common], help="ask a running run to stop")
    cancel.add_argument("id")
    cancel.set_defaults(handler=runs_cancel)


def _readable_store(args: argparse.Namespace):
    """The run store of --runs-dir / $LETHE_RUNS; a path that is a file is an error (a missing one has no runs)."""
    store = store_of(args)
    if store.root.exists() and not store.root.is_dir():
        raise LetheError(f"The runs folder {store.root} is a file, not a folder.",
                         "Point --runs-dir (or $LETHE_RUNS) at a folder.")
    return store


def runs_list(args: argparse.Namespace) -> Output:
    store = _readable_store(args)
    index = store.index()
    records = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
               for row in index.to_dict(orient="records")]
    empty = f"no runs in {store.root}" if store.root.is_dir() else f"no runs folder at {store.root} yet (no runs)"
    text = index.to_string(index=False, float_format=lambda v: f"{v:.4g}") if len(index) else empty
    return Output({"root": str(store.root), "runs": jsonable(records)}, text)


def runs_show(args: argparse.Namespace) -> Output:
    run = _readable_store(args).get(args.id)
    summary = run.summary()
    events = run.event_records()
    summary["events"] = len(events)
    summary["last_events"] = events[-args.events:] if args.events > 0 else []
    lines = [f"run {run.id}: {run.status} ({run.duration:.1f} s)",
             f"  method {summary['method']}, model {summary['model']}, started {summary['started']}",
             f"  folder {run.path}"]
    if run.error:
        lines.append(f"  error: {run.error['message']}\n  hint: {run.error['hint']}")
    lines += ["params:", key_values(run.config.get("params", {})), "metrics:", key_values(run.metrics)]
    if run.model_spec:
        lines.append(f"model: {run.model_spec}")
    if len(events):
        lines += [f"last {min(len(events), args.events)} of {len(events)} events:",
                  run.events().tail(args.events).drop(columns=["time", "images"]).to_string(index=False)]
    return Output(summary, "\n".join(lines))


def runs_cancel(args: argparse.Namespace) -> Output:
    _readable_store(args).request_cancel(args.id)
    return Output({"id": args.id, "cancel_requested": True}, f"asked run {args.id} to stop")
