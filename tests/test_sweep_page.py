"""The Runs page groups a sweep's runs: pick a sweep, see only its jobs in one table (their values on the grid's
axes, status, final metrics) and their curves in one chart."""

from __future__ import annotations

import pytest

from app_harness import app_test_factory, assert_clean
from jobs_harness import curve_job
from core.runs import RunStore, run_now
from core.runs.sweeps import SWEEP_METHOD


@pytest.fixture
def app_test(monkeypatch):
    return app_test_factory(monkeypatch)


def _sweep(store: RunStore, name: str, scales: list[float]) -> str:
    """A finished sweep run and its member runs, tagged as `python -m core sweep` tags them."""
    params = {"name": name, "axes": ["lr"], "jobs": len(scales), "executor": "local", "workers": 2,
              "grid": {"method": ["demo"], "model": ["mnist-lenet"], "forget": [None], "params": {"lr": scales},
                       "seeds": [0]}}
    sweep = run_now(lambda progress, cancel: {"jobs": len(scales)}, method=SWEEP_METHOD, model="mnist-lenet",
                    params=params, store=store)
    for i, scale in enumerate(scales):
        run_now(curve_job(scale), method="demo", model="mnist-lenet", store=store,
                params={"lr": scale, "sweep": sweep.id, "sweep_index": i, "sweep_point": {"lr": scale}})
    return sweep.id


def test_the_runs_page_shows_one_sweeps_runs_in_a_table_and_a_chart(app_test):
    store = RunStore()
    first = _sweep(store, "first study", [1.0, 2.0])
    second = _sweep(store, "second study", [4.0, 8.0, 16.0])
    run_now(curve_job(32.0), method="demo", model="mnist-lenet", store=store)  # not in any sweep
    at = app_test().run().switch_page("pages/runs.py").run()
    assert_clean(at)
    box = at.selectbox(key="runs_sweep")
    assert set(box.options) == {f"first study · {first}", f"second study · {second}"}
    box.set_value(first).run()
    assert_clean(at)
    table = at.dataframe[-1].value  # the sweep's table is the page's last
    assert list(table["lr"]) == [1.0, 2.0] and list(table["status"]) == ["succeeded"] * 2
    assert sorted(table["final_loss"]) == pytest.approx([1 / 3, 2 / 3])
    chart = [c for c in at.get("plotly_chart") if c.key == "runs_sweep_curves"]
    spec = chart[0].proto.spec.replace(" ", "")
    assert len(chart) == 1 and '"name":"lr=1.0"' in spec and '"name":"lr=2.0"' in spec and "lr=4.0" not in spec
    at.selectbox(key="runs_sweep").set_value(second).run()
    assert list(at.dataframe[-1].value["lr"]) == [4.0, 8.0, 16.0]
