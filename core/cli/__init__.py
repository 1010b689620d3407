"""The command line, `python -m core <verb>`: it mirrors the app (design guide, "Command line").

    python -m core zoo list|show NAME|train NAME [--smoke] [--seed S] [--out DIR]
    python -m core sample MODEL -n N --seed S --out FILE.png|FILE.npy [--temperature T] [--label L]
    python -m core eval MODEL [--like ZOO_NAME]
    python -m core runs list|show ID|cancel ID
    python -m core show MODEL                   (card, G/D, data shape, pixel range, which verbs apply and why not)
    python -m core sweep FILE.yaml|FILE.json    (a grid of method runs through local workers or Ray, see core.cli.sweep)
    python -m core <method verb> MODEL ...      (one per method in core.methods, see core.cli.methods)

Every verb takes `--json`, `--device auto|cpu|cuda`, `--runs-dir DIR` and `--trust-factory MODULE` (let saved
cards that name a factory in MODULE run it; see `core.models.trust`); output conventions are in
`core.cli.common`. This package is the one part of `core` that prints.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from core.cli import evaluate, methods, runs, sample, show, sweep, zoo
from core.cli.common import EXIT_USER_ERROR, common_options, print_error, print_output
from core.cli.validate import harden
from core.errors import LetheError
from core.models.trust import trusting


def build_parser(method_verbs: Sequence[methods.MethodVerb] | None = None) -> argparse.ArgumentParser:
    """The full parser; `method_verbs` defaults to the verbs discovered in `core.methods`."""
    parser = argparse.ArgumentParser(prog="python -m core", description="Lethe: make generative models forget.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    common = common_options()
    zoo.add_parser(sub, common)
    sample.add_parser(sub, common)
    evaluate.add_parser(sub, common)
    runs.add_parser(sub, common)
    show.add_parser(sub, common)
    sweep.add_parser(sub, common)
    for verb in methods.discover() if method_verbs is None else method_verbs:
        methods.add_parser(sub, common, verb)
    harden(parser)
    return parser


def main(argv: Sequence[str] | None = None, method_verbs: Sequence[methods.MethodVerb] | None = None) -> int:
    """Parse `argv`, run the verb, print its output; return the exit code (2 for errors the user can fix)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(method_verbs).parse_args(argv)
        with trusting(getattr(args, "trust_factory", None) or ()):
            return print_output(args.handler(args), args.json)
    except LetheError as error:
        print_error(error, as_json="--json" in argv)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
