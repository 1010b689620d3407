"""`python -m core eval MODEL [--like ZOO_NAME]`: measure a model with its zoo evaluator.

A zoo model uses its own evaluator; a saved edited model uses the evaluator of the zoo model it came from
(`card.parent`), else of the zoo entry with the same family and dataset (`core.zoo.lookup.entry_for`).
The result lists the metrics and which of the zoo entry's floors they miss.
"""

from __future__ import annotations

import argparse
import time

from core.cli.common import Output, key_values
from core.device import resolve_device
from core.models.spec import load_model
from core.zoo.lookup import entry_for, floor_failures


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("eval", parents=[common], help="measure a model with its zoo evaluator")
    p.add_argument("model", help="zoo name, saved model folder, or package.module:factory")
    p.add_argument("--like", default=None, help="use this zoo model's evaluator")
    p.set_defaults(handler=evaluate)


def evaluate(args: argparse.Namespace) -> Output:
    device = resolve_device(args.device)
    bundle = load_model(args.model, device)
    entry = entry_for(bundle.card, args.model, args.like)
    start = time.perf_counter()
    metrics = {k: float(v) for k, v in entry.evaluate(bundle, device=device).items()}
    failures = floor_failures(entry, metrics)
    result = {"model": args.model, "evaluator": entry.evaluator, "like": entry.name, "metrics": metrics,
              "floors": {k: list(v) for k, v in entry.floors.items()}, "floor_failures": failures,
              "seconds": time.perf_counter() - start}
    lines = [f"{args.model} measured with {entry.evaluator} ({result['seconds']:.1f} s):", key_values(metrics)]
    lines += [f"below the {entry.name} floor: {f}" for f in failures]
    return Output(result, "\n".join(lines))
