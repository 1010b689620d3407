# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lethe quickstart
#
# The same four steps as the app, with the same calls and the same figures:
# load a zoo model, draw samples from fixed latents, build a forget set, and read a run.
# Everything here is `core` (the engine) and `core.viz` (the figures); the app's pages call exactly these.
#
# `make test` executes this notebook at a small size through the tagged parameters cell below.

# %% tags=["parameters"]
MODEL = "mnist-acgan"  # a zoo name, a saved model folder, or package.module:factory
N_SAMPLES = 32  # samples in the grid
SEED = 0  # fixed latents: the same seed always draws the same grid
FORGET_LABEL = 7  # the digit whose training images make up the forget set
RECIPE = "mnist-lenet"  # the zoo recipe the example run trains
SMOKE = True  # a few steps on a tiny subset (seconds); False trains the real recipe
DEVICE = "auto"  # auto | cpu | cuda

# %%
import sys
from pathlib import Path

# Make `core` importable whether Jupyter started in the repository or in notebooks/.
ROOT = Path.cwd() if (Path.cwd() / "core").is_dir() else Path.cwd().parent
sys.path.insert(0, str(ROOT))

from core.data import load  # noqa: E402
from core.data.selection import Selection, save_selection, split_forget_retain  # noqa: E402
from core.models import load_model  # noqa: E402
from core.runs import RunStore, run_now  # noqa: E402
from core.runs.events import EVENT_COLUMNS  # noqa: E402
from core.viz.embedding import features_of, project  # noqa: E402
from core.viz.figures import curves_figure, embedding_figure, grid_figure, metric_history, scatter_figure  # noqa: E402
from core.viz.samples import preview  # noqa: E402
from core.zoo.jobs import train_job  # noqa: E402

# %% [markdown]
# ## 1. Load a zoo model
# A model is named by a *model spec*. Its card says what it is, what it was trained on, and the quality
# measured at training time against the floors the tests assert.

# %%
bundle = load_model(MODEL, DEVICE)
card = bundle.card
print(f"{card.name}: {card.family}, architecture {card.architecture}, trained on {card.data.get('dataset')}")
print("measured:", card.metrics)
print("floors:", card.floors, "-> all met" if not card.floor_failures() else f"-> {card.floor_failures()}")

# %% [markdown]
# ## 2. Draw samples from fixed latents

# %%
shown = preview(bundle, n=N_SAMPLES, seed=SEED)
if shown.is_points:
    samples_figure = scatter_figure({"samples": shown.points}, title=f"{card.name}, seed {SEED}")
else:
    samples_figure = grid_figure(shown.images, ncol=8, scale=2, title=f"{card.name}, seed {SEED}")
samples_figure

# %% [markdown]
# ## 3. Build a forget set
# A `Selection` names the training samples to forget (here: one label); saved by name, the app's Data page
# lists it and every method can use it. The embedding is the one the Data page draws (PCA, cached on disk).

# %%
data = load(card.data["dataset"], "train")
selection = Selection(data.name, "train", labels=[FORGET_LABEL])
forget, retain = split_forget_retain(data, selection)
save_selection("quickstart-forget", selection)
print(f"{selection.describe()}: {len(forget)} to forget, {len(retain)} to retain")

coords = project(features_of(data.x), "pca", key=f"{data.name}-train")
embedding_figure(coords, data.ids.numpy(), None if data.labels is None else data.labels.numpy(), data.class_names,
                 selected=forget.ids.tolist(), title="training data (PCA); black rings: the forget set")

# %% [markdown]
# ## 4. Run a job and read it back
# Every job (zoo recipes here, unlearning methods later) runs as a *run*: its config, every progress event,
# its final metrics and its model are on disk, listed by the app's Runs page.

# %%
record = run_now(train_job(RECIPE, seed=SEED, smoke=SMOKE), method="zoo-train", model=RECIPE,
                 params={"smoke": SMOKE}, seed=SEED)
print(record.id, record.status, record.metrics)
print("the trained model is a model spec too:", record.model_spec)
print("runs in the store:", len(RunStore().ids()))
curves_figure(metric_history(record.events(), ignore=EVENT_COLUMNS), title=f"{RECIPE}: progress events")
