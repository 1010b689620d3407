"""GOLD: where a conditional GAN is wrong (Mo et al. 2019). The discriminator's two heads score every generated
and real sample; the page shows the two terms' histograms (Fig. 1a), samples and real images sorted by GOLD and
by each part, best and worst per class (Fig. 2; real images tick into the forget set), rejection sampling with its
acceptance rate, and background runs that measure the fitting capacity with and without it. Real images come from
the model's card or the sidebar's "Data & judge" (your labelled images; held-out ones for the fitting capacity)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import numpy as np
import streamlit as st
import torch

from core.errors import LetheError
from core.methods.gold import (PARTS, ActiveConfig, GoldScores, ReweightConfig, active_job, check_enough,
                               check_gold_model, default_p, extremes, gold_command, part, real_data, rejection_gain,
                               rejection_sample, reweight_job, rounds_table, score, score_generated, validation_split)
from core.methods.inputs import input_params
from core.models.bundles import GANBundle
from core.viz.gold import pool_queries_figure, score_scatter_figure, terms_histogram_figure
from core.viz.images import image_grid
from pages._common import (active_model, data_spec, dataset, device_name, guarded, heldout_spec, judge_spec,
                           model_dataset, pixel_scale, pretrained, require_app_shell, run_store, run_view, runner,
                           shipped_zoo)
from pages._forget_set import gallery

require_app_shell()

GOLD_MODELS = ("mnist-acgan", "fashion-acgan", "toy-acgan")
PART_NAMES = {"gold": "GOLD (eq. 3)", "marginal": "marginal term", "conditional": "conditional term"}


def _use(name: str) -> None:
    st.session_state["pick_source"] = "Zoo"
    st.session_state["pick_zoo"] = name


def gold_model() -> GANBundle | None:
    """The sidebar's model if GOLD can score it; otherwise say why and offer the conditional GANs of the zoo."""
    bundle = active_model()
    if bundle is None:
        return None
    try:
        check_gold_model(bundle)  # type: ignore[arg-type]
        return bundle  # type: ignore[return-value]
    except LetheError as exc:
        st.info(f"**{exc.message}** GOLD reads a conditional GAN's discriminator: its real/fake logit and its "
                "auxiliary classifier.", icon=":material/arrow_back:")
        names = [n for n in GOLD_MODELS if n in shipped_zoo()]
        for col, name in zip(st.columns(max(1, len(names))), names):
            col.button(f"Use {name}", key=f"gold_use_{name}", on_click=_use, args=(name,))
        return None


@st.cache_data(show_spinner="Scoring generated samples...", max_entries=8)
def generated_scores(spec: str, n: int, seed: int):
    """(samples, marginal, conditional, labels) of n fresh samples of the model `spec`."""
    x, s = score_generated(pretrained(spec, device_name()), n, seed=seed)
    return x, s.marginal, s.conditional, s.labels


@st.cache_resource(show_spinner="Loading the held-out images...", max_entries=4)
def test_images(spec: str, data: str | None, heldout: str | None):
    """The real labelled test images of the fitting capacity: the card dataset's test split, or the sidebar's
    held-out images for the user's data (a LetheError saying what is missing otherwise)."""
    return real_data(pretrained(spec, device_name()), "test", data, heldout)


@st.cache_data(show_spinner="Scoring the training images...", max_entries=8)
def real_scores(spec: str, data_name: str, n: int):
    """(marginal, conditional, labels) of the first n training images of `data_name`."""
    data = real_data(pretrained(spec, device_name()), data=data_name)
    s = score(pretrained(spec, device_name()), data.x[:n], data.labels[:n], "real")
    return s.marginal, s.conditional, s.labels


def class_names(bundle: GANBundle, data) -> list[str]:
    names = list(getattr(data, "class_names", ()) or ())
    return names if len(names) == bundle.num_classes else [str(k) for k in range(bundle.num_classes)]


def scores_section(generated, real, names: list[str], chosen: int | None) -> None:
    """Fig. 1a and the means of both terms per set."""
    def pick(s):
        return s if chosen is None else s.subset(s.labels == chosen)

    g, r = pick(generated), pick(real) if real is not None else None
    sets = {"generated": {"marginal": g.marginal, "conditional": g.conditional}}
    if r is not None:
        sets["real (training)"] = {"marginal": r.marginal, "conditional": r.conditional}
    st.plotly_chart(terms_histogram_figure(sets, title=f"GOLD's two terms, {'all classes' if chosen is None else names[chosen]}"),
                    key="gold_hist", width="stretch")
    cols = st.columns(4)
    cols[0].metric("mean GOLD, generated", f"{float(g.gold().mean()):.3f}",
                   help="eq. 3; negative on average: D finds G's samples less likely under the data than under G")
    cols[1].metric("σ_G / σ_C (generated)", f"{g.balance_ratio():.2f}",
                   help="eq. 4's balance: how much wider the marginal term spreads than the conditional one")
    if r is not None:
        cols[2].metric("mean GOLD, real", f"{float(r.gold().mean()):.3f}",
                       help="eq. 3 for real images: high = the model under-represents (fits worst) the image")
        cols[3].metric("real images scored", f"{len(r):,}")


def grids_section(bundle: GANBundle, x, generated, real, data, names: list[str], chosen: int | None) -> None:
    """Fig. 2: per class, the samples with the highest and lowest value of the chosen part."""
    by = st.segmented_control("Sort by", PARTS, default="gold", format_func=PART_NAMES.get, key="gold_by") or "gold"
    k = st.slider("Images per class and side", 4, 16, 8, key="gold_k")
    classes = range(bundle.num_classes) if chosen is None else [chosen]
    ranked = extremes(generated, by, k, bundle.num_classes)
    if x.dim() != 4:
        st.plotly_chart(score_scatter_figure(x, generated.gold() if by == "gold" else getattr(generated, by),
                                             PART_NAMES[by]), key="gold_scatter", width="stretch")
    else:
        scale = max(1, pixel_scale(x) // 2)
        left, right = st.columns(2)
        for column, side, caption in ((left, 0, "highest"), (right, 1, "lowest")):
            rows = [x[ranked[c][side]] for c in classes if len(ranked[c][side])]
            if rows:
                column.image(image_grid(torch.cat(rows), ncol=k, scale=scale),
                             caption=f"generated, {caption} {PART_NAMES[by]} first; one row per class "
                                     f"({', '.join(names[c] for c in classes)})")
    if real is None or x.dim() != 4:
        return
    st.markdown("**Real training images the model fits worst** (highest real GOLD: G under-represents them). "
                "Tick an image to put it in the forget set of the **Data & forget sets** page.")
    real_ranked = extremes(real, by, 24, bundle.num_classes)
    order = torch.cat([real_ranked[c][0] for c in classes])
    order = order[part(real, by)[order].argsort(descending=True)]
    shown = data.subset(order)
    gallery(data, shown, data.name, key="gold_real")


def rejection_section(bundle: GANBundle, spec: str, names: list[str], chosen: int | None, test) -> None:
    """Eq. 6 with the p slider: acceptance rate, accepted vs rejected samples; fitting capacity as a run."""
    cols = st.columns(4)
    p = cols[0].slider("Percentile p of the logit shift", 0.0, 0.95, default_p(bundle), step=0.05, key="gold_p",
                       help="A larger p rejects more (quality over diversity). Paper: 0.1 for 1-channel images, "
                            "0.5 for 3-channel ones.")
    n = int(cols[1].number_input("Samples to draw", 16, 20_000, 256, step=64, key="gold_reject_n"))
    burn = int(cols[2].number_input("Burn-in (fixes M and γ)", 100, 50_000, 5000, step=1000, key="gold_burn_in",
                                    help="The authors use 50,000."))
    seed = int(cols[3].number_input("Seed", 0, 10_000, 0, key="gold_reject_seed"))
    if st.button("Draw with rejection", key="gold_reject", icon=":material/filter_alt:"):
        with guarded(), st.spinner("Rejection sampling..."):
            st.session_state["gold_rejection"] = rejection_sample(bundle, n, p, seed=seed, label=chosen,
                                                                  burn_in_size=burn)
    result = st.session_state.get("gold_rejection")
    st.code(gold_command(spec, "sample", ["-n", str(n), "--reject", f"{p:g}", "--burn-in", str(burn), "--out",
                                          "samples.png"] + ([] if chosen is None else ["--class", str(chosen)]), seed),
            language="bash", wrap_lines=True)
    if result is not None:
        m = st.columns(3)
        m[0].metric("acceptance rate", f"{result.acceptance_rate:.1%}", help=f"{len(result.x)} accepted of "
                                                                               f"{result.proposed} proposed")
        m[1].metric("p", f"{result.calibration.p:g}")
        m[2].metric("seconds", f"{result.seconds:.1f}")
        if result.x.dim() == 4:
            scale = max(1, pixel_scale(result.x) // 2)
            left, right = st.columns(2)
            left.image(image_grid(result.x[:64], ncol=16, scale=scale), caption="accepted")
            if len(result.rejected_x):
                right.image(image_grid(result.rejected_x[:64], ncol=16, scale=scale), caption="rejected")
    with st.expander("Fitting capacity with and without rejection (background run)", icon=":material/model_training:"):
        st.caption("A LeNet trained only on samples of G, tested on the real test split (paper: 50,000 samples, "
                   "40 epochs). Plain and rejection samples get the same size and budget.")
        c = st.columns(3)
        fn = int(c[0].number_input("Samples per set", 500, 50_000, 10_000, step=500, key="gold_fc_n"))
        epochs = int(c[1].number_input("LeNet epochs", 1, 40, 5, key="gold_fc_epochs"))
        if c[2].button("Measure", key="gold_fc_start", icon=":material/play_arrow:"):
            with guarded():
                if isinstance(test, LetheError):
                    raise test

                def job(progress, cancel):
                    return rejection_gain(bundle, test.x, test.labels, p, n=fn, epochs=epochs, burn_in_size=burn,
                                          seed=seed, progress=progress, cancel=cancel)

                st.session_state["gold_fc_run"] = runner().start(
                    job, method="gold", model=spec, seed=seed, device=device_name(),
                    params={"action": "rejection fitting capacity", "p": p, "n": fn, "epochs": epochs,
                            "burn_in": burn, **input_params(data_spec(), None, heldout_spec())})
        if st.session_state.get("gold_fc_run"):
            run_view(st.session_state["gold_fc_run"], key="gold_fc")


def training_section(bundle: GANBundle, spec: str, test) -> None:
    """Eq. 5 re-weighting and Sec. 3.2 active learning as background runs with live curves (the fitting capacity
    is measured on `test`, or the LetheError saying why there are no test images)."""
    data, heldout = data_spec(), heldout_spec()
    if isinstance(test, LetheError):
        st.warning(f"{test.message} {test.hint}", icon=":material/warning:")
    left, right = st.columns(2)
    with left.container(border=True):
        st.markdown("**Re-weighting (eq. 5)**: a fresh cGAN trains plainly for half the epochs, then forks into "
                    "the plain loss and the GOLD-weighted one; mean GOLD of samples and fitting capacity per epoch.")
        c = st.columns(3)
        epochs = int(c[0].number_input("Epochs", 2, 200, 20, step=2, key="gold_rw_epochs"))
        fc_n = int(c[1].number_input("Fitting-capacity samples", 200, 20_000, 2000, step=200, key="gold_rw_fc_n"))
        fc_epochs = int(c[2].number_input("LeNet epochs", 1, 40, 2, key="gold_rw_fc_epochs"))
        config = ReweightConfig(epochs=epochs, fc_samples=fc_n, fc_epochs=fc_epochs)
        if st.button("Start re-weighting run", key="gold_rw_start", icon=":material/play_arrow:",
                     disabled=isinstance(test, LetheError), help="Needs real labelled test images."):
            with guarded():
                config.validate()
                check_enough(real_data(bundle, data=data), config)
                st.session_state["gold_rw_run"] = runner().start(
                    reweight_job(bundle, config, 0, data, heldout), method="gold", model=spec, device=device_name(),
                    params={"action": "reweight", "n": None, "class": None, **input_params(data, None, heldout),
                            **asdict(config)})
        st.code(gold_command(spec, "reweight", ["--epochs", str(epochs), "--fc-samples", str(fc_n), "--fc-epochs",
                                                str(fc_epochs)], 0, data, heldout), language="bash", wrap_lines=True)
    with right.container(border=True):
        st.markdown("**Active learning (Sec. 3.2)**: label a few pool images, train, query the unlabelled images "
                    "with the highest GOLD (eq. 8; eq. 9 on 2-D data), repeat; random queries as the baseline.")
        defaults = ActiveConfig.for_dataset(model_dataset(bundle) or "")
        c = st.columns(4)
        schedule = c[0].text_input("Initial, query, final", f"{defaults.initial},{defaults.query},{defaults.final}",
                                   key="gold_al_schedule",
                                   help="Labelled-set sizes" + (" per class." if defaults.per_class else "."))
        epochs = int(c[1].number_input("Epochs per round", 1, 200, 10, key="gold_al_epochs"))
        pool = int(c[2].number_input("Pool size", 100, 60_000, 2000, step=500, key="gold_al_pool"))
        fc_n = int(c[3].number_input("Fitting-capacity samples", 200, 20_000, 2000, step=200, key="gold_al_fc_n"))
        v = st.columns(4)
        lambda_c = float(v[0].number_input(
            "λ_c (fake-class weight)", 0.0, None, defaults.lambda_c, 0.01, format="%.3f", key="gold_al_lambda_c",
            help="Weight of the ACGAN loss's fake-class terms in every round; 0.1 measured better on the zoo's "
                 "cGANs. The paper (Sec. 4): \"For experiments on active learning, we choose lambda_c = 0.01 and "
                 "lambda_c = 0 for synthetic/MNIST and FMNIST/SVHN datasets\"; with few epochs per round 0.01 "
                 "leaves G drawing the wrong class."))
        val_size = int(v[1].number_input(
            "Validation images", 0, None, defaults.val_size, step=50, key="gold_al_val_size",
            help="Held-out images (one fixed random draw) that pick each round's best epoch: the epoch whose samples "
                 "give the best fitting capacity on them queries and seeds the next round (the paper: 100). The "
                 "fitting capacity is then measured on the other held-out images. 0 (the default) keeps each "
                 "round's last epoch."))
        if st.button("Start active-learning run", key="gold_al_start", icon=":material/play_arrow:",
                     disabled=isinstance(test, LetheError), help="Needs real labelled test images."):
            with guarded():
                try:
                    initial, query_size, final = (int(v) for v in schedule.split(","))
                except ValueError:
                    raise LetheError(f"the schedule takes three numbers, not {schedule!r}.",
                                     "For example 10,2,18.") from None
                config = replace(defaults, initial=initial, query=query_size, final=final, epochs=epochs,
                                 pool_size=pool, fc_samples=fc_n, fc_epochs=2, lambda_c=lambda_c, val_size=val_size)
                config.validate()
                validation_split(test, config.val_size)
                st.session_state["gold_al_run"] = runner().start(
                    active_job(bundle, config, 0, data=data, heldout=heldout), method="gold", model=spec,
                    device=device_name(), params={"action": "active", **input_params(data, None, heldout),
                                                  **asdict(config)})
    for key in ("gold_rw_run", "gold_al_run"):
        if st.session_state.get(key):
            run_view(st.session_state[key], key=key)
    run_id = st.session_state.get("gold_al_run")
    run = run_store().get(run_id) if run_id else None
    if run is not None and run.status == "succeeded":
        folder = run.path / "figures"
        history = run.table("history")
        if history is not None:
            st.markdown("**Per round** (Fig. 4 as numbers; *epoch used* is the epoch that queried and seeded the "
                        "next round)")
            st.dataframe(rounds_table(history), hide_index=True)
        shown = [f for f in sorted(folder.glob("pool_*.json"))]
        for col, path in zip(st.columns(max(1, len(shown))), shown):
            pool_doc = json.loads(path.read_text())
            col.plotly_chart(pool_queries_figure(np.array(pool_doc["x"]), np.array(pool_doc["labels"]),
                                                 np.array(pool_doc["rounds"]) >= 0, np.array(pool_doc["rounds"]),
                                                 title=f"{path.stem.removeprefix('pool_')} queries (Fig. 3)"),
                             key=f"gold_pool_{path.stem}", width="stretch")


def gold_page(bundle: GANBundle, spec: str) -> None:
    """Pick a class and sample sizes, score, and show the three views, each guarded on its own."""
    data_name = model_dataset(bundle)
    data = dataset(data_name, "train") if data_name else None
    try:
        test = test_images(spec, data_spec(), heldout_spec())
    except LetheError as exc:  # no test images: the fitting-capacity runs say why, the rest still works
        test = exc
    names = class_names(bundle, data)
    if judge_spec():
        st.caption(f"GOLD uses no judge (it reads the GAN's own discriminator), so the sidebar's judge "
                   f"`{judge_spec()}` is not used here.")
    top = st.columns([2, 1, 1])
    choice = top[0].selectbox("Class", ["all classes", *names], key="gold_class")
    chosen = None if choice == "all classes" else names.index(choice)
    n = int(top[1].number_input("Generated samples", 100, 20_000, 1000, step=500, key="gold_n"))
    n_real = int(top[2].number_input("Real images", 100, 60_000, 1000, step=500, key="gold_n_real",
                                          help="the first N images of the training split"))
    x, *terms = generated_scores(spec, n, 0)
    generated = GoldScores(*terms, "generated")
    real = None
    if data is not None and data.labels is None:
        st.info(f"Your images ({data_name}) have no classes, so only generated samples are scored: GOLD's "
                "conditional term needs the class of each real image (one sub-folder per class, or `labels` in "
                "the .npz).", icon=":material/info:")
        data = None
    if data is not None:
        real = GoldScores(*real_scores(spec, data_name, n_real), "real")
        data = data.subset(torch.arange(min(n_real, len(data))))
    tabs = st.tabs(["Scores", "Sorted samples", "Rejection sampling", "Training with GOLD"])
    with tabs[0], guarded():
        scores_section(generated, real, names, chosen)
    with tabs[1], guarded():
        grids_section(bundle, x, generated, real, data, names, chosen)
    with tabs[2], guarded():
        rejection_section(bundle, spec, names, chosen, test)
    with tabs[3], guarded():
        training_section(bundle, spec, test)


st.title("GOLD: where a conditional GAN is wrong")
st.caption("Mo et al., *Mining GOLD Samples for Conditional GANs* (NeurIPS 2019). GOLD = log D_G/(1−D_G) "
           "± log D_C(c|x): high for samples G under-represents, low for those it over-represents.")
model = gold_model()
if model is not None:
    with guarded():
        gold_page(model, st.session_state["model_spec"])
