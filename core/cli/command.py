"""The command line that reproduces a run exactly, as the app shows it under every method's Run button.

`method_command` writes `python -m core VERB MODEL --flag value ...` for every setting that differs from the
method's defaults (so the line stays short) and refuses, with a LetheError, a setting the verb has no flag for: a
shown command that silently ran something else would be worse than none. tests/test_app_commands.py runs the shown
commands and compares the config they record with the app's.
"""

from __future__ import annotations

import shlex
from dataclasses import fields
from typing import Any, Mapping

from core.errors import LetheError


def config_flags(config: Any, defaults: Any, flags: Mapping[str, str], switches: Mapping[str, str] = (),
                 skip: tuple[str, ...] = ()) -> list[str]:
    """`--flag value` words for each dataclass field of `config` that differs from `defaults`.

    `flags` maps field names to value flags, `switches` boolean fields to store_true flags; fields in `skip` are
    written by the caller."""
    words: list[str] = []
    for f in fields(config):
        value, default = getattr(config, f.name), getattr(defaults, f.name)
        if f.name in skip or value == default:
            continue
        if f.name in switches and value is True:
            words.append(switches[f.name])
        elif f.name in flags and value is not None:
            words += [flags[f.name], f"{value:g}" if isinstance(value, float) else str(value)]
        else:
            raise LetheError(f"the command line cannot set {f.name} = {value!r}.",
                             "Reset this setting to its default to get a reproducible command.")
    return words


def method_command(verb: str, model: str, words: list[str], seed: int) -> str:
    """The full shell line: `python -m core VERB MODEL WORDS... --seed N --json`, each word shell-quoted."""
    return " ".join(["python -m core", verb, shlex.quote(model), *(shlex.quote(w) for w in words),
                     "--seed", str(int(seed)), "--json"])
