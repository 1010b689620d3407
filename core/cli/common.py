"""What every verb shares: the common options, the result printed at the end, progress lines on stderr.

Conventions (the same for every verb, so scripts can rely on them):
- `--json` prints the verb's result as one JSON object on the last line of stdout (NaN becomes null);
  without it, a readable table or summary goes to stdout.
- Progress lines and warnings go to stderr, never stdout.
- A `LetheError` prints `error: <message>` and `hint: <hint>` on stderr and exits with code 2 (no traceback);
  with `--json` it also prints `{"error": message, "hint": hint}` as the last line of stdout, so a script reads
  every outcome from that line. A run that failed or was cancelled exits 2 too; with `--json` its last line is
  the run's result with `error` and `hint` set.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from core.errors import LetheError
from core.precision import PRECISIONS
from core.progress import ProgressEvent
from core.runs import RunRecord, RunStore
from core.runs.events import strict_json

EXIT_USER_ERROR = 2


@dataclass
class Output:
    """A verb's result: `result` is printed as JSON with --json, `text` otherwise."""

    result: dict[str, Any]
    text: str = ""
    error: LetheError | None = None  # set when the verb ran but its run failed: printed, exit code 2
    warnings: list[str] = field(default_factory=list)
    quiet: bool = False  # torchrun ranks other than 0: rank 0 prints the run's result


def common_options() -> argparse.ArgumentParser:
    """The options every verb takes (added to each sub-command so they go after the verb)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="print the result as JSON on the last line of stdout")
    parent.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda[:i] (default auto)")
    parent.add_argument("--runs-dir", "--run-dir", dest="runs_dir", default=None,
                        help="run store folder (default $LETHE_RUNS, else <repo>/runs)")
    parent.add_argument("--trust-factory", action="append", metavar="MODULE", default=[],
                        help="let saved model cards that name a factory in MODULE import and run it (repeatable)")
    return parent


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """`--precision fp32|bf16|fp16` for a method verb (`core.precision` says which verbs allow which, and why)."""
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="arithmetic of the training loop: fp32 (default), bf16 or fp16 autocast (fp16 with a "
                             "gradient scaler); methods whose maths needs fp32 refuse the others")


def store_of(args: argparse.Namespace) -> RunStore:
    return RunStore(args.runs_dir)


def run_failure(run: RunRecord) -> LetheError | None:
    """A LetheError describing why `run` did not succeed, or None if it did."""
    if run.status == "succeeded":
        return None
    error = run.error or {}
    message = error.get("message") or f"Run {run.id} ended {run.status}."
    hint = error.get("hint") or f"Its events are kept in {run.path}."
    return LetheError(f"Run {run.id} {run.status}: {message}", hint)


class StderrProgress:
    """Prints progress events as single lines on stderr, at most every `interval` seconds (and the last step)."""

    def __init__(self, label: str, interval: float = 0.5) -> None:
        self.label, self.interval, self._last = label, interval, 0.0

    def __call__(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        if now - self._last < self.interval and not (event.total and event.step >= event.total):
            return
        self._last = now
        width = len(str(event.total or event.step))
        where = f"{event.step:>{width}}/{event.total}" if event.total else f"{event.step}"
        metrics = " ".join(f"{k}={_short(v)}" for k, v in event.metrics.items())
        parts = [self.label, f"[{where}]", event.stage, metrics, event.message]
        print(" ".join(p for p in parts if p), file=sys.stderr, flush=True)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def print_output(output: Output, as_json: bool) -> int:
    """Print a verb's output; return the exit code. A `quiet` output (a torchrun rank other than 0) prints nothing."""
    if output.quiet:
        return EXIT_USER_ERROR if output.error is not None else 0
    for warning in output.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if output.error is not None:
        print_error(output.error)
    if as_json:
        result = output.result
        if output.error is not None:
            result = {**result, "error": output.error.message, "hint": output.error.hint}
        print(json.dumps(strict_json(result), sort_keys=False))
    elif output.text:
        print(output.text)
    return EXIT_USER_ERROR if output.error is not None else 0


def print_error(error: LetheError, as_json: bool = False) -> None:
    """`error:` / `hint:` lines on stderr; with `as_json`, also `{"error", "hint"}` as the last stdout line."""
    print(f"error: {error.message}", file=sys.stderr)
    if error.hint:
        print(f"hint: {error.hint}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": error.message, "hint": error.hint}))


def key_values(pairs: dict[str, Any], indent: str = "  ") -> str:
    """Aligned `key  value` lines for human output."""
    if not pairs:
        return f"{indent}(none)"
    width = max(len(str(k)) for k in pairs)
    return "\n".join(f"{indent}{str(k):<{width}}  {_short(v)}" for k, v in pairs.items())
