"""`python -m core show MODEL`: any model's card, whether G and D are present, its data shape and pixel range,
and which verbs apply to it and why not (`core.overview.model_overview`, the same facts the sidebar shows)."""

from __future__ import annotations

import argparse

from core.cli.common import Output
from core.device import resolve_device
from core.models.spec import load_model
from core.overview import model_overview, overview_lines


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("show", parents=[common], help="what a model is and which verbs apply to it")
    p.add_argument("model", help="zoo name, saved model folder, or package.module:factory")
    p.set_defaults(handler=show)


def show(args: argparse.Namespace) -> Output:
    overview = model_overview(load_model(args.model, resolve_device(args.device)), args.model)
    return Output(overview, "\n".join(overview_lines(overview)))
