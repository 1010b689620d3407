"""The time left of an active run, from the pace of its recent events."""

import pandas as pd
import pytest

from core.runs.estimate import estimate


def _events(steps, elapsed, t0=1000.0, total=100):
    return pd.DataFrame({"step": steps, "total": total, "elapsed": elapsed, "time": [t0 + e for e in elapsed]})


def test_the_recent_pace_times_the_steps_left():
    ev = _events([0, 10, 20, 30], [5.0, 15.0, 25.0, 35.0])  # 5 s of set-up, then 1 s per step
    e = estimate(ev, now=1035.0)
    assert e.seconds_per_step == pytest.approx(1.0)
    assert e.seconds_left == pytest.approx(70.0)
    assert estimate(ev, now=1045.0).seconds_left == pytest.approx(60.0)  # 10 s since the last event


def test_a_changing_pace_uses_the_recent_window():
    ev = _events(list(range(0, 50)), [i * 1.0 for i in range(25)] + [25 + i * 3.0 for i in range(25)])
    assert estimate(ev, window=10, now=1000 + 97).seconds_per_step == pytest.approx(3.0)


def test_no_estimate_before_two_steps_or_without_a_total():
    assert estimate(_events([0], [3.0])).seconds_left is None
    assert estimate(pd.DataFrame()).seconds_left is None
    assert estimate(_events([0, 5], [1.0, 2.0], total=0)).seconds_left is None
