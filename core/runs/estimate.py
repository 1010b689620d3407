"""How long an active run still needs: a linear estimate from its recent events (step and elapsed time).

A run reports `step` of `total` with every event and the store stamps each event with its elapsed seconds, so the
recent pace (seconds per step over the last `window` events) times the steps left estimates the time left. Only
the steps after the first reported one count: set-up (loading data, the first measurement) is not a step's cost.
For a method whose `total` is a cap (taming stops when eq. 10 holds) the estimate is an upper bound.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Estimate:
    """Seconds left (None until two events with different steps exist) and the pace they come from."""

    step: int
    total: int
    seconds_per_step: float | None
    seconds_left: float | None


def estimate(events: pd.DataFrame, total: int | None = None, now: float | None = None, window: int = 20) -> Estimate:
    """Estimate the time left from a run's events (`RunRecord.events()`: columns step, total, time, elapsed)."""
    if events.empty or "step" not in events or "elapsed" not in events:
        return Estimate(0, int(total or 0), None, None)
    rows = events.dropna(subset=["step", "elapsed"])
    total = int(total if total is not None else (rows["total"].max() if "total" in rows and len(rows) else 0) or 0)
    step = int(rows["step"].iloc[-1]) if len(rows) else 0
    recent = rows.drop_duplicates("step", keep="last").tail(window)
    if len(recent) < 2 or not total:
        return Estimate(step, total, None, None)
    first, last = recent.iloc[0], recent.iloc[-1]
    steps = float(last["step"] - first["step"])
    if steps <= 0:
        return Estimate(step, total, None, None)
    pace = float(last["elapsed"] - first["elapsed"]) / steps
    since_last = max(0.0, (now or time.time()) - float(last["time"])) if "time" in recent else 0.0
    left = max(0.0, (total - float(last["step"])) * pace - since_last)
    return Estimate(step, total, pace, left)
