"""The verdict of a finished run, stated the same way for every method (DESIGN.md, "Methods and runs").

A verdict is pure data read from a run's config and final metrics: the request in words ("forget label 0 of
mnist-dcgan"), the method's headline metric before -> after with its uncertainty and relative change, the quality
it cost, the time, a one-line reading ("invalidity fell 98%; quality cost: IS -0.7") and the picture that proves
it (`Proof`: class shares before/after for a label, a person's NLLs against the threshold, ...). Pages draw it
with `core.viz.verdict`; notebooks print `verdict.reading`.

Each method registers how to read its runs:

    @register_verdict("redact")
    def redaction_verdict(run: RunRecord) -> Verdict: ...

`verdict_of(run)` imports each method under `core.methods` (and a package's `verdict` module) the first time it
meets an unknown method, so a page that never imported, say, the taming package still gets taming verdicts.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from core.runs.store import RunRecord

Z95 = 1.959964  # two-sided 95% normal quantile


@dataclass(frozen=True)
class Measure:
    """One quantity before and after a run, with an optional 95% uncertainty (half-width) on each side.

    `better` says which direction is an improvement ("lower", "higher", or "" when neither is), so a reading
    can call a change a gain or a cost; `percent` formats values (and their uncertainty) as percentages."""

    name: str
    before: float | None
    after: float | None
    before_pm: float | None = None
    after_pm: float | None = None
    better: str = "lower"
    percent: bool = False
    digits: int = 2
    note: str = ""

    @property
    def change(self) -> float | None:
        """after - before (None if either is missing)."""
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    @property
    def relative(self) -> float | None:
        """(after - before) / |before|, or None when before is missing or zero."""
        if self.change is None or not self.before:
            return None
        return self.change / abs(self.before)

    def text(self, value: float | None, pm: float | None = None) -> str:
        """A value (and its uncertainty) rounded for reading: 12.3% ± 0.6% or 1.84 ± 0.02."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "n/a"
        if self.percent:
            digits = 1 if abs(value) >= 0.001 or value == 0 else 2
            out = f"{100 * value:.{digits}f}%"
            return out + (f" ± {100 * pm:.{digits}f}%" if pm else "")
        return f"{value:.{self.digits}f}" + (f" ± {pm:.{self.digits}f}" if pm else "")

    def change_text(self) -> str:
        """The change as a reader says it: "-98%" relative, or "+0.7" absolute when relative is meaningless."""
        if self.change is None:
            return ""
        if self.relative is not None and not self.percent:
            return f"{self.change:+.{self.digits}f} ({self.relative:+.0%})"
        if self.relative is not None:
            return f"{self.relative:+.0%}"
        return f"{100 * self.change:+.1f} points" if self.percent else f"{self.change:+.{self.digits}f}"

    @property
    def improved(self) -> bool | None:
        """True when the change goes the `better` way, False when the other way, None without a direction."""
        if self.change is None or not self.better:
            return None
        return self.change < 0 if self.better == "lower" else self.change > 0


@dataclass(frozen=True)
class Proof:
    """The picture that proves a verdict, as data for `core.viz.verdict.proof_figure`.

    kind "shares": `data` = {"classes": [...], "before": [...], "after": [...], "forgotten": [class, ...]};
    kind "nll": `data` = a taming run's `nlls` figure (NLLs per set and model, mu_R, sigma_R, delta);
    kinds "bars", "curves" and "scatter": see `core.viz.verdict` (categories x series, lines, points against y = x)."""

    kind: str
    title: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Verdict:
    """What a finished run did, in the same shape for every method."""

    run_id: str
    status: str
    request: str
    headline: Measure | None
    quality: tuple[Measure, ...] = ()
    seconds: float | None = None
    reading: str = ""
    notes: tuple[str, ...] = ()
    proof: Proof | None = None

    @property
    def finished(self) -> bool:
        return self.status == "succeeded"


VerdictFn = Callable[[RunRecord], Verdict]
_REGISTRY: dict[str, VerdictFn] = {}


def register_verdict(method: str) -> Callable[[VerdictFn], VerdictFn]:
    """Decorator: `fn(run) -> Verdict` reads runs whose config names `method` ("redact", "tame", ...)."""

    def wrap(fn: VerdictFn) -> VerdictFn:
        _REGISTRY[method] = fn
        return fn

    return wrap


def _load_methods() -> None:
    import core.methods

    for info in pkgutil.iter_modules(core.methods.__path__):
        name = f"core.methods.{info.name}"
        importlib.import_module(name)
        if info.ispkg and importlib.util.find_spec(f"{name}.verdict") is not None:
            importlib.import_module(f"{name}.verdict")  # a method package keeps its verdict in verdict.py


def verdict_of(run: RunRecord) -> Verdict | None:
    """The run's verdict, or None for a method that registered none (or a run that has not succeeded)."""
    method = run.config.get("method", "")
    if method not in _REGISTRY:
        _load_methods()
    fn = _REGISTRY.get(method)
    if fn is None or run.status != "succeeded":
        return None
    return fn(run)


# ---------------------------------------------------------------------------------------- helpers for methods


def number(metrics: Mapping[str, Any], key: str) -> float | None:
    """metrics[key] as a finite float, or None (missing, None, NaN or not a number): read metrics defensively."""
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def binomial_pm(p: float | None, n: int | float | None, se: float | None = None) -> float | None:
    """95% half-width of a proportion: from its standard error if given, else sqrt(p(1-p)/n)."""
    if se is not None:
        return Z95 * se
    if p is None or not n:
        return None
    return Z95 * math.sqrt(max(p * (1 - p), 0.0) / float(n))


def reading(headline: Measure | None, quality: tuple[Measure, ...] | list[Measure], extra: str = "") -> str:
    """One line: "invalidity fell 98% (12.3% -> 0.2%); quality cost: IS -0.7, FID -4.1"."""
    parts = []
    if headline is not None and headline.change is not None:
        verb = "fell" if headline.change < 0 else "rose"
        amount = f"{abs(headline.relative):.0%}" if headline.relative is not None else headline.change_text()
        if headline.text(headline.before) == headline.text(headline.after):
            verb, amount = "did not change", "at the shown precision"
        parts.append(f"{headline.name} {verb} {amount} ({headline.text(headline.before)} -> "
                     f"{headline.text(headline.after)})")
    costs = [f"{q.name} {q.change_text().split(' (')[0]}" for q in quality if q.change is not None]
    if costs:
        parts.append("quality cost: " + ", ".join(costs))
    if extra:
        parts.append(extra)
    return "; ".join(parts)


def time_text(seconds: float | None) -> str:
    """27 s, 3 min 20 s, 1 h 05 min: durations rounded for reading."""
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass
class Fields:
    """Keyword bag for building a Verdict from a run (keeps the method builders short)."""

    request: str
    headline: Measure | None = None
    quality: list[Measure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    proof: Proof | None = None
    extra: str = ""

    def build(self, run: RunRecord, seconds: float | None = None) -> Verdict:
        return Verdict(run.id, run.status, self.request, self.headline, tuple(self.quality),
                       seconds if seconds is not None else run.duration, reading(self.headline, self.quality,
                                                                                  self.extra),
                       tuple(self.notes), self.proof)
