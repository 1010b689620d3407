"""Redact: make a pretrained GAN stop generating a set of samples (Kong & Chaudhuri 2023), live.

Choose what to redact (labels, an attribute expression, a forget set, boundary artifacts, label ambiguity; several
at once), the algorithm and its hyperparameters (the paper's defaults shown), run it in the background and watch
the invalidity curve, quality curves and the redaction film; compare algorithms and the deletion baseline on one
chart; keep or download the redacted model; read the redaction-score analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.data.selection import list_selections, load_selection
from core.data import is_data_path
from core.methods.redaction import (ALGORITHMS, RedactionConfig, RedactionContext, dataset_judges, deletion_job,
                                    preflight, redaction_command, redaction_context, redaction_job)
from core.methods.redaction.measure import film_latents
from core.methods.redaction.reports import checkpoint_history, is_redaction, run_film, run_label, run_scores
from core.methods.redaction.scores import extremes, label_difficulty, linear_fit
from core.methods.redaction.sets import Judges
from core.models.archive import zip_model
from core.models.bundles import GANBundle
from core.runs import RunRecord
from core.runs.verdict import Measure, time_text, verdict_of
from core.runs.words import model_words, run_words
from core.viz.images import image_grid
from core.viz.redaction import (film_figure, invalidity_figure, label_difficulty_figure, losses_figure,
                                metric_figure, redaction_score_figure)
from pages._common import (active_model, data_spec, dataset, device_name, guarded, judge_spec, model_dataset, pixel_scale,
                           pretrained, progress_bar, require_app_shell, run_store, runner, scroll_here)
from pages._verdict import verdict_card
from pages._forget_set import forget_ids

require_app_shell()

ALGORITHM_NAMES = {"data": "Data-based (Alg. 1)", "validity": "Validity-based (Alg. 2)",
                   "classifier": "Classifier-based (Alg. 3)"}
KINDS = ("Labels", "Attribute expression", "Forget set", "Boundary artifacts", "Label ambiguity")


@st.cache_resource(show_spinner="Loading the dataset's judges...", max_entries=4)
def judges_for(data_name: str | None, device: str, judge: str | None = None, shape: tuple | None = None) -> Judges:
    return dataset_judges(data_name if data_name and not is_data_path(data_name) else None, device, judge, shape)


def _ranges(ids: list[int]) -> str:
    """1,2,3,7 -> '1-3,7': the compact form `ids=` specs accept."""
    parts, start = [], None
    for i, v in enumerate(ids):
        if start is None:
            start = v
        if i + 1 == len(ids) or ids[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ",".join(parts)


def forget_spec(data, judges: Judges) -> str:
    """The `--forget` spec the widgets describe (parts joined by ' + ', redacted together)."""
    available = [k for k in KINDS if (k != "Labels" or judges.labels is not None)
                 and (k != "Attribute expression" or judges.attributes is not None)
                 and (k != "Label ambiguity" or judges.labels is not None)
                 and (k != "Boundary artifacts" or data.is_image)]
    default = [available[0]] if available else []
    kinds = st.pills("Redact", available, selection_mode="multi", default=default, key="redact_kinds",
                     help="Pick several to redact their union (paper Sec. III-D).") or []
    parts = []
    if "Labels" in kinds:
        names = judges.labels.class_names
        labels = st.multiselect("Labels", list(range(len(names))), default=[0], key="redact_labels",
                                format_func=lambda k: f"{k}: {names[k]}" if names[k] != str(k) else str(k))
        if labels:
            parts.append("label=" + ",".join(str(v) for v in labels))
    if "Attribute expression" in kinds:
        expr = st.text_input("Attribute expression", value="glasses & ~smile", key="redact_attr",
                             help=f"Attributes: {', '.join(judges.attributes.class_names)}; & and, | or, ~ not.")
        if expr.strip():
            parts.append(f"attr={expr.strip()}")
    if "Forget set" in kinds:
        saved = [n for n in list_selections() if load_selection(n).dataset == data.name]
        building = sorted(forget_ids(data.name))
        options = ([f"being built ({len(building)} samples)"] if building else []) + saved
        if not options:
            st.info("No forget set for this dataset yet: build one on **Data & forget sets** (click images, filter, "
                    "lasso), then come back.", icon=":material/photo_library:")
        else:
            chosen = st.selectbox("Forget set", options, key="redact_saved")
            parts.append(f"ids={_ranges(building)}" if chosen.startswith("being built") else f"saved={chosen}")
    if "Boundary artifacts" in kinds:
        margin = st.radio("Boundary margin (pixels)", (1, 2), horizontal=True, key="redact_margin")
        parts.append(f"boundary={margin}")
    if "Label ambiguity" in kinds:
        parts.append("ambiguity")
    return " + ".join(parts)


def config_form(key: str = "redact") -> tuple[RedactionConfig, int]:
    """Algorithm and hyperparameters, the paper's MNIST defaults (App. D-E) pre-filled."""
    d = RedactionConfig()
    algorithm = st.segmented_control("Algorithm", ALGORITHMS, default=d.algorithm, key=f"{key}_algorithm",
                                     format_func=ALGORITHM_NAMES.get) or d.algorithm
    c = st.columns(5)
    epochs = c[0].number_input("Epochs", 1, 200, d.epochs, key=f"{key}_epochs")
    lam = c[1].number_input("λ (share of G in p_fake)", 0.05, 1.0, d.lam, 0.05, key=f"{key}_lam", format="%.2f")
    alpha_pos = c[2].number_input("α+", 0.55, 1.0, d.alpha_pos, 0.01, key=f"{key}_alpha_pos", format="%.2f")
    alpha_neg = c[3].number_input("α−", 0.0, 0.45, d.alpha_neg, 0.01, key=f"{key}_alpha_neg", format="%.2f")
    seed = c[4].number_input("Seed", 0, 10_000, 0, key=f"{key}_seed")
    with st.expander("More hyperparameters", icon=":material/tune:"):
        m = st.columns(5)
        t = m[0].number_input("T (queries per round)", 1, 100_000, d.queries_per_round, key=f"{key}_T",
                              disabled=algorithm != "validity", help="Alg. 2 only: validity queries per epoch.")
        tau = m[1].number_input("τ (classifier threshold)", 0.05, 0.95, d.tau, 0.05, key=f"{key}_tau", format="%.2f")
        k_d = m[2].number_input("K_D", 0, 10, d.k_d, key=f"{key}_k_d")
        k_g = m[3].number_input("K_G", 1, 10, d.k_g, key=f"{key}_k_g")
        lr = m[4].number_input("Learning rate", 1e-6, 1e-2, d.lr, format="%.1e", key=f"{key}_lr")
        n = st.columns(3)
        eval_samples = n[0].number_input("Samples per measurement", 1000, 50_000, d.eval_samples, 1000,
                                         key=f"{key}_eval", help="The paper measures on 50,000 samples.")
        batch = n[1].number_input("Batch size", 8, 512, d.batch_size, key=f"{key}_batch")
        fixed = n[2].toggle("Keep D fixed (App. H)", key=f"{key}_fixed",
                            help="Update only G: G learns to fool D and f at once (on-manifold adversarial samples).")
    config = RedactionConfig(algorithm=algorithm, epochs=int(epochs), lam=float(lam), alpha_pos=float(alpha_pos),
                             alpha_neg=float(alpha_neg), queries_per_round=int(t), tau=float(tau), k_d=int(k_d),
                             k_g=int(k_g), lr=float(lr), eval_samples=int(eval_samples), batch_size=int(batch),
                             fixed_discriminator=bool(fixed))
    return config, int(seed)


def context_for(spec: str, forget: str, device: str, tau: float) -> RedactionContext:
    """The redaction context of a spec with the data and judge picked in the sidebar."""
    gan = pretrained(spec, device)
    return _context(spec, forget, device, tau, model_dataset(gan), judge_spec())


@st.cache_resource(show_spinner="Building the redaction set...", max_entries=8)
def _context(spec: str, forget: str, device: str, tau: float, data_name: str, judge: str | None) -> RedactionContext:
    """The redaction context, built once per (model, set, tau, data, judge): a nearest-neighbour set embeds the
    whole training split, which should not happen on every rerun of the page. Read-only, shared with jobs."""
    gan = pretrained(spec, device)
    preflight(gan, forget, data_name)
    judges = judges_for(data_name, device, judge, tuple(gan.data_shape))
    preflight(gan, forget, data_name, judges)
    return redaction_context(gan, forget, tau, data=dataset(data_name, "train"), judges=judges)


@st.cache_data(show_spinner="Finding pre-trained samples inside the redaction set...", max_entries=16)
def invalid_examples(spec: str, forget: str, device: str, tau: float) -> np.ndarray:
    """Up to 16 pre-trained samples in Omega: what the redaction film will follow."""
    gan = pretrained(spec, device)
    z = film_latents(gan, context_for(spec, forget, device, tau).redaction_set, 16, seed=2)
    with torch.no_grad():
        return gan.generate(z).cpu().numpy()


def start_panel(gan: GANBundle, spec: str) -> None:
    data = dataset(model_dataset(gan), "train")
    judges = judges_for(model_dataset(gan), device_name(), judge_spec(), tuple(gan.data_shape))
    with st.container(border=True):
        st.markdown("##### What to redact")
        forget = forget_spec(data, judges)
        st.markdown("##### How")
        config, seed = config_form()
        if not forget:
            st.warning("Pick at least one set to redact.", icon=":material/warning:")
            return
        ctx = context_for(spec, forget, device_name(), config.tau)
        members = ctx.redaction_set.training_omega(data, config.algorithm, config.tau)
        st.caption(f"**Ω** = {ctx.redaction_set.name} · {int(members.sum()):,} of {len(data):,} training samples fall "
                   f"in Ω as the {config.algorithm}-based algorithm defines it; the rest are real data.")
        if data.is_image:
            examples = invalid_examples(spec, forget, device_name(), config.tau)
            st.image(image_grid(examples, ncol=16, scale=max(1, pixel_scale(examples) // 2)),
                     caption="pre-trained samples in Ω (the film follows the first rows)")
        go_col, base_col, epochs_col = st.columns([2, 2, 1], vertical_alignment="bottom")
        deletion_epochs = epochs_col.number_input("Retrain epochs", 1, 500, None, key="redact_deletion_epochs",
                                                  placeholder="zoo recipe's",
                                                  help="Empty: the zoo recipe's own epochs (a full retrain).")
        correlated = st.checkbox("Deletion baseline also deletes the samples correlated with X ∩ Ω (Table III)",
                                 key="redact_deletion_correlated", disabled=not data.is_image)
        params = {"forget": forget, "redaction_set": ctx.redaction_set.name, **config.__dict__}
        params.update({k: v for k, v in (("data", data_spec()), ("judge", judge_spec())) if v})
        if go_col.button("Run redaction", type="primary", icon=":material/play_arrow:", key="redact_start",
                         width="stretch"):
            run_id = runner().start(redaction_job(gan, ctx, config, seed), method="redact", model=spec,
                                    params=params, seed=seed, device=device_name())
            st.session_state["redact_run"] = run_id  # the run picker (drawn later in this rerun) shows it
            st.session_state["redact_scroll"] = True
        if base_col.button("Run deletion baseline", icon=":material/restart_alt:", key="redact_deletion",
                           width="stretch", help="Retrain from scratch without X ∩ Ω (the paper's baseline)."):
            variant = "correlated" if correlated else "exact"
            job = deletion_job(gan, ctx, config.algorithm, config.tau, seed,
                               int(deletion_epochs) if deletion_epochs else None, config.eval_samples, variant)
            run_id = runner().start(job, method="redact", model=spec, seed=seed, device=device_name(),
                                    params={**params, "baseline": "deletion", "epochs": deletion_epochs,
                                            "deletion_variant": variant})
            st.session_state["redact_run"] = run_id
            st.session_state["redact_scroll"] = True
        st.caption("The same run from a terminal (every setting above that differs from the paper's defaults):")
        own = {"data": data_spec(), "judge": judge_spec()}
        st.code(redaction_command(spec, forget, config, seed, **own), language="bash", wrap_lines=True)
        with st.expander("Command of the deletion baseline", icon=":material/terminal:"):
            st.code(redaction_command(spec, forget, config, seed, int(deletion_epochs) if deletion_epochs else None,
                                      baseline=True, deletion_variant="correlated" if correlated else "exact", **own),
                    language="bash", wrap_lines=True)


def _redaction_runs(spec: str) -> list[RunRecord]:
    return [r for r in run_store().runs() if is_redaction(r) and r.config.get("model") == spec]


def draw_progress(run: RunRecord, live: bool) -> None:
    """Status, progress bar, invalidity and quality curves, and the film of one run."""
    head = st.columns([4, 1])
    head[0].markdown(f"**{run_words(run.config)}** on `{model_words(run.config.get('model', ''))}` · "
                     f"{run.status} · `{run.id}`")
    if live and head[1].button("Cancel", key=f"redact_cancel_{run.id}", icon=":material/stop_circle:"):
        runner().cancel(run.id)
        st.toast(f"Asked {run.id} to stop")
    progress_bar(run, unit="training step")
    if run.status in ("failed", "interrupted"):
        err = run.error or {}
        st.error(f"**{err.get('message') or 'The run stopped.'}**\n\n{err.get('hint') or ''}", icon=":material/error:")
    if not live:
        verdict_card(run, "redact")
    history = checkpoint_history(run)
    if history.empty:
        st.caption("Waiting for the first measurement...")
        return
    left, middle, right = st.columns(3)
    left.plotly_chart(invalidity_figure({run_label(run): history}, title="invalidity"), key=f"inv_{run.id}_{live}",
                      width="stretch")
    quality = [c for c in history.columns if c.startswith(("IS[", "FID["))]
    if quality:
        middle.plotly_chart(metric_figure({run_label(run): history}, quality[-1], title=quality[-1]),
                            key=f"q_{run.id}_{live}", width="stretch")
    right.plotly_chart(losses_figure(history, title="losses"), key=f"loss_{run.id}_{live}", width="stretch")
    film = run_film(run)
    if film is not None:
        frames, epochs = film
        st.plotly_chart(film_figure(frames, epochs, scale=2, title="redaction film: rows are fixed latents that "
                                                                    "were in Ω at the start"),
                        key=f"film_{run.id}_{live}", width="stretch")


@st.fragment(run_every=2.0)
def live_progress(run_id: str) -> None:
    run = run_store().get(run_id)
    draw_progress(run, live=True)
    if run.status not in ("queued", "running"):
        st.rerun()


def compare_panel(runs: list[RunRecord]) -> None:
    finished = [r for r in runs if r.status == "succeeded"]
    if not finished:
        st.caption("Finished runs of this model appear here, to compare algorithms and the deletion baseline.")
        return
    labels = {run_label(r): r for r in finished}
    known = st.session_state.get("redact_compare_known", [])
    fresh = [label for label in labels if label not in known]
    if fresh:  # a run that just finished joins the comparison; the user's other picks stay
        kept = [label for label in st.session_state.get("redact_compare", []) if label in labels]
        st.session_state["redact_compare"] = (fresh + kept)[:6]
        st.session_state["redact_compare_known"] = list(labels)
    chosen = st.multiselect("Runs", list(labels), key="redact_compare")
    picked = [labels[c] for c in chosen]
    redactions = {run_label(r): checkpoint_history(r) for r in picked
                  if r.config.get("params", {}).get("baseline") != "deletion"}
    deletions = {run_label(r): float(r.metrics["invalidity_after"]) for r in picked
                 if r.config.get("params", {}).get("baseline") == "deletion"}
    if redactions or deletions:
        st.plotly_chart(invalidity_figure(redactions, deletions, title="invalidity: redaction runs and deletion "
                                                                      "baselines (dashed)"),
                        key="redact_compare_inv", width="stretch")
        metric = next((c for h in redactions.values() for c in h.columns if c.startswith("IS[")), None)
        metric = metric or next((c for h in redactions.values() for c in h.columns if c.startswith("FID[")), None)
        if metric:
            short = "is_after" if metric.startswith("IS[") else "fid_after"
            levels = {run_label(r): float(r.metrics[short]) for r in picked
                      if r.config.get("params", {}).get("baseline") == "deletion" and short in r.metrics}
            st.plotly_chart(metric_figure(redactions, metric, levels, title=metric), key="redact_compare_q",
                            width="stretch")
    # A static table whose text wraps, one column per measure ("before → after (change)"), so it fits the page.
    st.table(pd.DataFrame([compare_row(r) for r in picked]).fillna(""), hide_index=True, border="horizontal")


def compare_header(m: Measure) -> str:
    """A compare-table column name with its unit and the better direction: "invalidity (% of samples, lower is
    better)", "FID[mnist-lenet] (lower is better)"."""
    about = ["% of samples"] if m.percent else []
    about += [f"{m.better} is better"] if m.better else []
    return f"{m.name} ({', '.join(about)})" if about else m.name


def compare_cell(m: Measure) -> str:
    """before → after ± uncertainty (change), the unit left to the header: "10.1 → 3.5 ± 0.9 (-65%)",
    "7.92 → 7.58 (-0.34, -4%)"."""
    def bare(value: float | None, pm: float | None = None) -> str:
        return m.text(value, pm).replace("%", "")

    change = m.change_text().replace(" (", ", ").rstrip(")")
    return f"{bare(m.before)} → {bare(m.after, m.after_pm)}" + (f" ({change})" if change else "")


def compare_row(run: RunRecord) -> dict[str, str]:
    """One run of the compare table: what it forgot and how, each verdict measure, the time."""
    verdict = verdict_of(run)
    row = {"run": run_words(run.config, run.id)}
    for m in ((verdict.headline, *verdict.quality) if verdict else ()):
        row[compare_header(m)] = compare_cell(m)
    row["time"] = time_text(verdict.seconds if verdict else run.duration)
    return row


def _open_in_explore(path: str) -> None:
    st.session_state["pick_source"] = "Folder"
    st.session_state["pick_path"] = path


def keep_panel(run: RunRecord) -> None:
    if not run.model_spec:
        return
    cols = st.columns(3)
    cols[0].download_button("Download the redacted model (.zip)", zip_model(run.model_spec),
                            file_name=f"{run.id}-model.zip", mime="application/zip", key=f"redact_dl_{run.id}",
                            icon=":material/download:", width="stretch")
    if cols[1].button("Open it in Explore", key=f"redact_open_{run.id}", on_click=_open_in_explore,
                      args=(run.model_spec,), icon=":material/image_search:", width="stretch"):
        st.switch_page("pages/explore.py")
    cols[2].code(run.model_spec, language=None)


def scores_panel(run: RunRecord, runs: list[RunRecord], data) -> None:
    scores = run_scores(run)
    if scores is None:
        st.caption("This run saved no redaction scores (Ω holds no training sample).")
        return
    column = st.segmented_control("Score", ("rs", "rs_rel"), default="rs", key="redact_score_kind",
                                  format_func={"rs": "RS = D0 − D'", "rs_rel": "relative RS"}.get) or "rs"
    fit = linear_fit(scores["d0"], scores[column])
    st.plotly_chart(redaction_score_figure(scores, fit, column, title=f"{len(scores)} samples of X ∩ Ω · "
                                                                      f"slope {fit.slope:.2f}, R² {fit.r2:.2f}"),
                    key="redact_scores", width="stretch")
    if data.is_image:
        easiest, hardest = extremes(scores, k=12, column=column)
        rows = {int(i): k for k, i in enumerate(data.ids.tolist())}
        for frame, caption in ((easiest, "easiest to redact (largest score)"),
                               (hardest, "hardest to redact (smallest score)")):
            x = data.x[[rows[int(i)] for i in frame["id"]]]
            st.image(image_grid(x, ncol=12, scale=max(1, pixel_scale(x) // 2)), caption=caption)
    labelled = [run_scores(r) for r in runs if r.status == "succeeded" and run_scores(r) is not None]
    labelled = [s for s in labelled if "label" in s]
    if len(labelled) > 1:
        table = label_difficulty(pd.concat(labelled, ignore_index=True))
        st.plotly_chart(label_difficulty_figure(table, title="label-level difficulty across this model's runs"),
                        key="redact_labels_difficulty", width="stretch")


def main() -> None:
    st.title("Redact")
    st.caption("Post-edit a pretrained GAN so it stops generating a set of samples (Kong & Chaudhuri, *Data "
               "Redaction from Pre-trained GANs*, 2023). The original model is never changed: every run edits a copy.")
    gan = active_model()
    if gan is None:
        return
    spec = st.session_state["model_spec"]
    if not isinstance(gan, GANBundle) or gan.conditional:
        st.info(f"`{spec}` is a {'conditional GAN' if isinstance(gan, GANBundle) else gan.family}; redaction works "
                "on unconditional GANs. Pick **mnist-dcgan** (or synthfaces-dcgan) in the sidebar.",
                icon=":material/arrow_back:")
        return
    with guarded():
        start_panel(gan, spec)
    runs = _redaction_runs(spec)
    if not runs:
        return
    ids = [r.id for r in runs]
    if st.session_state.get("redact_run") not in ids:
        st.session_state["redact_run"] = ids[0]
    labels = {r.id: run_words(r.config, r.id) for r in runs}
    st.subheader("Run", anchor="redact-live-run")
    if st.session_state.pop("redact_scroll", False):
        scroll_here("redact-live-run")
    focus = st.selectbox("Run", ids, key="redact_run", format_func=labels.get)
    run = run_store().get(focus)
    with st.container(border=True), guarded():
        if run.status in ("queued", "running"):
            live_progress(run.id)
        else:
            draw_progress(run, live=False)
            keep_panel(run)
    tabs = st.tabs(["Compare runs", "Redaction scores"])
    with tabs[0], guarded():
        compare_panel(runs)
    with tabs[1], guarded():
        scores_panel(run, runs, dataset(model_dataset(gan), "train"))


with guarded():
    main()
