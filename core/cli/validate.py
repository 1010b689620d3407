"""Every numeric flag of every verb checked where it is parsed, with the allowed range in the message.

`harden(parser)` replaces the `int` / `float` converters of all flags (of every sub-command) by checkers built on
`core.validate.number`: a flag listed in RANGES gets its range, any other float flag must be finite and any other
int flag a whole number from 0 to 2^31 - 1. A bad value raises a LetheError while argparse reads it, so the
command line prints `error:` / `hint:` and exits 2 before any model is loaded or run folder created.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Callable

from core.errors import LetheError
from core.validate import number

INT_MAX = 2**31 - 1

# flag -> (kind, low, high, low_open, high_open)
RANGES: dict[str, tuple[type, float, float, bool, bool]] = {
    "-n": (int, 1, 100_000, False, False),
    "--seed": (int, 0, 2**32 - 1, False, False),
    "--temperature": (float, 0, 10, False, False),
    "--label": (int, 0, 100_000, False, False),
    "--events": (int, 0, 100_000, False, False),
    "--epochs": (int, 1, 10_000, False, False),
    "--eval-samples": (int, 1, 1_000_000, False, False),
    "--eval-size": (int, 1, 100_000, False, False),
    "--batch-size": (int, 2, 65_536, False, False),
    "--lr": (float, 0, 10, True, False),
    "--lambda": (float, 0, 1, True, False),
    "--tau": (float, 0, 1, True, True),
    "--T": (int, 1, 1_000_000, False, False),
    "--k-d": (int, 0, 1_000, False, False),
    "--k-g": (int, 1, 1_000, False, False),
    "--max-iterations": (int, 1, 1_000_000, False, False),
    "--refresh-every": (int, 1, 1_000_000, False, False),
    "--target-share": (float, 0, 1, False, False),
    "--epsilon": (float, 0, 2, True, False),
    "--delta": (float, 0, 100, True, False),
    "--alpha": (float, 0, 1, True, False),
    "--gamma": (float, 0, 1, False, False),
}


def checker(flag: str, kind: type) -> Callable[[str], float | int]:
    """An argparse `type=` converter for `flag` that enforces its range (see RANGES)."""
    kind_, low, high, low_open, high_open = RANGES.get(flag, (kind, 0 if kind is int else -math.inf,
                                                              INT_MAX if kind is int else math.inf, False, False))

    def convert(text: str) -> float | int:
        return number(text, flag, kind_, low, high, low_open, high_open)

    convert.__name__ = kind.__name__  # argparse names the type in its own messages
    return convert


def harden(parser: argparse.ArgumentParser) -> None:
    """Give every int / float flag of `parser` and its sub-commands a range-checking converter."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                harden(sub)
        elif action.type in (int, float) and action.option_strings:
            flag = next((o for o in action.option_strings if o in RANGES), max(action.option_strings, key=len))
            action.type = checker(flag, action.type)


def writable_folder(path: str | Path, flag: str) -> Path:
    """`path` as a folder that exists (created if missing) and can be written; LetheError naming `flag` if not."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LetheError(f"{flag} {path} cannot be created ({exc.strerror or exc}).",
                         f"Give {flag} a folder you can write to (its parent must be a folder, not a file).") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise LetheError(f"{flag} {path} is not writable.", f"Give {flag} a folder you can write to.")
    return path


def output_file(path: str | Path, flag: str = "--out") -> Path:
    """`path` as a file whose folder exists (created if missing) and is writable."""
    path = Path(path).expanduser()
    try:
        writable_folder(path.parent, "folder")
    except LetheError as exc:
        raise LetheError(f"{flag} {path}: its {exc.message}", f"Give {flag} a file in a folder you can write to "
                         "(every part of the path before the file name must be a folder, not a file).") from exc
    if path.is_dir():
        raise LetheError(f"{flag} {path} is a folder.", f"Give {flag} a file name, e.g. samples.png.")
    return path
