"""Runs: every run with its status and headline metrics, live views of running jobs (with cancel), a comparison
of chosen runs, a sweep's runs side by side, and downloads of each run's edited model, metrics and figures."""

import json

import pandas as pd
import streamlit as st

from core.models.archive import zip_model
from core.runs import RunRecord
from core.runs.sweeps import sweep_frames, sweep_runs, sweep_table
from core.runs.verdict import time_text, verdict_of
from core.runs.words import model_words, run_words
from core.viz.runs import metric_panels
from core.zoo.jobs import evaluate_job, train_job
from core.zoo.registry import ZOO
from pages._common import (LIVE_SECONDS, active_model, device_name, draw_run, guarded, keep_selection,
                           remember_selection, require_app_shell, run_store, runner)

require_app_shell()

JOBS = ("Train a zoo recipe", "Evaluate the selected model")


def start_job_form() -> None:
    with st.expander("Start a job", expanded=not run_store().ids(), icon=":material/play_circle:"):
        kind = st.radio("Job", JOBS, key="runs_job_kind", horizontal=True)
        cols = st.columns([2, 1, 1])
        seed = cols[1].number_input("Seed", min_value=0, value=0, step=1, key="runs_job_seed")
        if kind == JOBS[0]:
            names = list(ZOO)
            default = names.index("mnist-lenet") if "mnist-lenet" in names else 0
            name = cols[0].selectbox("Recipe of", names, index=default, key="runs_job_recipe")
            smoke = cols[2].toggle("Smoke (a few steps)", value=True, key="runs_job_smoke",
                                   help="Smoke mode trains a handful of steps on a tiny subset: seconds, not minutes.")
            label = f"Train {name}" + (" (smoke)" if smoke else "")
        else:
            name = st.session_state.get("model_spec")
            cols[0].markdown(f"Model: `{name or 'pick one in the sidebar'}`")
            label = "Evaluate"
        if st.button(label, key="runs_job_start", type="primary", icon=":material/play_arrow:", disabled=not name):
            with guarded():
                if kind == JOBS[0]:
                    run_id = runner().start(train_job(name, int(seed), device_name(), smoke), method="zoo-train",
                                            model=name, params={"smoke": smoke}, seed=int(seed), device=device_name())
                else:
                    bundle = active_model()
                    run_id = runner().start(evaluate_job(bundle, name, device_name()), method="evaluate", model=name,
                                            seed=int(seed), device=device_name())
                st.session_state["runs_inspect"] = run_id
                st.toast(f"Started {run_id}")


def runs_table(frame: pd.DataFrame) -> None:
    """Every run, newest first, named by what was forgotten and how; numbers rounded for reading."""
    store = run_store()
    shown = frame[["id", "method", "model", "status", "started", "duration", "progress"]].copy()
    configs = [store.get(i).config for i in shown["id"]]
    shown.insert(0, "what", [run_words(c) for c in configs])
    shown["sweep"] = [c.get("params", {}).get("sweep", "") for c in configs]
    shown["model"] = [model_words(str(m)) for m in shown["model"]]
    shown["started"] = shown["started"].dt.strftime("%Y-%m-%d %H:%M")
    st.dataframe(
        shown, hide_index=True, width="stretch", key="runs_table",
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent",
                                                        width="small"),
            "duration": st.column_config.NumberColumn("duration", format="%.0f s", width="small"),
            "id": st.column_config.TextColumn("run id", width="medium"),
            "method": st.column_config.TextColumn("method", width="small"),
            "sweep": st.column_config.TextColumn("sweep", width="small", help="the sweep this run is a job of"),
        },
    )


def _pick_saved(path: str) -> None:
    """Make the sidebar load a saved model folder (a callback: it runs before the sidebar widgets exist)."""
    st.session_state["pick_source"] = "Folder"
    st.session_state["pick_path"] = path


def downloads(run: RunRecord) -> None:
    """Download buttons for what the run left on disk, laid out left to right."""
    items = []  # (label, data, file name, mime)
    if run.model_spec:
        items.append(("Edited model (.zip)", zip_model(run.model_spec), f"{run.id}-model.zip", "application/zip"))
    metrics = run.metrics
    if metrics:
        items.append(("Metrics (.json)", json.dumps(metrics, indent=2), f"{run.id}-metrics.json", "application/json"))
        items.append(("Metrics (.csv)", pd.DataFrame([metrics]).to_csv(index=False), f"{run.id}-metrics.csv",
                      "text/csv"))
    events = run.events()
    if not events.empty:
        items.append(("Events (.csv)", events.to_csv(index=False), f"{run.id}-events.csv", "text/csv"))
    items.append(("Config (.json)", json.dumps(run.config, indent=2), f"{run.id}-config.json", "application/json"))
    items += [(f"Figure {p.name}", p.read_bytes(), f"{run.id}-{p.name}", None) for p in run.figures
              if p.suffix in (".png", ".csv", ".json")]
    cols = st.columns(4)
    for i, (label, data, file_name, mime) in enumerate(items):
        cols[i % 4].download_button(label, data, file_name=file_name, mime=mime, key=f"dl_{run.id}_{file_name}",
                                    icon=":material/download:", width="stretch")
    if run.model_spec:
        if st.button("Open the edited model in Explore", key=f"open_{run.id}", icon=":material/image_search:",
                     on_click=_pick_saved, args=(run.model_spec,)):
            st.switch_page("pages/explore.py")
    for path in run.figures:
        if path.suffix == ".png":
            st.image(str(path), caption=path.name)


def comparison(ids: list[str]) -> None:
    """Chosen runs side by side: their verdicts' numbers in one table, their curves as small multiples."""
    store = run_store()
    runs = [store.get(run_id) for run_id in ids]
    rows = []
    for r in runs:
        row = {"run": run_words(r.config, r.id), "model": model_words(r.config.get("model", "")), "status": r.status}
        verdict = verdict_of(r)
        if verdict is not None:
            for m in (verdict.headline, *verdict.quality):
                if m is not None:
                    row[f"{m.name} before"], row[f"{m.name} after"] = m.text(m.before), m.text(m.after)
            row["time"] = time_text(verdict.seconds)
        else:  # a method without a verdict (training, evaluation): its numeric final metrics
            row.update({k: v for k, v in r.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
            row["time"] = time_text(r.duration)
        rows.append(row)
    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        c: st.column_config.NumberColumn(c, format="%.4g") for c in table.columns
        if pd.api.types.is_float_dtype(table[c])})
    methods = {r.config.get("method", "") for r in runs}
    frames = {run_words(r.config, r.id): r.events() for r in runs}
    st.plotly_chart(metric_panels(frames, methods.pop() if len(methods) == 1 else ""),
                    key="runs_compare_curves", width="stretch")


def compare_defaults(frame: pd.DataFrame) -> list[str]:
    """The newest finished run and up to three more of the same method and model (never a mix of methods)."""
    done = frame[frame["status"] == "succeeded"]
    if done.empty:
        return frame["id"].tolist()[:1]
    first = done.iloc[0]
    same = done[(done["method"] == first["method"]) & (done["model"] == first["model"])]
    return same["id"].tolist()[:4]


def overview(frame: pd.DataFrame) -> None:
    """The runs table, and below it every active run with its progress, curves and a cancel button."""
    runs_table(frame)
    active = frame[frame["status"].isin(["queued", "running"])]["id"].tolist()
    if active:
        st.subheader("Running now")
        for run_id in active:
            with st.container(border=True):
                draw_run(run_store().get(run_id), key="runs_live", live=True)


@st.fragment(run_every=LIVE_SECONDS)
def live_overview() -> None:
    """`overview`, redrawn every LIVE_SECONDS while runs are active (it reads every run's folder, in the process and
    under the GIL its runs compute in); the rest of the page stays responsive."""
    with guarded():
        frame = run_store().index()
        overview(frame)
        if not frame["status"].isin(["queued", "running"]).any():
            st.rerun()  # everything finished: redraw the whole page once, statically


def sweep_view(sweeps: list[RunRecord]) -> None:
    """One sweep's runs (filtered by its id): every job in one table (its values on the grid's axes, status, final
    metrics) and their curves in one chart."""
    store = run_store()
    labels = {s.id: f"{s.config['params'].get('name') or 'sweep'} · {s.id}" for s in sweeps}
    sweep_id = st.selectbox("Sweep", list(labels), key="runs_sweep", format_func=labels.get)
    sweep = store.get(sweep_id)
    params = sweep.config.get("params", {})
    axes = ", ".join(params.get("axes", [])) or "no axis"
    workers = f"{params.get('workers', 1)} {params.get('executor', 'local')} worker(s)"
    st.caption(f"{params.get('jobs', '?')} jobs over {axes} on {workers}; status: {sweep.status}.")
    table = sweep_table(store, sweep_id)
    st.dataframe(table, hide_index=True, width="stretch", key="runs_sweep_table", column_config={
        c: st.column_config.NumberColumn(c, format="%.4g") for c in table.columns
        if pd.api.types.is_float_dtype(table[c])})
    methods = params.get("grid", {}).get("method", [])
    st.plotly_chart(metric_panels(sweep_frames(store, sweep_id), methods[0] if len(methods) == 1 else ""),
                    key="runs_sweep_curves", width="stretch")


def inspect_run(ids: list[str]) -> None:
    if st.session_state.get("runs_inspect") not in ids:
        st.session_state["runs_inspect"] = ids[0]
    inspect = st.selectbox("Run", ids, key="runs_inspect",
                           format_func=lambda r: run_words(run_store().get(r).config, r))
    record = run_store().get(inspect)
    with st.container(border=True):
        if record.status in ("queued", "running"):
            st.caption("This run is live above; its downloads grow as it reports.")
        else:
            draw_run(record, key="runs_inspect_view", live=False)
        downloads(record)


st.title("Runs")
store = run_store()
with guarded():
    start_job_form()

ids = store.ids()
if not ids:
    st.info(f"No runs yet in `{store.root}`. Start a job above, or run a method; every run appears here.",
            icon=":material/info:")
else:
    with guarded():
        frame = store.index()
        if frame["status"].isin(["queued", "running"]).any():
            live_overview()
        else:
            overview(frame)
    st.subheader("Inspect a run")
    with guarded():
        inspect_run(ids)
    st.subheader("Compare runs")
    with guarded():
        labels = {r: run_words(store.get(r).config, r) for r in ids}
        keep_selection("runs_compare", ids, compare_defaults(store.index()))
        compare = st.multiselect("Runs to compare", ids, key="runs_compare", format_func=labels.get,
                                 help="Defaults to finished runs of the same method and model; kept across pages.")
        remember_selection("runs_compare")
        if compare:
            comparison(compare)
    sweeps = sweep_runs(store)
    if sweeps:
        st.subheader("Sweeps")
        with guarded():
            sweep_view(sweeps)
