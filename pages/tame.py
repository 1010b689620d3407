"""Tame: make a normalizing flow forget (or emphasise) a person, an image, a saved forget set or an attribute, or
push an attribute's share of samples toward a target (taming paper). Runs in the background; watch the forget
images' NLLs move to the threshold, the stopping criterion and fixed-latent samples live; compare runs and
ablations; download the tamed model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.data.selection import list_selections, load_selection
from core.methods.taming import (ABLATIONS, TamingConfig, best_model_spec, job_inputs, job_params, taming_command,
                                 taming_job)
from core.models.archive import zip_model
from core.models.bundles import FlowBundle
from core.runs import RunRecord
from core.runs.events import EVENT_COLUMNS
from core.runs.words import model_words, run_words
from core.viz.runs import metric_panels
from core.viz.images import image_grid
from core.viz.taming import live_nll_figure, nll_histogram_figure, quantile_table, toy_figure
from pages._common import (active_model, data_spec, device_name, draw_run, guarded, heldout_spec, judge_spec,
                           keep_selection, live_figure, LIVE_SECONDS, pixel_scale, progress_bar, remember_selection,
                           require_app_shell, rounded_metrics, run_store, runner, scroll_here, shipped_zoo,
                           training_data)
from pages._verdict import verdict_card
from pages._forget_set import forget_ids

require_app_shell()

TARGETS = ("Identity", "Attribute", "Label", "Picked images", "Saved forget set")
ATTRIBUTE_SOURCES = {"attr=": "training images with it (the paper)",
                     "samples:": "the flow's own samples with it (counterfactual)"}
DIRECTIONS = {"forget": "Forget (lower its likelihood)", "emphasize": "Emphasise (raise it)",
              "target": "Target share (debias)"}
# Live panels, one metric each (core.viz.runs): eq. 10's distances first, then what the remember loss keeps.
LIVE_CURVES = ("distance_max_abs", "distance_checked_max_abs", "within_epsilon", "share", "share_confident",
               "share_unsure", "kl_forward", "kl_reverse", "remember_bpd", "distance_mean")
LIVE_COST = ("The run computes in a worker process of its own, as `python -m core tame` does, so drawing this page "
             "no longer holds it up (in the app's process it lost up to 0.36 s per iteration of 0.7 s to the charts "
             "holding Python's GIL, and its torch workers waited longer between operations). The live view still "
             "takes the CPU time of its redraws (numbers every 2 s, charts every 10 s) from the cores the run uses: "
             "turn it off on a busy machine. `bench/taming.py --speed` measures the command line, the worker and "
             "the worker with the live view.")


def _use_flow(name: str) -> None:
    st.session_state["pick_source"] = "Zoo"
    st.session_state["pick_zoo"] = name


def no_flow_notice() -> None:
    st.info("Taming works on normalizing flows: pick one in the sidebar.", icon=":material/arrow_back:")
    flows = [n for n in shipped_zoo() if n.endswith("-flow")]
    cols = st.columns(max(1, len(flows)))
    for col, name in zip(cols, flows):
        col.button(f"Use {name}", key=f"tame_use_{name}", on_click=_use_flow, args=(name,))


def target_form(data) -> tuple[str | None, str]:
    """Widgets for what to tame; returns (forget spec, description)."""
    options = [t for t in TARGETS if not (t == "Identity" and data.identities is None)
               and not (t == "Attribute" and data.attributes is None)
               and not (t == "Label" and data.labels is None)]
    kind = st.segmented_control("What", options, default=options[0], key="tame_kind") or options[0]
    if kind == "Identity":
        ident = st.number_input("Identity", min_value=0, max_value=int(data.identities.max()), value=17, step=1,
                                key="tame_identity", help="Its training images are D_F; its test images are D'_F.")
        rows = data.identities == int(ident)
        st.image(image_grid(data.x[rows][:20], ncol=20, scale=max(2, pixel_scale(data.x) // 2)),
                 caption=f"the {int(rows.sum())} training images of identity {int(ident)}")
        return f"identity={int(ident)}", f"identity {int(ident)}"
    if kind == "Attribute":
        expr = st.text_input("Attribute expression", value="glasses", key="tame_attr",
                             help="Attributes: " + ", ".join(data.attribute_names) + ". Combine with & | ~ ( ).")
        source = st.radio("D_F (the images to forget)", list(ATTRIBUTE_SOURCES), key="tame_attr_source",
                          format_func=ATTRIBUTE_SOURCES.get, horizontal=True,
                          help="The paper (Sec. 4.2) takes the training images the attribute classifier finds it "
                               "in. The counterfactual takes the flow's own samples (2,000 at T = 0.7) that the "
                               "classifier is sure carry it, so the flow forgets what it draws.")
        if not expr.strip():
            return None, ""
        return f"{source}{expr.strip()}", ("samples read as " if source == "samples:" else "attribute ") + expr.strip()
    if kind == "Label":
        names = data.class_names or tuple(str(k) for k in range(int(data.labels.max()) + 1))
        label = st.selectbox("Label", list(range(len(names))), key="tame_label", format_func=lambda k: names[k])
        return f"label={label}", f"label {names[label]}"
    if kind == "Picked images":
        ids = sorted(forget_ids(data.name))
        if not ids:
            st.warning("No images picked yet: click images on the **Data & forget sets** page, then come back.")
            st.page_link("pages/data.py", label="Pick images", icon=":material/photo_library:")
            return None, ""
        chosen = data.subset(torch.isin(data.ids, torch.tensor(ids)))
        if data.is_image:
            st.image(image_grid(chosen.x[:30], ncol=15, scale=max(1, pixel_scale(data.x) // 2)),
                     caption=f"{len(ids)} picked images")
        return "ids=" + ",".join(map(str, ids)), f"{len(ids)} picked images"
    saved = [n for n in list_selections() if load_selection(n).dataset == data.name]
    if not saved:
        st.warning(f"No saved forget set for {data.name} yet: build and save one on **Data & forget sets**.")
        return None, ""
    name = st.selectbox("Saved forget set", saved, key="tame_saved")
    return f"saved={name}", f"saved set {name}"


def settings_form(bundle) -> tuple[TamingConfig, str, str, int]:
    """Direction, threshold, weights and the ablation; returns (config, remember, ablation, seed)."""
    defaults = TamingConfig()
    cols = st.columns([2, 1, 1])
    direction = cols[0].radio("Direction", list(DIRECTIONS), format_func=DIRECTIONS.get, key="tame_direction",
                              horizontal=True)
    target = None
    if direction == "target":
        target = cols[1].slider("Target share", 0.0, 1.0, 0.15, step=0.01, key="tame_target",
                                help="Taming forgets or emphasises until this share of samples carries the "
                                     "attribute (or label).")
    delta = cols[2 if direction == "target" else 1].number_input(
        "Threshold δ (σ_R)", min_value=0.1, value=defaults.delta, step=0.5, key="tame_delta",
        help="Forget images are pushed to μ_R + δσ_R (paper: δ = 4).")
    with st.expander("Weights, stopping and ablations", icon=":material/tune:"):
        c = st.columns(4)
        alpha = c[0].number_input("α (forget weight)", 0.01, 1.0, defaults.alpha, step=0.05, key="tame_alpha")
        gamma = c[1].number_input("γ (KL weight in L_R)", 0.0, 1.0, defaults.gamma, step=0.05, key="tame_gamma")
        epsilon = c[2].number_input("ε (stop within ε σ_R)", 0.01, 2.0, defaults.epsilon, step=0.05, key="tame_eps")
        lr = c[3].number_input("Learning rate", 1e-6, 1e-2, defaults.lr, step=1e-5, format="%.5f", key="tame_lr")
        c = st.columns(4)
        max_it = c[0].number_input("Max iterations", 1, 5000, defaults.max_iterations, step=50, key="tame_max_it")
        ablation = c[1].selectbox("Ablation (Table 2)", list(ABLATIONS), key="tame_ablation")
        remember = c[2].text_input("Remember set", "train", key="tame_remember",
                                   help="train (D minus D_F), test, or test:SPEC such as test:attr=hat "
                                        "(Sec. 4.3: taming without the training set).")
        seed = c[3].number_input("Seed", 0, 10_000, 0, step=1, key="tame_seed")
    config = TamingConfig(delta=delta, alpha=alpha, gamma=gamma, epsilon=epsilon, lr=lr, max_iterations=int(max_it),
                          direction="forget" if direction == "target" else direction, target_share=target,
                          **ABLATIONS[ablation])
    if len(bundle.data_shape) == 1:  # a 2-D toy: bigger batches cost nothing
        config.remember_batch, config.forget_batch = 128, 128
    return config, remember.strip() or "train", ablation, int(seed)


def start(bundle, spec: str, forget: str, config: TamingConfig, remember: str, ablation: str, seed: int) -> None:
    config.validate()
    data, heldout, judge = data_spec(), heldout_spec(), judge_spec()  # the sidebar's own data and judge
    inputs = job_inputs(bundle, data, judge, device_name(), heldout)
    own = {"data": data, "heldout": heldout, "judge": judge}
    params = {**job_params(forget, config, remember, ablation), **{k: v for k, v in own.items() if v}}
    run_id = runner().start(taming_job(bundle, forget, config, seed=seed, remember=remember, **inputs), method="tame",
                            model=spec, params=params, seed=seed, device=device_name())
    st.session_state["tame_run"] = run_id
    st.session_state["tame_scroll"] = True


def _latest(events: pd.DataFrame, run: RunRecord) -> tuple[dict, np.ndarray | None, np.ndarray | None]:
    """Latest value of every metric of the run, the first (base) and latest (tamed) preview images."""
    if events.empty:
        return {}, None, None
    numbers = events.drop(columns=[c for c in EVENT_COLUMNS if c in events]).select_dtypes("number")
    last = numbers.ffill().iloc[-1] if len(numbers.columns) else pd.Series(dtype=float)
    metrics = {k: float(v) for k, v in last.items() if not pd.isna(v)}
    first = latest = None
    with_images = events["images"].dropna() if "images" in events else pd.Series(dtype=object)
    if len(with_images):
        first, latest = run.images(with_images.iloc[0]), run.images(with_images.iloc[-1])
    return metrics, first, latest


def live_panel(run: RunRecord, events: pd.DataFrame | None = None, live: bool = False) -> None:
    """The stopping criterion, where the forget NLLs sit relative to the threshold, curves and samples (while
    `live`, the charts are rebuilt every CHART_SECONDS, the numbers on every redraw)."""
    events = run.events() if events is None else events
    metrics, first, last = _latest(events, run)
    params = run.config.get("params", {})
    delta, epsilon = float(params.get("delta", 4.0)), float(params.get("epsilon", 0.15))
    direction = params.get("direction", "forget")
    m = st.columns(4)
    if "distance_max_abs" in metrics:
        m[0].metric("max |d| (σ_R)", f"{metrics['distance_max_abs']:.2f}",
                    help=f"eq. 10: the run stops when every forget image is within ε = {epsilon} σ_R of the "
                         "threshold. "
                         "This tile is the training batch's estimate (one antithetic dequantization pair per image); "
                         "the stop is judged on 8 pairs with fresh μ_R, σ_R (distance_checked_max_abs below).")
        m[1].metric("within ε", f"{metrics.get('within_epsilon', 0):.0%}")
    if "kl_reverse" in metrics:
        m[2].metric("KL fwd + rev", f"{metrics['kl_forward'] + metrics['kl_reverse']:.4f}")
    if "share" in metrics:
        sure = (f"; {metrics['share_confident']:.1%} among the samples the judge is sure of (unsure of "
                f"{metrics['share_unsure']:.0%})" if metrics.get("share_confident") is not None else "")
        m[3].metric("attribute share", f"{metrics['share']:.1%}", help=f"on the monitor's fixed latents{sure}")
    left, right = st.columns([3, 2])
    left.plotly_chart(live_figure(f"tame_live_nll_{run.id}", lambda: live_nll_figure(metrics, delta, direction), live),
                      key=f"tame_live_nll_{run.id}", width="stretch")
    if first is not None and last is not None:
        right.image(image_grid(np.concatenate([first[:8], last[:8]]), ncol=8, scale=2),
                    caption="same latents: base (top), latest tamed (bottom)")
    shown = [c for c in LIVE_CURVES if c in events and events[c].notna().any()]
    if shown:
        st.plotly_chart(live_figure(f"tame_live_curves_{run.id}", lambda: metric_panels(
            {run_words(run.config): events}, "tame", shown, columns=4), live),
                        key=f"tame_live_curves_{run.id}", width="stretch")


@st.fragment(run_every=LIVE_SECONDS)
def live_run(run_id: str) -> None:
    run = run_store().get(run_id)
    events = run.events()  # read once per redraw, for the progress bar and the panel
    draw_run_head(run, live=True, events=events)
    if st.session_state.get("tame_live_charts", True):
        live_panel(run, events, live=True)
    if run.status not in ("queued", "running"):
        st.rerun()


def draw_run_head(run: RunRecord, live: bool, events: pd.DataFrame | None = None) -> None:
    head = st.columns([4, 1])
    head[0].markdown(f"**{run_words(run.config)}** on `{model_words(run.config.get('model', ''))}` · "
                     f"{run.status} · `{run.id}`")
    if live and head[1].button("Cancel", key=f"tame_cancel_{run.id}", icon=":material/stop_circle:"):
        runner().cancel(run.id)
    progress_bar(run, events, unit="iteration", cap=True)


def _figure(run: RunRecord, name: str):
    path = run.path / "figures" / name
    return path if path.exists() else None


def result_panel(run: RunRecord) -> None:
    """A finished run: Table 1's quantiles, BPD/FID/normality, the NLL histograms, fixed latents, downloads."""
    if run.status != "succeeded":
        draw_run(run, key="tame_result", live=False)
        return
    m = run.metrics
    cols = st.columns(5)
    cols[0].metric("iterations", m.get("iterations"), help=f"stopped by: {m.get('stop_reason')}")
    cols[1].metric("threshold reached", "yes" if m.get("reached_threshold") else "no")
    cols[2].metric("QD on D_F", f"{m.get('qd_forget', 0):.3f}", help="eq. 15: q before minus q after")
    if m.get("bpd_remember_change") is not None:
        cols[3].metric("BPD on D_R", f"{m['bpd_remember_after']:.3f}", f"{m['bpd_remember_change']:+.2%}",
                       delta_color="inverse")
    if m.get("fid_after") is not None:
        against_all = (f"; against D_R and D_F together (the data as it was) {m['fid_all_before']:.2f} -> "
                       f"{m['fid_all_after']:.2f}") if m.get("fid_all_after") is not None else ""
        cols[4].metric(m.get("fid_judge", "FID"), f"{m['fid_after']:.2f}", f"{m['fid_change']:+.1%}",
                       delta_color="inverse", help=f"generated samples against D_R, before {m['fid_before']:.2f}"
                                                   f"{against_all}")
    elif m.get("share_after") is not None:
        cols[4].metric("share", f"{m['share_after']:.1%}", f"{m['share_after'] - m['share_before']:+.1%}")
    st.dataframe(quantile_table(m), hide_index=True, width="stretch")
    normal = m.get("normality_p_before")
    if normal is not None:
        verdict = "consistent with normal" if normal >= 0.05 else "NOT normal: σ units are approximate"
        st.caption(f"Remember NLLs under the base model: {m.get('normality_test')} p = {normal:.3g} ({verdict}); "
                   f"after taming p = {m.get('normality_p_after', float('nan')):.3g}. Forgotten means q below "
                   f"{m.get('q_threshold', 0):.1e} (eq. 13).")
    nlls = _figure(run, "nlls.json")
    if nlls:
        data = json.loads(nlls.read_text())
        st.plotly_chart(nll_histogram_figure(data), key=f"tame_hist_{run.id}", width="stretch")
    grid = _figure(run, "fixed_latents.npy")
    if grid is not None:
        images = np.load(grid)
        half = len(images) // 2
        st.image(image_grid(np.concatenate([images[:half], images[half:]]), ncol=half, scale=3),
                 caption="The same latent vectors through the base model (top row) and the tamed model (bottom row)")
    toy = _figure(run, "toy.json")
    if toy:
        st.plotly_chart(toy_figure(json.loads(toy.read_text())), key=f"tame_toy_{run.id}", width="stretch")
    with st.expander("Every metric", icon=":material/table:"):
        st.dataframe(rounded_metrics(m), hide_index=True)
    if run.model_spec:
        st.download_button("Download the tamed model (.zip)", zip_model(run.model_spec), file_name=f"{run.id}-tamed.zip",
                           mime="application/zip", key=f"tame_download_{run.id}", icon=":material/download:")
        st.caption(f"Saved as `{run.model_spec}`: load it in the sidebar (Folder) to explore it.")
    best_panel(run)


def _load_in_sidebar(path: str) -> None:
    """Make the sidebar load a saved model folder (a callback: it runs before the sidebar widgets exist)."""
    st.session_state["pick_source"] = "Folder"
    st.session_state["pick_path"] = path


def best_panel(run: RunRecord) -> None:
    """The run's best-share model when it kept one beside the final model: where, download, load it."""
    best = best_model_spec(run)
    if best is None:
        return
    m = run.metrics
    st.markdown(f"**Best model by the share**: iteration {m.get('best_share_iteration')} of {m.get('iterations')} "
                f"(share on the evaluation samples {m.get('share_best', float('nan')):.1%}, final "
                f"{m.get('share_after', float('nan')):.1%}).")
    cols = st.columns([3, 2, 3], vertical_alignment="center")
    cols[0].download_button("Download the best model (.zip)", zip_model(best), file_name=f"{run.id}-best.zip",
                            mime="application/zip", key=f"tame_download_best_{run.id}", icon=":material/download:")
    cols[1].button("Load it in the sidebar", key=f"tame_load_best_{run.id}", on_click=_load_in_sidebar, args=(best,),
                   icon=":material/upload:")
    cols[2].caption(f"Saved as `{best}`.")


def compare_panel(runs: list[RunRecord]) -> None:
    """Selected taming runs side by side: key metrics rounded, the ablation each used, curves as small multiples."""
    rows = []
    for r in runs:
        p, m = r.config.get("params", {}), r.metrics

        def num(key: str, digits: int = 3):
            v = m.get(key)
            return round(v, digits) if isinstance(v, (int, float)) and not isinstance(v, bool) else v

        rows.append({"run": run_words(r.config, r.id), "ablation": p.get("ablation"), "lr": p.get("lr"),
                     "status": r.status, "iterations": m.get("iterations"), "reached": m.get("reached_threshold"),
                     "QD D_F": num("qd_forget"), "QD D'_F": num("qd_holdout"), "QD D_R": num("qd_remember", 4),
                     "BPD D_R": num("bpd_remember_after"), "FID": num("fid_after", 2), "share": num("share_after"),
                     "sure share": num("share_confident_after"), "best share": num("share_best"),
                     "best at": m.get("best_share_iteration"),
                     "seconds": num("seconds", 0)})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    frames = {run_words(r.config, r.id): r.events() for r in runs}
    st.plotly_chart(metric_panels(frames, "tame", [c for c in LIVE_CURVES[:4]
                                                   if any(c in f and f[c].notna().any() for f in frames.values())]),
                    key="tame_compare_curves", width="stretch")


def main() -> None:
    st.title("Tame a flow")
    st.caption("Change how likely a normalizing flow finds a person, an image or an attribute (Malnick et al., "
               "*Taming Normalizing Flows*): its NLL is pushed to μ_R + δσ_R of the images it should remember, "
               "while the remember images' NLL distribution is kept (forward and reverse KL).")
    bundle = active_model() if st.session_state.get("model_spec") else None
    if not isinstance(bundle, FlowBundle):
        no_flow_notice()
        return
    spec = st.session_state["model_spec"]
    data = training_data(bundle)
    with st.container(border=True):
        forget, about = target_form(data)
        config, remember, ablation, seed = settings_form(bundle)
        go, live = st.columns([1, 3], vertical_alignment="center")
        if go.button("Start taming", key="tame_start", type="primary", icon=":material/play_arrow:",
                     disabled=forget is None, help="Pick what to tame first." if forget is None else None):
            with guarded():
                start(bundle, spec, forget, config, remember, ablation, seed)
        live.toggle("Live charts while it runs", value=True, key="tame_live_charts",
                    help=LIVE_COST)
        if forget is not None:
            with guarded():
                st.caption("The same run from a terminal:")
                st.code(taming_command(spec, forget, config, remember, ablation, seed, data=data_spec(),
                                       judge=judge_spec(), heldout=heldout_spec()), language="bash", wrap_lines=True)
    run_id = st.session_state.get("tame_run")
    if run_id and run_id in run_store().ids():
        st.subheader("This run", anchor="tame-live-run")
        if st.session_state.pop("tame_scroll", False):
            scroll_here("tame-live-run")
        with st.container(border=True):
            run = run_store().get(run_id)
            if run.status in ("queued", "running"):
                live_run(run_id)
            else:
                draw_run_head(run, live=False)
                verdict_card(run, "tame")  # the verdict first, then how the run got there
                live_panel(run)
                result_panel(run)
    taming_runs = [r for r in run_store().runs() if r.config.get("method") == "tame"]
    if len(taming_runs) >= 1:
        st.subheader("Compare taming runs and ablations")
        ids = [r.id for r in taming_runs]
        same_model = [r.id for r in taming_runs if r.config.get("model") == spec and r.status == "succeeded"]
        labels = {r.id: run_words(r.config, r.id) for r in taming_runs}
        keep_selection("tame_compare", ids, same_model[:4])
        chosen = st.multiselect("Runs", ids, key="tame_compare", format_func=labels.get,
                                help="Defaults to finished runs of this model; kept across pages.")
        remember_selection("tame_compare")
        if chosen:
            compare_panel([r for r in taming_runs if r.id in chosen])


with guarded():
    main()
