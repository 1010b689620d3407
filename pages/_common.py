"""What every page shares: the sidebar (model picker, device, run store), cached resources and error display.

Pages stay thin: they read widgets, make one `core` call and draw a `core.viz` figure. Caching rules:
- the pretrained model behind a spec is loaded once per process (`st.cache_resource`) and never edited; a page
  or job that changes weights works on `bundle.copy()` (held in the user's session or handed to the runner);
- datasets are loaded once per process; embeddings are cached on disk by `core.viz.embedding`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd
import streamlit as st
import torch

from core.data import DATASETS, ImageData, is_data_path, load
from core.data.home import lethe_home
from core.device import resolve_device
from core.errors import LetheError
from core.models import Bundle, load_bundle, load_model
from core.models.spec import saved_model_path
from core.models.archive import unpack_model
from core.overview import model_overview
from core.runs import Runner, RunRecord, RunStore, default_root, shared_runner
from core.runs.events import EVENT_COLUMNS
from core.runs.estimate import estimate
from core.runs.verdict import time_text
from core.runs.words import model_words, run_words
from core.viz.figures import metric_history, scatter_figure
from core.viz.runs import metric_panels
from core.viz.images import image_grid, thumbnails
from core.viz.samples import Preview
from core.zoo.registry import ZOO, zoo_folder
from pages._verdict import verdict_card

SOURCES = ("Zoo", "Folder", "Upload")
LOG = logging.getLogger("lethe.app")
LIVE_SECONDS = 2.0
"""A live run view redraws its progress bar and numbers this often."""
CHART_SECONDS = 10.0
"""...and rebuilds its charts at most this often. Building a plotly figure of small multiples takes 0.2-0.3 s of
Python in the server process, where it holds the GIL that the run's own thread needs between its tensor operations;
every 2 s that took about a tenth of the run's speed (`bench/taming.py --speed` measures the app against the
command line)."""


def require_app_shell() -> None:
    """Make sure this page runs inside app.py's navigation; call it first in every page file.

    Streamlit treats a folder named `pages/` as an old-style multipage app until `st.navigation` has run once in
    the process, so the first visit after a server start that goes straight to, say, /runs would execute the
    page file alone: no sidebar, no model picker. This switches the process to app.py's navigation and reruns,
    which then draws the same page inside the shell."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def show_error(exc: BaseException) -> None:
    """A LetheError as its message and hint; anything else as a one-line bug report. Never a traceback on the
    page: an unexpected error's traceback goes to the server's log (the terminal running `make app`)."""
    if isinstance(exc, LetheError):
        st.error(f"**{exc.message}**" + (f"\n\n{exc.hint}" if exc.hint else ""), icon=":material/error:")
        return
    LOG.error("unexpected error in a page", exc_info=exc)
    st.error(f"**Something went wrong inside Lethe:** {type(exc).__name__}: {exc}\n\n"
             "This is a bug, not something you did. The full traceback is in the terminal running the app; "
             "please include it when you report the bug.", icon=":material/bug_report:")


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Run a block of page code and show any error in place of a traceback (the rest of the page still draws).

    st.stop / st.rerun raise BaseExceptions, so they pass through untouched."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - every error is shown to the user, never as a raw traceback
        show_error(exc)


# ----------------------------------------------------------------------------------------------- cached resources


UPLOAD_LABEL = "the uploaded model"


@st.cache_resource(show_spinner="Loading model...", max_entries=8)
def pretrained(spec: str, device: str) -> Bundle:
    """The model behind `spec`, loaded once per process; treat it as read-only (edit `bundle.copy()`).

    An upload's folder lives under `<LETHE_HOME>/uploads`; its errors name it "the uploaded model", never the
    server's temporary path."""
    uploads = (lethe_home() / "uploads").resolve()
    if Path(spec).resolve().parent == uploads:
        return load_bundle(spec, device, label=UPLOAD_LABEL)
    return load_model(spec, device)


@st.cache_resource(show_spinner="Loading the data (rendered datasets such as synthfaces take up to a minute, once)...",
                   max_entries=8)
def _loaded(name: str, split: str, shape: tuple[int, ...] | None) -> ImageData:
    return load(name, split, shape=shape)


def dataset(name: str | None, split: str) -> ImageData:
    """A dataset split, loaded once per process (read-only). `name` is a data spec: a Lethe dataset, or the
    user's folder / .zip / .npz, which is fitted to the data shape of the model picked in the sidebar."""
    if not name:
        raise LetheError("This model's card names no training data.",
                         "Give your training images under **Data & judge** in the sidebar, or on the Data page.")
    if name in DATASETS or not is_data_path(name):
        return _loaded(name, split, None)
    spec = st.session_state.get("model_spec")
    return _loaded(name, split, tuple(pretrained(spec, device_name()).data_shape) if spec else None)


def shipped_zoo() -> list[str]:
    """Zoo models whose weights are in assets/ (the ones the picker offers)."""
    return [name for name in ZOO if (zoo_folder(name) / "model.safetensors").is_file()]


def default_zoo_model(names: list[str]) -> str:
    """The model a first-time visitor sees: mnist-dcgan if shipped, else the first generative model, else any."""
    if "mnist-dcgan" in names:
        return "mnist-dcgan"
    generative = [n for n in names if ZOO[n].family in ("gan", "flow")]
    return (generative or names)[0]


def run_store() -> RunStore:
    """The run store: `$LETHE_RUNS`, else `<repo>/runs` (see `core.runs.store.default_root`)."""
    return RunStore(default_root())


# ------------------------------------------------------------------------------------------------------ sidebar


def _uploaded_spec(files: list) -> str:
    folder = unpack_model({f.name: f.getvalue() for f in files}, lethe_home() / "uploads")
    return str(folder)


def _folder_spec() -> str | None:
    """The Folder box: a path, `runs/<run id>/model` or a run id (resolved against the run store), or one of the
    finished runs' edited models picked from a list."""
    finished = [r for r in run_store().runs() if r.status == "succeeded" and r.model_spec][:50]
    choices = {"": None} | {f"{r.id} · {r.config.get('method', '?')} · {r.config.get('model', '?')}": r.model_spec
                            for r in finished}
    picked = st.selectbox("A finished run's edited model", list(choices), key="pick_run",
                          format_func=lambda k: k or "(type a folder below instead)") if len(choices) > 1 else ""
    path = st.text_input("Folder with model.safetensors and card.json", key="pick_path",
                         placeholder="runs/<run id>/model")
    text = path.strip()
    if not text:
        return choices.get(picked)
    folder = saved_model_path(text)
    if folder is None:
        raise LetheError(f"There is no saved model folder {text[:200]!r}.",
                         "Type the path of a folder holding model.safetensors and card.json (on the server running "
                         "the app), or runs/<run id>/model for a run's edited model, or pick a run above.")
    return str(folder)


def _app_advice(exc: BaseException) -> BaseException:
    """A loading error worded for the app: trusting a factory is done when the server is started."""
    from core.models.trust import ENV, UntrustedFactory

    if isinstance(exc, UntrustedFactory):
        return UntrustedFactory(exc.message, f"The app runs a saved factory only if whoever starts the server trusts "
                                             f"its module: start it with {ENV}={exc.module} in the environment.")
    return exc


def device_name() -> str:
    """The device chosen in the sidebar as a torch device string (`cpu`, `cuda`)."""
    return str(resolve_device(st.session_state.get("device", "auto")))


def sidebar() -> None:
    """Model picker, device indicator and run store location; sets `st.session_state["model_spec"]`."""
    with st.sidebar:
        st.markdown("### Model")
        source = st.radio("Model from", SOURCES, key="pick_source", horizontal=True, label_visibility="collapsed")
        spec = None
        with guarded():
            if source == "Zoo":
                names = shipped_zoo()
                if not names:
                    raise LetheError("No zoo model has shipped weights yet.",
                                     "Train one with `python -m core zoo train mnist-lenet`.")
                spec = st.selectbox("Zoo model", names, index=names.index(default_zoo_model(names)), key="pick_zoo",
                                    format_func=lambda n: f"{n} · {ZOO[n].family}")
                missing = [n for n in ZOO if n not in names]
                if missing:
                    st.caption(f"Not trained yet: {', '.join(missing)}")
            elif source == "Folder":
                spec = _folder_spec()
            else:
                files = st.file_uploader("A zip, or model.safetensors + card.json", key="pick_upload",
                                         type=["zip", "safetensors", "json"], accept_multiple_files=True)
                spec = _uploaded_spec(files) if files else None
        if spec:
            try:
                card = pretrained(spec, device_name()).card
                st.caption(f"**{card.name}** · {card.family} · {card.architecture} · trained on "
                           f"{card.data.get('dataset', '?')}")
            except Exception as exc:  # noqa: BLE001 - reported here, once; the pages then ask for another model
                show_error(_app_advice(exc))
                spec = None
        st.session_state["model_spec"] = spec
        if spec:
            data_judge_picker(spec)
        st.divider()
        st.selectbox("Device", ("auto", "cpu", "cuda"), key="device",
                     help="auto uses a GPU when torch sees one.")
        with guarded():
            dev = device_name()
            if dev.startswith("cuda"):
                hardware = torch.cuda.get_device_name(torch.device(dev))
            else:
                hardware = "a GPU is available" if torch.cuda.is_available() else "no GPU visible"
            st.caption(f"Computing on **{dev}** ({hardware}) · torch {torch.__version__}")


def run_store_caption() -> None:
    """Where runs are stored and how many there are; drawn after the page so a run it just started counts."""
    store = run_store()
    count = len(store.ids())
    st.sidebar.caption(f"Runs are stored in `{store.root}` ({count} run{'' if count == 1 else 's'})")


def active_model() -> Bundle | None:
    """The model picked in the sidebar (cached, read-only), or None after telling the user to pick one."""
    spec = st.session_state.get("model_spec")
    if not spec:
        st.info("Pick a model in the sidebar: a zoo model, a saved folder or an uploaded file.", icon=":material/arrow_back:")
        return None
    return pretrained(spec, device_name())


def keep_selection(key: str, options: list, default: list) -> None:
    """Before a multiselect with `key`: restore what the user chose on an earlier visit (Streamlit forgets a
    widget's value when its page is left), dropping options that are gone; else start from `default`. A default
    never offered before (a run that just finished) joins the selection; one the user removed stays removed."""
    seen = st.session_state.setdefault(f"_defaults_{key}", set())
    fresh = [v for v in default if v not in seen]  # e.g. a run that finished since the last visit joins in
    seen.update(default)
    if key in st.session_state:
        current = [v for v in st.session_state[key] if v in options]
        st.session_state[key] = current + [v for v in fresh if v not in current]
        return
    kept = st.session_state.get(f"_kept_{key}")
    start = [v for v in kept if v in options] if kept is not None else []
    st.session_state[key] = start + [v for v in (fresh if kept is not None else default) if v not in start]


def remember_selection(key: str) -> None:
    """After the widget: keep its value under a key no widget owns, so it survives leaving the page."""
    st.session_state[f"_kept_{key}"] = list(st.session_state.get(key, []))


def data_spec() -> str | None:
    """The user's own training data picked in the sidebar or on the Data page (a data spec), or None."""
    return st.session_state.get("pick_data", "").strip() or None


def heldout_spec() -> str | None:
    """The user's held-out images picked in the sidebar (a data spec of images the model was not trained on; taming
    measures D'_F on them and can remember them), or None."""
    return st.session_state.get("pick_heldout", "").strip() or None


def model_dataset(bundle: Bundle) -> str | None:
    """The data the methods use for `bundle`: the user's own (sidebar or Data page), else its card's dataset."""
    return data_spec() or bundle.card.data.get("dataset")


def training_data(bundle: Bundle) -> ImageData:
    """The images a method trains on for `bundle`: the user's own (sidebar or Data page), else its card's dataset
    and split."""
    name = model_dataset(bundle)
    if not name:
        raise LetheError(f"The card of {bundle.card.name} names no training data, and none is given.",
                         "Give your training images (and held-out images, which influence, GOLD and unlearning "
                         "measure on) under **Data & judge** in the sidebar, or on the Data page.")
    return dataset(name, "train" if data_spec() else bundle.card.data.get("split", "train"))


def judge_spec() -> str | None:
    """The judge picked in the sidebar (a classifier spec), or None for the zoo's judges of the data."""
    return st.session_state.get("pick_judge", "").strip() or None


@st.cache_data(show_spinner=False, max_entries=16)
def _overview(spec: str, device: str) -> dict:
    return model_overview(pretrained(spec, device), spec)


def data_judge_picker(spec: str) -> None:
    """The sidebar's data and judge boxes (the command line's --data and --judge) and what the model is: G and D,
    data shape, pixel range, which verbs apply and why not (`core.overview`, as `python -m core show` prints)."""
    with st.expander("Data & judge", icon=":material/dataset:"):
        st.text_input("Training data", key="pick_data", placeholder="the card's dataset",
                      help="Your own images: a folder (flat, or one sub-folder per class), a .zip of one, or an .npz "
                           "with images and optional labels / attributes / identities. Empty: the dataset the "
                           "model's card names. The Data page takes an uploaded zip too.")
        st.text_input("Held-out images", key="pick_heldout", placeholder="none (taming: no D'_F)",
                      help="Images of the same kind that the model was NOT trained on, in the training data's "
                           "layout (the command line's --heldout). Taming measures the held-out forget images D'_F "
                           "on them, and 'test' as its remember set means them.")
        st.text_input("Judge", key="pick_judge", placeholder="the zoo's judges for the data",
                      help="Your classifier for invalidity, IS/FID and attribute sets: a zoo name, a saved "
                           "classifier folder, or package.module:factory.")
        with guarded():
            data = st.session_state.get("pick_data", "").strip()
            if data and not is_data_path(data) and data not in DATASETS:
                raise LetheError(f"{data!r} is neither a dataset Lethe knows nor a path.",
                                 f"Give a folder, .zip or .npz path, or one of {', '.join(DATASETS)}.")
            if data and is_data_path(data) and not Path(data).expanduser().exists():
                raise LetheError(f"There is no file or folder {data}.", "Give the path of your training images.")
            heldout = heldout_spec()
            if heldout and not data:
                raise LetheError("Held-out images are given without training data.",
                                 "Give your training images too; the zoo's datasets have their own held-out split.")
            if heldout and not Path(heldout).expanduser().exists():
                raise LetheError(f"There is no file or folder {heldout}.", "Give the path of your held-out images.")
    with st.expander("What Lethe can do with it", icon=":material/info:"):
        with guarded():
            st.markdown(overview_markdown(_overview(spec, device_name())))


def overview_markdown(overview: dict) -> str:
    """`core.overview.model_overview` as short markdown for the sidebar: networks, shape and range, data, judges,
    then one line per verb (applies, or why not)."""
    nets = overview["networks"]
    present = " · ".join(f"{k} {':green[yes]' if v else ':red[no]'}" for k, v in nets.items() if isinstance(v, bool))
    shape = "x".join(map(str, overview["data_shape"]))
    rng = overview["pixel_range"]
    judges = ", ".join(f"{v} ({k})" for k, v in overview["judges"].items()) or "none in the zoo"
    head = [present, f"data {shape} · pixel range {list(rng) if rng else 'raw values'}",
            f"trained on {overview['dataset'] or 'data not named on the card'} · judges: {judges}"]
    verbs = []
    for verb in overview["verbs"]:
        why = "; ".join(verb["why_not"]) if verb["why_not"] else verb.get("note", "")
        mark = ":green[✓]" if verb["applies"] else ":red[✗]"
        verbs.append(f"- {mark} **{verb['verb']}**" + (f" · {why}" if why else ""))
    return "  \n".join(head) + "\n\n" + "\n".join(verbs)


# ----------------------------------------------------------------------------------------------------- drawing


def pixel_scale(images) -> int:
    """Integer enlargement so small images (28x28 digits, 32x32 faces) are legible without browser blur."""
    side = max(images.shape[-2:])
    return max(1, 96 // side)


def show_preview(p: Preview, ncol: int | None = None, compact: bool = False, reference: ImageData | None = None,
                 label_names: tuple[str, ...] = (), key: str | None = None) -> None:
    """Draw a `core.viz.samples.Preview`: a scatter plot for toys (over the training data when given), else an
    image grid (compact) or captioned tiles."""
    if p.is_points:
        clouds, labels = {}, {}
        if reference is not None:
            clouds["training data"] = reference.x[:2000]
        clouds["samples"] = p.points
        if p.labels is not None:
            labels["samples"] = p.labels
        st.plotly_chart(scatter_figure(clouds, labels, label_names, title=p.note), key=key, width="stretch")
        return
    scale = pixel_scale(p.images)
    if compact or not p.captions:
        st.image(image_grid(p.images, ncol=ncol or p.ncol, scale=scale), caption=p.note or None)
        return
    tiles = thumbnails(p.images, scale)
    ncol = ncol or p.ncol
    for start in range(0, len(tiles), ncol):  # rows of `ncol`, so an i2i row is one degradation
        for col, tile, caption in zip(st.columns(ncol), tiles[start:start + ncol], p.captions[start:start + ncol]):
            col.image(tile, caption=caption, width="stretch")
    if p.note:
        st.caption(p.note)


# --------------------------------------------------------------------------------------------------------- runs


def runner() -> Runner:
    """The process-wide job runner for the chosen run store (jobs outlive browser sessions)."""
    return shared_runner(run_store().root)


def run_history(run: RunRecord) -> pd.DataFrame:
    """A run's metric curves as the long table `core.viz.figures.curves_figure` reads (step, metric, value)."""
    return metric_history(run.events(), ignore=EVENT_COLUMNS)


def _status_badge(status: str) -> str:
    colour = {"running": "blue", "queued": "gray", "succeeded": "green", "failed": "red",
              "cancelled": "orange", "interrupted": "violet"}.get(status, "gray")
    return f":{colour}-badge[{status}]"


def progress_bar(run: RunRecord, events: pd.DataFrame | None = None, unit: str = "step",
                 cap: bool = False) -> None:
    """The run's progress with an estimate of the time left (`core.runs.estimate`), never "step 0 of ?".

    `cap`: the total is an upper bound (taming stops when eq. 10 holds), so the estimate is "at most"."""
    doc = run.status_doc
    total, step = int(doc.get("total") or 0), int(doc.get("step") or 0)
    if run.status == "queued":
        st.progress(0.0, text=doc.get("message") or "queued: waiting for a running job to finish")
        return
    if run.status == "running" and not total:
        st.progress(0.0, text=f"preparing ({time_text(run.duration)} so far)" +
                    (f" · {doc.get('message')}" if doc.get("message") else ""))
        return
    guess = estimate(events if events is not None else run.events(), total) if run.status == "running" else None
    parts = [f"{unit} {step:,} of {'at most ' if cap else ''}{total:,}" if total else f"{unit} {step:,}"]
    if guess is not None:
        if guess.seconds_left is None:
            parts.append("estimating the time left...")
        else:
            parts.append(f"{'at most ' if cap else ''}about {time_text(guess.seconds_left)} left "
                         f"({guess.seconds_per_step:.2g} s per {unit})")
    parts.append(f"{time_text(run.duration)} so far" if run.status == "running" else f"{run.status} in "
                 f"{time_text(run.duration)}")
    if doc.get("message") and run.status == "running":
        parts.append(str(doc["message"]))
    fraction = min(1.0, step / total) if total else float(run.status == "succeeded")
    st.progress(fraction, text=" · ".join(parts))


def scroll_here(anchor: str) -> None:
    """Scroll the browser to the element with id `anchor` once (after a run starts: the live view is below the
    fold). A zero-height component runs the script in the page's own origin."""
    st.iframe(f"<script>const el = window.parent.document.getElementById({anchor!r});"
              f"if (el) {{ el.scrollIntoView({{behavior: 'smooth', block: 'start'}}); }}</script>", height=1)


def rounded_metrics(metrics: dict) -> pd.DataFrame:
    """Final metrics as a two-column table, numbers rounded for reading (4 significant digits)."""
    def show(v) -> str:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return str(v)
        return f"{v:,}" if isinstance(v, int) else f"{v:.4g}"

    return pd.DataFrame({"metric": list(metrics), "value": [show(v) for v in metrics.values()]})


def run_view(run_id: str, key: str) -> None:
    """A run's state: status, progress, message, metric curves, final metrics or error; a cancel button while it
    is active. Active runs are redrawn every second by a fragment, so the rest of the page stays usable."""
    run = run_store().get(run_id)
    if run.status in ("queued", "running"):
        _live_run(run_id, key)
    else:
        draw_run(run, key, live=False)


def live_figure(key: str, build: Callable[[], Any], live: bool) -> Any:
    """`build()`'s figure; while `live`, the one built under `key` if that is less than CHART_SECONDS old."""
    slot, now = f"_live_figure_{key}", time.monotonic()
    kept = st.session_state.get(slot)
    if not live:
        st.session_state.pop(slot, None)
        return build()
    if kept is None or now - kept[0] >= CHART_SECONDS:
        kept = st.session_state[slot] = (now, build())
    return kept[1]


@st.fragment(run_every=LIVE_SECONDS)
def _live_run(run_id: str, key: str) -> None:
    run = run_store().get(run_id)
    draw_run(run, key, live=True)
    if run.status not in ("queued", "running"):
        st.rerun()  # the whole page redraws once, now with the finished run (and no more polling)


def draw_run(run: RunRecord, key: str, live: bool) -> None:
    """One run's title, progress with time left, verdict (when finished), curves as small multiples, error and
    final metrics (plus a cancel button if `live`)."""
    head = st.columns([3, 1])
    head[0].markdown(f"{_status_badge(run.status)} **{run_words(run.config)}** on "
                     f"`{model_words(run.config.get('model', ''))}` · `{run.id}`")
    if live and head[1].button("Cancel run", key=f"{key}_cancel_{run.id}", icon=":material/stop_circle:",
                               type="primary"):
        with guarded():
            runner().cancel(run.id)
            st.toast(f"Asked {run.id} to stop")
    events = run.events()
    progress_bar(run, events)
    if run.status == "failed" or run.status == "interrupted":
        err = run.error or {}
        show_error(LetheError(err.get("message") or "The run failed.", err.get("hint") or ""))
    if not live:
        verdict_card(run, key)
    if not events.empty:
        st.plotly_chart(live_figure(f"{key}_curves_{run.id}", lambda: metric_panels(
            {run_words(run.config): events}, run.config.get("method", "")), live),
                        key=f"{key}_curves_{run.id}", width="stretch")
    metrics = run.metrics
    if metrics:
        with st.expander("Every final metric", icon=":material/table:"):
            st.dataframe(rounded_metrics(metrics), hide_index=True, width="stretch")
