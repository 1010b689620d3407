"""Influence: which training images helped or hurt a GAN's quality metric (Terashita et al., ICLR 2021).

Pick a GAN (its training set comes from its card, or from the sidebar's "Data & judge": your images, held-out
images and judge), the metric and the traced epochs; the run traces and estimates
in the background. A finished run shows every training instance ranked (most harmful and most helpful as clickable
image grids that fill the forget-set builder, a sortable table, the distribution; for 2-D data a map), and can be
verified against counterfactual retraining or cleansed later, from the trace it kept."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from core.methods.influence import (BASELINES, METRICS, SIGN_RULES, InfluenceConfig, TraceConfig, follow_up_job,
                                    follow_up_params, influence_command, influence_job, job_params, prepare)
from core.methods.influence.metrics import HIGHER_IS_BETTER
from core.models.bundles import GANBundle
from core.runs import RunRecord
from core.viz.influence import (SELECTOR_LABELS, cleansing_figure, estimated_vs_true, influence_histogram,
                                influence_map)
from pages._common import (active_model, data_spec, device_name, guarded, heldout_spec, judge_spec, require_app_shell,
                           rounded_metrics, run_store, run_view, runner, shipped_zoo, training_data)
from pages._forget_set import forget_ids, gallery
from pages._verdict import verdict_card

require_app_shell()

METRIC_LABELS = {"all": "ALL (average log-likelihood, 2-D data)", "is": "IS (Inception Score)",
                 "fid": "FID (Fréchet distance)", "dloss": "Discriminator loss (the paper's baseline)"}
RANKED = 48  # images per grid of most harmful / most helpful


def _use_gan(name: str) -> None:
    st.session_state["pick_source"] = "Zoo"
    st.session_state["pick_zoo"] = name


def no_gan_notice() -> None:
    st.info("Influence works on GANs with their discriminator and their training data: pick one in the sidebar.",
            icon=":material/arrow_back:")
    gans = [n for n in ("influence-fcgan", "toy-gan", "mnist-dcgan") if n in shipped_zoo()]
    for col, name in zip(st.columns(max(1, len(gans))), gans):
        col.button(f"Use {name}", key=f"influence_use_{name}", on_click=_use_gan, args=(name,))


def settings_form(bundle: GANBundle) -> tuple[InfluenceConfig, int]:
    """Metric, traced epochs and the paper's SGD settings; returns (config, seed)."""
    defaults = TraceConfig()
    two_d = len(bundle.data_shape) == 1
    metrics = [m for m in METRICS if (m in ("all", "dloss")) == two_d or m == "dloss"]
    cols = st.columns([3, 1, 1, 1])
    metric = cols[0].selectbox("Metric V", metrics, format_func=METRIC_LABELS.get, key="influence_metric",
                               help="The quality metric whose change each training instance is credited with.")
    epochs = cols[1].number_input("Traced epochs k", 1, 50, 1, key="influence_epochs",
                                  help="Training continues k epochs from the current weights, logging every step; "
                                       "the estimate walks them back (paper: k = 1 is the most accurate).")
    latents = cols[2].number_input("Latents |Z'|", 50, 10_000, 2000 if two_d else 1000, step=250,
                                   key="influence_latents")
    seed = cols[3].number_input("Seed", 0, 10_000, 0, key="influence_seed")
    with st.expander("SGD of the traced epochs (the paper's defaults)", icon=":material/tune:"):
        c = st.columns(4)
        lr = c[0].number_input("Learning rate (G and D)", 1e-6, 1.0, defaults.lr_g, format="%.4f", key="influence_lr")
        batch = c[1].number_input("Batch size", 1, 1000, defaults.batch_size, key="influence_batch")
        updates = c[2].selectbox("Updates", ("simultaneous", "alternating"), key="influence_updates")
        every = c[3].number_input("Checkpoint every C steps", 1, 100, 1 if two_d else 10, key="influence_every",
                                  help="1 stores every step's parameters on disk; C > 1 stores every C-th and "
                                       "recomputes the others (less disk, one more gradient per step).")
    decay = float(bundle.card.training.get("weight_decay", 0.0))
    trace = TraceConfig(epochs=int(epochs), lr_g=lr, lr_d=lr, batch_size=int(batch), updates=updates,
                        weight_decay=decay, checkpoint_every=int(every))
    st.caption(f"Sign shown: {SIGN_RULES[metric]}")
    return InfluenceConfig(metric=metric, trace=trace, latents=int(latents)), int(seed)


def inputs() -> dict[str, str | None]:
    """The sidebar's training images, held-out images and judge (the command line's --data, --heldout, --judge)."""
    return {"data": data_spec(), "judge": judge_spec(), "heldout": heldout_spec()}


def start(bundle: GANBundle, spec: str, config: InfluenceConfig, seed: int) -> None:
    prepare(bundle, config, seed, **inputs())  # bad input is shown here, before a run is created
    run_id = runner().start(influence_job(bundle, config, seed, **inputs()), method="influence", model=spec,
                            params=job_params(config, **inputs()), seed=seed, device=device_name())
    st.session_state["influence_run"] = st.session_state["influence_pick"] = run_id


def _estimates(runs: list[RunRecord], spec: str) -> list[RunRecord]:
    return [r for r in runs if r.config.get("method") == "influence" and r.config.get("model") == spec
            and "of_run" not in (r.config.get("params") or {})]


def _follow_ups(runs: list[RunRecord], run_id: str) -> list[RunRecord]:
    return [r for r in runs if (r.config.get("params") or {}).get("of_run") == run_id]


def ranking_panel(run: RunRecord, data, metric: str, metric_name: str) -> None:
    """Most harmful and most helpful instances (image grids into the forget set, or a 2-D map), the table and
    the distribution of influence."""
    table = run.table("influence")
    if table is None:
        st.warning("This run saved no ranking.")
        return
    harmful = table.sort_values("harm", ascending=False, kind="stable")
    helpful = table.sort_values("harm", ascending=True, kind="stable")
    st.info(SIGN_RULES[metric], icon=":material/swap_vert:")
    ids = forget_ids(data.name)
    cols = st.columns([2, 1, 2], vertical_alignment="bottom")
    top = cols[0].number_input("Most harmful to add", 1, len(table), min(20, len(table)), key="influence_top_n")
    if cols[1].button("Forget these", key="influence_forget_top", icon=":material/playlist_add:",
                      help="Add the most harmful instances to the forget set being built for this dataset."):
        ids.update(int(i) for i in harmful["id"].head(int(top)))
        st.toast(f"Added {int(top)} instances to the forget set of {data.name}")
    cols[2].page_link("pages/redact.py", label=f"Redact the forget set ({len(ids)} picked)", icon=":material/hide_image:")
    if data.is_image:
        left, right = st.tabs([f"Most harmful ({RANKED})", f"Most helpful ({RANKED})"])
        for tab, order, key in ((left, harmful, "influence_harmful"), (right, helpful, "influence_helpful")):
            with tab:
                st.caption("Click an image to put it in (or take it out of) the forget set; most "
                           f"{'harmful' if key.endswith('harmful') else 'helpful'} first.")
                rows = torch.as_tensor(np.array(order["instance"].head(RANKED)))
                gallery(data, data.subset(rows), data.name, key)
    else:
        samples = run_samples(run)
        st.plotly_chart(influence_map(data.x[: len(table)].numpy(), table["influence"].to_numpy(), samples,
                                      harmful_positive=not HIGHER_IS_BETTER[metric],
                                      title="Training points by influence (red: hurt, blue: helped) over the "
                                            "generator's samples"),
                        key=f"influence_map_{run.id}", width="stretch")
    left, right = st.columns([2, 3])
    left.dataframe(harmful[["id", "influence", "harm"]], hide_index=True, width="stretch", height=320,
                   column_config={"influence": st.column_config.NumberColumn(format="%.3e"),
                                  "harm": st.column_config.NumberColumn(format="%.3e")})
    right.plotly_chart(influence_histogram(table["influence"], metric_name), key=f"influence_hist_{run.id}",
                       width="stretch")


@st.cache_data(max_entries=4, show_spinner=False)
def _samples(spec: str, n: int = 3000) -> np.ndarray:
    from core.models.spec import load_model

    return load_model(spec, "cpu").sample(n, seed=0)[0].numpy()


def run_samples(run: RunRecord) -> np.ndarray | None:
    """The generator's samples (2-D maps), from the model the run estimated."""
    with guarded():
        return _samples(run.config["model"])
    return None


def check_forms(run: RunRecord, n_train: int) -> None:
    """Start a verification (counterfactual replays of N targets) or a cleansing (remove n_h, re-run) of `run`."""
    left, right = st.columns(2)
    with left.container(border=True):
        st.markdown("**Verify** against counterfactual retraining")
        c = st.columns(2)
        targets = c[0].number_input("Targets", 4, n_train, min(40, n_train), key="influence_targets",
                                    help="Random training instances; each is removed and the traced epochs replayed.")
        workers = c[1].number_input("Workers", 1, 8, 1, key="influence_workers")
        if st.button("Verify", key="influence_verify", icon=":material/fact_check:"):
            with guarded():
                start_follow_up(run, targets=int(targets), workers=int(workers))
    with right.container(border=True):
        st.markdown("**Cleanse**: remove the most harmful and re-run")
        c = st.columns(2)
        n_h = c[0].number_input("Remove n_h", 1, n_train - 1, min(max(1, n_train // 20), n_train - 1),
                                key="influence_n_h")
        baselines = c[1].multiselect("Baselines", BASELINES, default=list(BASELINES), key="influence_baselines",
                                     format_func=SELECTOR_LABELS.get)
        if st.button("Cleanse", key="influence_cleanse", icon=":material/cleaning_services:"):
            with guarded():
                start_follow_up(run, cleanse=int(n_h), baselines=tuple(baselines))


def start_follow_up(run: RunRecord, targets: int = 0, cleanse: int = 0,
                    baselines: tuple[str, ...] = BASELINES, workers: int = 1) -> None:
    job = follow_up_job(run, targets=targets, cleanse=cleanse, baselines=baselines, workers=workers,
                        device=device_name())
    check_id = runner().start(job, method="influence", model=run.config["model"],
                              params=follow_up_params(run.id, targets, cleanse, baselines, workers),
                              seed=int(run.config.get("seed", 0)), device=device_name())
    st.session_state["influence_check"] = check_id


def check_panel(check: RunRecord, metric_name: str, card: bool = False) -> None:
    """A finished verification (scatter, tau, Jaccard) or cleansing (metric before and after per selector).
    `card`: the check's verdict card above already shows tau and Jaccard and draws one proof, the cleansing bars
    when the check cleansed, else the scatter (`core.methods.influence.verdict`); only the rest is drawn here."""
    if check.status != "succeeded":
        run_view(check.id, "influence_check_view")
        return
    m = check.metrics
    verification, cleansing = check.table("verification"), check.table("cleansing")
    if verification is not None:
        cols = st.columns(3)
        if not card:
            cols[0].metric("Kendall tau", f"{m['kendall_tau']:.3f}", help="Rank agreement of estimated and true "
                           "influence over the targets (1: same order).")
            cols[1].metric("Jaccard (critical)", f"{m['jaccard']:.3f}", help="Overlap of the most positive and "
                           "most negative estimated and true instances (the paper's 20 critical instances).")
        cols[2].metric("replays per minute", f"{m['verify_jobs_per_minute']:.1f}")
        if not card or cleansing is not None:
            st.plotly_chart(estimated_vs_true(verification, m["kendall_tau"], m["jaccard"], metric_name),
                            key=f"influence_scatter_{check.id}", width="stretch")
    if cleansing is not None:
        if not card:
            st.plotly_chart(cleansing_figure(cleansing, metric_name, title=f"Test {metric_name} after removing "
                                             f"{int(m['cleanse_n_h'])} instances, per selector"),
                            key=f"influence_cleansing_{check.id}", width="stretch")
        st.dataframe(cleansing.assign(selector=cleansing["selector"].map(lambda s: SELECTOR_LABELS.get(s, s))),
                     hide_index=True, width="stretch")


def result_panel(run: RunRecord, data) -> None:
    verdict_card(run, "influence")
    m = run.metrics
    metric, metric_name = m.get("metric", "all"), m.get("metric_name", "V")
    cols = st.columns(5)
    cols[0].metric(metric_name, f"{m['metric_value']:.4g}", help="V on Z' and D'_x after the traced epochs")
    cols[1].metric("steps traced", f"{m['steps']:,}")
    cols[2].metric("trace", f"{m['trace_seconds']:.1f} s")
    cols[3].metric("inference", f"{m['inference_seconds']:.1f} s", f"{m['inference_over_trace']:.2f}x the trace",
                   delta_color="off")
    cols[4].metric("log per step", f"{m['log_bytes_per_step'] / 1024:.1f} KiB")
    ranking_panel(run, data, metric, metric_name)
    st.subheader("Check the estimate")
    if not m.get("trace_kept"):
        st.warning("This run kept no trace, so it cannot be verified or cleansed; start it again.")
    else:
        check_forms(run, len(run.table("influence")))
    checks = _follow_ups(run_store().runs(), run.id)
    chosen = st.session_state.get("influence_check")
    shown = next((r for r in checks if r.id == chosen), checks[0] if checks else None)
    if shown is not None:
        with st.container(border=True, key="influence_check_result"):
            if shown.status in ("queued", "running"):
                run_view(shown.id, "influence_check_view")
            else:
                verdict = verdict_card(shown, "influence_check")
                check_panel(shown, metric_name, card=verdict is not None and verdict.proof is not None)
    with st.expander("Every metric", icon=":material/table:"):
        st.dataframe(rounded_metrics(m), hide_index=True)


def main() -> None:
    st.title("Influence of training data")
    st.caption("Which training images helped or hurt a GAN's quality (Terashita et al., *Influence Estimation for "
               "GANs*): training continues k epochs while every step is logged, then the log is walked back "
               "with exact Jacobian products to credit each image with its effect on the metric.")
    bundle = active_model() if st.session_state.get("model_spec") else None
    if not isinstance(bundle, GANBundle) or bundle.discriminator is None:
        no_gan_notice()
        return
    spec = st.session_state["model_spec"]
    data = training_data(bundle)
    with st.container(border=True):
        config, seed = settings_form(bundle)
        if st.button("Estimate influence", key="influence_start", type="primary", icon=":material/play_arrow:"):
            with guarded():
                start(bundle, spec, config, seed)
        st.code(influence_command(spec, config, seed, **inputs()), language="bash", wrap_lines=True)
    runs = _estimates(run_store().runs(), spec)
    if not runs:
        return
    ids = [r.id for r in runs]
    chosen = st.session_state.get("influence_run")
    st.subheader("Estimate")
    run_id = st.selectbox("Run", ids, index=ids.index(chosen) if chosen in ids else 0, key="influence_pick",
                          help="Influence runs of this model, newest first; a finished one can be checked later.")
    st.session_state["influence_run"] = run_id
    run = run_store().get(run_id)
    if run.status != "succeeded":
        run_view(run_id, "influence_view")
        return
    result_panel(run, data)


with guarded():
    main()
