"""Numbers read from people (command-line flags, spec values, page boxes), checked where they are parsed.

Every number Lethe takes from outside must be finite and in a stated range; the error names the flag or key and
the allowed range, so `--temperature nan` or `boundary=abc` end in a clear message rather than in NaN arrays or a
traceback far from the cause.
"""

from __future__ import annotations

import math

from core.errors import LetheError


class BadNumber(LetheError):
    """A number from the user that does not parse, is not finite, or is out of its range."""


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def describe_range(kind: type, low: float, high: float, low_open: bool = False, high_open: bool = False) -> str:
    """'a whole number from 1 to 1,000,000', 'a finite number above 0', ..."""
    what = "a whole number" if kind is int else "a finite number"
    lo_word = "above" if low_open else "at least"
    hi_word = "below" if high_open else "at most"
    if math.isinf(low) and math.isinf(high):
        return what
    if math.isinf(high):
        return f"{what} {lo_word} {_fmt(low)}"
    if math.isinf(low):
        return f"{what} {hi_word} {_fmt(high)}"
    if not low_open and not high_open:
        return f"{what} from {_fmt(low)} to {_fmt(high)}"
    return f"{what} {lo_word} {_fmt(low)} and {hi_word} {_fmt(high)}"


def number(text: str | float | int, name: str, kind: type = float, low: float = -math.inf, high: float = math.inf,
           low_open: bool = False, high_open: bool = False) -> float | int:
    """`text` as a `kind` (int or float) within [low, high] (open ends with `low_open` / `high_open`); BadNumber
    naming `name` and the allowed range otherwise. Never accepts nan or inf."""
    allowed = describe_range(kind, low, high, low_open, high_open)
    hint = f"Give a value in that range, or leave {name} out for its default." if name.startswith("-") else \
        f"Write {name} as {allowed}."
    shown = str(text) if len(str(text)) <= 40 else str(text)[:37] + "..."
    try:
        value = float(text) if kind is float else _whole(text)
    except (TypeError, ValueError, OverflowError):
        raise BadNumber(f"{name} must be {allowed}; got {shown!r}.", hint) from None
    ok = math.isfinite(value) and (low < value if low_open else low <= value) and \
        (value < high if high_open else value <= high)
    if not ok:
        raise BadNumber(f"{name} must be {allowed}; got {shown}.", hint)
    return value


def _whole(text: str | float | int) -> int:
    if isinstance(text, bool):
        raise ValueError(text)
    if isinstance(text, int):
        return text
    if isinstance(text, float):
        if not text.is_integer():
            raise ValueError(text)
        return int(text)
    text = text.strip().replace("_", "")
    if len(text) > 30:
        raise ValueError(text)
    return int(text)
