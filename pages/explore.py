"""Explore: a model's samples from fixed latents, its card, and its quality measured on demand."""

import pandas as pd
import streamlit as st
import torch

from core.metrics.quality import class_shares
from core.models.bundles import FlowBundle, GANBundle
from core.runs.words import model_title
from core.viz.figures import class_share_figure
from core.viz.samples import default_temperature, preview
from core.zoo.jobs import evaluate_job
from core.zoo.lookup import entry_for
from core.zoo.registry import ZOO
from pages._common import (active_model, dataset, device_name, guarded, model_dataset, pretrained, require_app_shell,
                           run_view, runner, shipped_zoo, show_preview)

require_app_shell()


def _resample() -> None:
    st.session_state["explore_seed"] = int(st.session_state.get("explore_seed", 0)) + 1


def samples_tab(bundle) -> None:
    image_model = len(bundle.data_shape) == 3
    cols = st.columns([1, 1, 2, 2])
    st.session_state.setdefault("explore_seed", 0)
    seed = cols[0].number_input("Seed", min_value=0, step=1, key="explore_seed",
                                help="Samples come from fixed latents: the same seed always gives the same grid.")
    cols[1].button("Re-sample", key="explore_resample", on_click=_resample, icon=":material/casino:")
    if image_model and bundle.family != "i2i":
        n = cols[2].slider("Samples", 8, 64, 32, step=8, key="explore_n")
    else:
        n = 4  # i2i: 4 held-out images per degradation; the toys draw their own 2,000 points
    temperature, label = default_temperature(bundle), None
    if isinstance(bundle, FlowBundle):
        temperature = cols[3].slider("Temperature", 0.1, 1.5, temperature, step=0.05, key="explore_temperature",
                                     help="z ~ N(0, T² I): lower T gives cleaner, less varied samples (Glow).")
    if isinstance(bundle, GANBundle) and bundle.conditional:
        names = bundle.card.hparams.get("class_names") or [str(k) for k in range(bundle.num_classes)]
        label = cols[3].selectbox("Class", [None, *range(bundle.num_classes)], key="explore_class",
                                  format_func=lambda k: "any class" if k is None else f"{k}: {names[k]}")
    data_name = model_dataset(bundle)
    held_out = dataset(data_name, "test") if bundle.family in ("classifier", "i2i") else None
    reference = dataset(data_name, "train") if not image_model and data_name else None
    shown = preview(bundle, n=n, seed=int(seed), temperature=temperature, label=label, data=held_out)
    show_preview(shown, reference=reference, label_names=tuple(reference.class_names) if reference else (),
                 key="explore_scatter")
    if isinstance(bundle, GANBundle) and bundle.conditional and shown.labels is not None and image_model:
        agreement(bundle, shown)
    if label is None:
        class_share_view(bundle, int(seed))


def judge_for(data_name: str | None) -> str | None:
    """A shipped zoo label classifier trained on `data_name` (e.g. mnist-lenet for mnist), or None."""
    for name in shipped_zoo():
        entry = ZOO[name]
        if entry.family == "classifier" and entry.dataset == data_name:
            if pretrained(name, device_name()).kind == "labels":
                return name
    return None


def agreement(bundle, shown) -> None:
    """How many conditional samples the dataset's label classifier reads as the class they were asked for."""
    judge_name = judge_for(model_dataset(bundle))
    if judge_name is None:
        return
    judge = pretrained(judge_name, device_name())
    agrees = int((judge.predict(torch.as_tensor(shown.images)).numpy() == shown.labels).sum())
    st.markdown(f"**The classifier {judge_name} agrees on {agrees} of {len(shown.labels)}** samples: it reads them "
                "as the class they were asked for.")


def class_share_view(bundle, seed: int) -> None:
    """Which classes 1,000 samples look like to a domain classifier, next to the training data's shares."""
    data_name = model_dataset(bundle)
    judge_name = judge_for(data_name)
    if judge_name is None or len(bundle.data_shape) != 3 or bundle.family not in ("gan", "flow"):
        return
    judge = pretrained(judge_name, device_name())
    temperature = st.session_state.get("explore_temperature", default_temperature(bundle))
    samples = bundle.sample(1000, seed=seed)[0] if bundle.family == "gan" else bundle.sample(
        1000, seed=seed, temperature=temperature)
    k = len(judge.class_names)
    train = dataset(data_name, "train")
    shares = {"samples": class_shares(judge.predict(samples), k).tolist()}
    if train.labels is not None:
        shares["training data"] = class_shares(train.labels, k).tolist()
    st.plotly_chart(class_share_figure(shares, judge.class_names, band=(1 / k - 0.05, 1 / k + 0.05),
                                       title=f"Class shares of 1,000 samples (seed {seed}), judged by {judge_name}"),
                    key="explore_class_shares", width="stretch")
    st.caption(f"The green band is 1/{k} ± 5 points: a model that covers every class evenly stays inside it; "
               "a forgotten class drops to the bottom.")


def card_tab(bundle) -> None:
    card = bundle.card
    st.markdown(f"**{card.name}** · {card.family} · architecture `{card.architecture}` · seed {card.seed} · "
                f"weights stored as {card.dtype}")
    if card.description:
        st.caption(card.description)
    rows = []
    for metric in dict.fromkeys([*card.metrics, *card.floors]):
        value, floor = card.metrics.get(metric), card.floors.get(metric)
        meets = None
        if floor is not None:
            op, bound = floor
            meets = value is not None and (value >= bound if op == ">=" else value <= bound)
        rows.append({"metric": metric, "measured at training": value,
                     "floor": f"{floor[0]} {floor[1]}" if floor else "", "meets floor": meets})
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    left, right = st.columns(2)
    left.markdown("**Data**")
    left.json(card.data, expanded=True)
    left.markdown("**Training**")
    left.json(card.training, expanded=True)
    right.markdown("**Hyperparameters**")
    right.json(card.hparams, expanded=False)
    st.download_button("Download card.json", card.to_json(), file_name=f"{card.name}-card.json",
                       mime="application/json", key="explore_card_download")


def metrics_tab(bundle, spec: str) -> None:
    entry = entry_for(bundle.card, spec)
    st.markdown(f"Measured with `{entry.evaluator}`, the evaluator of zoo entry **{entry.name}**. The job runs in the "
                "background and is kept in **Runs**.")
    if st.button("Measure now", key="explore_measure", icon=":material/speed:", type="primary"):
        runs = st.session_state.setdefault("explore_eval_runs", {})
        runs[spec] = runner().start(evaluate_job(bundle, spec, device_name()), method="evaluate", model=spec,
                                    device=device_name())
    run_id = st.session_state.get("explore_eval_runs", {}).get(spec)
    if run_id:
        run_view(run_id, key="explore_eval")


def main() -> None:
    bundle = active_model()
    if bundle is None:
        return
    spec = st.session_state["model_spec"]
    st.title(f"Explore · {model_title(bundle.card, spec)}")
    first = {"classifier": "Predictions", "i2i": "Restorations"}.get(bundle.family, "Samples")
    samples, card, metrics = st.tabs([first, "Model card", "Metrics"])
    with samples, guarded():
        samples_tab(bundle)
    with card, guarded():
        card_tab(bundle)
    with metrics, guarded():
        metrics_tab(bundle, spec)


with guarded():
    main()
