"""Unlearn: make an image-to-image model fill forgotten classes or people with noise while it completes everything
else as before (Li et al., *Machine Unlearning for Image-to-Image Generative Models*, ICLR 2024). Pick the request
(labels, identities, the forget-set builder or a saved set), the retain source and the method; the run goes in the
background with live loss curves; then the same held-out masks through the original and the unlearned model, the
metrics of every method run on this request side by side, the embedding view and a download. The images and the
judge are the card's, or the sidebar's "Data & judge" (your training images, held-out images and classifier)."""

from __future__ import annotations

import streamlit as st

from core.data.selection import list_selections, load_selection
from core.methods.unlearning import (METHOD_NAMES, METHODS, NOISES, UnlearnConfig, comparison, complete,
                                     degrade_for_eval, embedding_points, eval_kinds, eval_sets, job_params, prepare,
                                     unlearning_command, unlearning_job)
from core.models.archive import zip_model
from core.models.bundles import I2IBundle
from core.viz.embedding import project
from core.viz.unlearning import completion_grid, embedding_figure
from pages._common import (active_model, data_spec, device_name, guarded, heldout_spec, judge_spec, pretrained,
                           require_app_shell, run_store, run_view, runner, shipped_zoo, training_data)
from pages._forget_set import forget_ids, forget_set_builder

require_app_shell()

REQUESTS = ("Label", "Identities", "Forget-set builder", "Saved forget set")
RETAIN = {"train": "Real retain set", "proxy": "Proxy retain set", "limited": "Limited (K per class)"}
GRID_IMAGES = 8


def _use(name: str) -> None:
    st.session_state["pick_source"] = "Zoo"
    st.session_state["pick_zoo"] = name


def no_i2i_notice() -> None:
    st.info("Unlearning works on image-to-image models: pick one in the sidebar.", icon=":material/arrow_back:")
    names = [n for n in shipped_zoo() if n.endswith("-i2i")]
    for col, name in zip(st.columns(max(1, len(names))), names):
        col.button(f"Use {name}", key=f"unlearn_use_{name}", on_click=_use, args=(name,))


def request_form(data) -> str | None:
    """Widgets for what to forget; returns the forget spec (None until one is complete)."""
    options = [r for r in REQUESTS if not (r == "Label" and data.labels is None)
               and not (r == "Identities" and data.identities is None)]
    kind = st.segmented_control("Forget", options, default=options[0], key="unlearn_kind") or options[0]
    if kind == "Label":
        names = data.class_names or tuple(str(k) for k in range(int(data.labels.max()) + 1))
        labels = st.multiselect("Labels", list(range(len(names))), default=[0], key="unlearn_labels",
                                format_func=lambda k: names[k])
        return "label=" + ",".join(map(str, labels)) if labels else None
    if kind == "Identities":
        text = st.text_input("Identities", "0-9", key="unlearn_identities",
                             help="Numbers and ranges, e.g. 0-9 or 3,17,42: their training images are forgotten, "
                                  "their held-out images measure it.")
        return f"identity={text.strip()}" if text.strip() else None
    if kind == "Forget-set builder":
        with st.expander("Forget-set builder", expanded=not forget_ids(data.name), icon=":material/photo_library:"):
            ids = forget_set_builder(data, key="unlearn_builder")
        if not ids:
            st.warning("Pick images in the builder: they and their classes' held-out images define the request.")
            return None
        return "ids=" + ",".join(map(str, sorted(ids)))
    saved = [n for n in list_selections() if load_selection(n).dataset == data.name]
    if not saved:
        st.warning(f"No saved forget set for {data.name} yet: build and save one on **Data & forget sets**.")
        return None
    return f"saved={st.selectbox('Saved forget set', saved, key='unlearn_saved')}"


def settings_form() -> tuple[str, UnlearnConfig, int]:
    """Retain source, method and the optimiser; returns (retain spec, config, seed)."""
    d = UnlearnConfig()
    cols = st.columns([2, 2, 1])
    source = cols[0].radio("Retain set", list(RETAIN), format_func=RETAIN.get, key="unlearn_retain", horizontal=True)
    retain = source
    if source == "proxy":
        retain = "proxy:" + cols[1].text_input("Proxy images", "fashion-mnist", key="unlearn_proxy",
                                               help="Another dataset (fashion-mnist for MNIST) or a selection of "
                                                    "other classes or people, e.g. identity=400-409.").strip()
    elif source == "limited":
        retain = f"limited:{cols[1].number_input('K per class', 1, 1000, 5, key='unlearn_k')}"
    method = cols[2].selectbox("Method", METHODS, format_func=METHOD_NAMES.get, key="unlearn_method")
    with st.expander("α and the optimiser (the paper's defaults)", icon=":material/tune:"):
        c = st.columns(4)
        alpha = c[0].number_input("α (forget weight)", 0.001, 10.0, d.alpha, step=0.05, format="%.3f",
                                  key="unlearn_alpha",
                                  help="The paper's 0.25 forgets hard; on mnist-i2i (digits 0, 1) it costs +14% "
                                       "retain FID, 0.1 keeps that under +10% while forget FID still rises x5.6. "
                                       "A proxy of other digits: 0.035 with 80 epochs (forget FID x5.9-6.5, "
                                       "+16-19% on the kept digits it never shows). People need more: 1.0 with "
                                       "320 epochs forgets ten synthfaces identities.")
        lr = c[1].number_input("Learning rate", 1e-6, 1e-1, d.lr, step=1e-5, format="%.5f", key="unlearn_lr")
        epochs = c[2].number_input("Epochs", 1, 500, d.epochs, key="unlearn_epochs",
                                   help="Passes over the forget set. The retain set recovers from the first steps' "
                                        "damage over hundreds of steps: fewer epochs cost more retain quality.")
        batch = c[3].number_input("Batch (per set)", 1, 1024, d.batch_size, key="unlearn_batch")
        c = st.columns(4)
        wd = c[0].number_input("Weight decay", 0.0, 1.0, d.weight_decay, step=0.01, key="unlearn_wd")
        clip = c[1].number_input("Gradient clip", 0.1, 100.0, d.clip, key="unlearn_clip")
        noise = c[2].selectbox("Noise", NOISES, key="unlearn_noise",
                               help="normalised: Σ = I on images normalised by the training set's mean and std "
                                    "(the paper); image: each image's own mean and std (the authors' code).")
        seed = c[3].number_input("Seed", 0, 10_000, 0, key="unlearn_seed")
    config = UnlearnConfig(method=method, alpha=alpha, lr=lr, epochs=int(epochs), batch_size=int(batch),
                           weight_decay=wd, clip=clip, noise=noise)
    return retain, config, int(seed)


def inputs() -> dict[str, str | None]:
    """The sidebar's training images, held-out images and judge (the command line's --data, --heldout, --judge)."""
    return {"data": data_spec(), "heldout": heldout_spec(), "judge": judge_spec()}


def start(bundle: I2IBundle, spec: str, forget: str, retain: str, config: UnlearnConfig, seed: int,
          eval_size: int) -> None:
    config.validate()
    # a bad request (empty, everything, a proxy overlapping the forget set, no held-out images, no judge) fails
    # here, before a run exists
    prepared = prepare(bundle, forget, retain=retain, seed=seed, eval_size=eval_size, **inputs())
    job = unlearning_job(bundle, forget, config, seed=seed, retain=retain, eval_size=eval_size, prepared=prepared)
    st.session_state["unlearn_run"] = runner().start(job, method="unlearn", model=spec, seed=seed,
                                                     params=job_params(forget, config, retain, eval_size, **inputs()),
                                                     device=device_name())


def same_request(run, spec: str, forget: str, retain: str) -> bool:
    p = run.config.get("params", {})
    return (run.config.get("method") == "unlearn" and run.status == "succeeded" and run.config.get("model") == spec
            and p.get("forget") == forget and p.get("retain") == retain)


@st.cache_resource(show_spinner="Rebuilding the run's held-out sets...", max_entries=4)
def run_sets(spec: str, run_id: str):
    """(sets, judges) of a finished run, rebuilt from its config: the same images, held-out images and judge."""
    run = run_store().get(run_id)
    p = run.config["params"]
    return prepare(pretrained(spec, device_name()), p["forget"], retain=p["retain"], seed=run.config.get("seed", 0),
                   eval_size=p.get("eval_size", 500), data=p.get("data"), heldout=p.get("heldout"),
                   judge=p.get("judge"))


def results(bundle: I2IBundle, run) -> None:
    """Before/after grids per degradation, the methods table, the embedding view and the download."""
    p = run.config["params"]
    sets, judges = run_sets(run.config["model"], run.id)
    unlearned = pretrained(run.model_spec, device_name())
    kind = st.segmented_control("Degradation", eval_kinds(bundle), default="center", key="unlearn_grid_kind") \
        or "center"
    cols = st.columns(2)
    for col, (name, data) in zip(cols, eval_sets(sets).items()):
        x = data.x[:GRID_IMAGES]
        rows = {"ground truth": x, "input": degrade_for_eval(x, kind)[0], "original": complete(bundle, x, kind),
                "unlearned": complete(unlearned, x, kind)}
        col.image(completion_grid(rows), caption=f"held-out {name} images: " + ", ".join(rows) + " (top to bottom)")
    runs = [r for r in run_store().runs() if same_request(r, run.config["model"], p["forget"], p["retain"])]
    unseen = ("; U the kept classes the proxy never showed" if sets.eval_unseen is not None else "")
    st.markdown(f"**Every method run on this request** ({kind}; R retain, F forget{unseen}; FID and IS on the "
                "dataset's classifier, cosine of its features)")
    table = comparison([(r.id, r.config["params"], r.metrics) for r in runs], kind)
    st.dataframe(table.round(3), hide_index=True, width="stretch")
    with st.expander("Embedding view (Fig. 4)", icon=":material/scatter_plot:"):
        feats, labels = embedding_points(unlearned, eval_sets(sets), judges.quality, kind)
        coords = project(feats, "pca", key=f"unlearn-{run.id}-{kind}")
        st.plotly_chart(embedding_figure(coords, labels), key=f"unlearn_embedding_{run.id}", width="stretch")
    st.download_button("Download the unlearned model (.zip)", zip_model(run.model_spec),
                       file_name=f"{run.id}-unlearned.zip", mime="application/zip", icon=":material/download:",
                       key=f"unlearn_download_{run.id}")


def main() -> None:
    st.title("Unlearn an image-to-image model")
    st.caption("Forget classes or people in an inpainting model (Li et al., ICLR 2024): only the encoder moves, so "
               "that forgotten images encode like noise and kept images encode as before (eq. 10).")
    bundle = active_model() if st.session_state.get("model_spec") else None
    if not isinstance(bundle, I2IBundle):
        no_i2i_notice()
        return
    spec = st.session_state["model_spec"]
    data = training_data(bundle)
    with st.container(border=True):
        forget = request_form(data)
        retain, config, seed = settings_form()
        eval_size = st.number_input("Held-out images per set", 2, 2000, 500, key="unlearn_eval_size")
        if st.button("Start unlearning", key="unlearn_start", type="primary", icon=":material/play_arrow:",
                     disabled=forget is None):
            with guarded():
                start(bundle, spec, forget, retain, config, seed, int(eval_size))
        if forget is not None:
            with guarded():
                st.code(unlearning_command(spec, forget, config, retain, int(eval_size), seed, **inputs()),
                        language="bash", wrap_lines=True)
    run_id = st.session_state.get("unlearn_run")
    if run_id:
        run_view(run_id, "unlearn")
        run = run_store().get(run_id)
        if run.status == "succeeded" and run.model_spec:
            with guarded():
                results(bundle, run)


with guarded():
    main()
