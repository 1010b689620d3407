"""A sweep read back from the run store: the sweep's own run (method `sweep`, see `core.cli.sweep`) and the runs
its jobs wrote, each tagged in its params with `sweep` (the sweep's run id), `sweep_index` and `sweep_point` (its
values on the grid's axes).

    sweep_table(store, sweep_id)     # one row per job: axes, status, final numeric metrics, seconds, run id
    sweep_frames(store, sweep_id)    # {"delta=1, seed=0": events, ...} for core.viz.runs.metric_panels
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.runs.store import RunRecord, RunStore

SWEEP_METHOD = "sweep"


def sweep_runs(store: RunStore) -> list[RunRecord]:
    """Every sweep's own run, newest first."""
    return [r for r in store.runs() if r.config.get("method") == SWEEP_METHOD]


def members(store: RunStore, sweep_id: str) -> list[RunRecord]:
    """The runs the jobs of sweep `sweep_id` wrote, in grid order."""
    runs = [r for r in store.runs() if r.config.get("params", {}).get("sweep") == sweep_id]
    return sorted(runs, key=lambda r: r.config["params"].get("sweep_index", 0))


def point_label(point: dict[str, Any]) -> str:
    """A job's name from its values on the grid's axes: "delta=1, seed=0" (or "the only job")."""
    return ", ".join(f"{k}={v}" for k, v in point.items()) or "the only job"


def _numeric(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def sweep_table(store: RunStore, sweep_id: str) -> pd.DataFrame:
    """One row per job of the sweep: job index, its axis values, status, the run's final numeric metrics,
    seconds and run id; a job that failed before its run existed (its model or data could not be read) is a row
    with its error, from the sweep's `outcomes` table."""
    rows: dict[int, dict[str, Any]] = {}
    for run in members(store, sweep_id):
        params = run.config["params"]
        rows[int(params.get("sweep_index", len(rows)))] = {
            "job": int(params.get("sweep_index", len(rows))), **params.get("sweep_point", {}), "status": run.status,
            **_numeric(run.metrics), "seconds": run.duration, "run": run.id, "error": (run.error or {}).get("message")}
    outcomes = store.root / sweep_id / "figures" / "outcomes.csv"
    if outcomes.is_file():
        for o in pd.read_csv(outcomes).to_dict(orient="records"):
            if int(o["index"]) not in rows:
                rows[int(o["index"])] = {"job": int(o["index"]), "status": o["status"], "run": None,
                                         "error": o["error"] if isinstance(o["error"], str) else None}
    frame = pd.DataFrame([rows[i] for i in sorted(rows)])
    if frame.empty:
        return pd.DataFrame(columns=["job", "status", "seconds", "run", "error"])
    ordered = [c for c in frame.columns if c not in ("seconds", "run", "error")] + ["seconds", "run", "error"]
    return frame[[c for c in ordered if c in frame.columns]]


def sweep_frames(store: RunStore, sweep_id: str) -> dict[str, pd.DataFrame]:
    """Each member run's events, named by its point on the grid (for `core.viz.runs.metric_panels`)."""
    return {point_label(r.config["params"].get("sweep_point", {})): r.events() for r in members(store, sweep_id)}
