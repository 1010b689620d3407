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
# # Influence estimation for GANs, the 2-D study at 2-core size
#
# Terashita, Ohashi, Nonaka & Kanamori, *Influence Estimation for Generative Adversarial Networks* (ICLR 2021),
# reproduced with Lethe's engine on `influence-fcgan`, the paper's own FCGAN (float64, D 2x64, G 2x32, z 10) trained
# by the paper's recipe (plain SGD lr 1e-3, batch 100, gamma 1e-3, 50 epochs) on 10k points of the correlated
# Gaussian. Every number comes from `core.methods.influence` and every figure from `core.viz.influence`, the same
# calls the **Influence** page and `python -m core influence` make.
#
# - Fig. 1: Kendall's tau and the Jaccard index of the 20 critical instances between estimated and true influence
#   on ALL (counterfactual replays), against the number of traced epochs k, over several seeds, beside random
#   ranking, with the significance test the paper uses (p < .05).
# - Fig. 2 / Table 6: test ALL after removing the n_h most harmful instances, against isolation forest,
#   influence on the discriminator loss, random removal and no removal.
# - Fig. 3a: where the harmful and helpful instances lie, over the generator's samples.
#
# **Sign.** Influence is shown as *V with j - V without j* (what instance j contributed): on ALL, positive means
# j helped and negative means j hurt. The paper's eq. 9 is the opposite difference (the effect of removing j).
#
# - Fig. 2 / Tables 7-8 (MNIST): test FID and IS after removing the n_h most harmful images by influence on FID or
#   IS, against influence on the discriminator loss and random removal, on `influence-dcgan` (the paper's MNIST
#   DCGAN, z 32, trained by the same plain-SGD loop), and Fig. 4: the most harmful and most helpful images.
#
# Every seed of every study is an independent run, so they all start first, `PROCESSES` at a time in worker
# processes, and each section collects its own. Not here: the MNIST half of Fig. 1 (IS/FID against counterfactual
# replays of single images), which does not fit the 2-core budget beside the cleansing study.

# %% tags=["parameters"]
MODEL = "influence-fcgan"
K_VALUES = [1]  # traced epochs k of Fig. 1 (paper: 1, 5, 10, 20, 50)
SEEDS = [0, 1, 2, 3, 4]  # Fig. 1 seeds (paper: 10)
TARGETS = 20  # verified instances per run (paper: 200)
N_H = [500, 2000]  # instances removed in Fig. 2 (5 and 20% of N; paper: 0.5k-20k of 50k)
CLEANSE_SEEDS = [0, 1, 2]  # Fig. 2 seeds (paper: 15)
LATENTS = 1000  # latents in Z prime and in Z_test (paper: 10k)
TRAIN_SIZE = 0  # 0: the card's 10k points; a smaller number traces only the first points (tests)
WORKERS = 1  # counterfactual replays in parallel (1: in this process)
MNIST_MODEL = "influence-dcgan"
MNIST_METRICS = ["fid", "is"]  # influence on these, each cleansed by its own ranking
MNIST_N_H = [500]  # images removed (25% of the traced 2,000; paper: 0.5k-45k of 50k, best at 20-25k)
MNIST_SEEDS = [0, 1]  # paper: 15
MNIST_LATENTS = 500  # |Z'| = |Z_test| (paper: 10k)
MNIST_BASELINES = ("dloss", "random")
MNIST_TRAIN = 2000  # trace the first 2,000 of the card's 4,000 images (0: all)
PROCESSES = 12  # independent runs (Fig. 1 and 2 seeds, MNIST runs) at once, in worker processes
DEVICE = "cpu"

# %%
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path.cwd() if (Path.cwd() / "core").is_dir() else Path.cwd().parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import ttest_1samp  # noqa: E402

from core.data import load as load_data  # noqa: E402
from core.methods.influence import (BASELINES, Game, InfluenceConfig, TraceConfig, TraceLog, check,  # noqa: E402
                                    prepare, random_agreement, run_influence, sign_rule)
from core.models import load_model  # noqa: E402
from core.viz.images import image_grid, png_bytes  # noqa: E402
from core.viz.influence import agreement_figure, cleansing_figure, influence_map  # noqa: E402
from core.zoo.registry import zoo_folder  # noqa: E402
from IPython.display import Image, display  # noqa: E402


def mnist_cleansing(metric: str, seed: int) -> dict:
    """Tables 7-8 for one metric and seed: trace one epoch of `MNIST_MODEL` continuing its own SGD training (the
    card's learning rate and gamma), estimate influence on `metric`, then re-run the epoch without the n_h most
    harmful images of each selector and measure the metric on test latents and test images."""
    mnist_gan = load_model(MNIST_MODEL, DEVICE)
    if MNIST_TRAIN:
        mnist_gan.card.data["size"] = MNIST_TRAIN
    lr = float(mnist_gan.card.training.get("lr", 1e-3))
    trace = TraceConfig(epochs=1, lr_g=lr, lr_d=lr, weight_decay=float(mnist_gan.card.training["weight_decay"]),
                        dtype="float32")
    base = InfluenceConfig(metric=metric, trace=trace, latents=MNIST_LATENTS, baselines=tuple(MNIST_BASELINES))
    ctx = prepare(mnist_gan, base, seed)
    rows = []
    with TemporaryDirectory() as folder:
        estimated = run_influence(ctx, base, seed, trace_dir=folder)
        game = Game(ctx.bundle, trace.torch_dtype, trace.weight_decay)
        for n_h in MNIST_N_H:
            _, cleansing = check(ctx, replace(base, cleanse=n_h), seed, game, TraceLog(folder), estimated.influence)
            before = cleansing.before
            rows += [{"metric": metric, "seed": seed, "n_h": n_h, "selector": selector, "before": before,
                      "after": after, "change": after - before} for selector, after in cleansing.after.items()]
    return {"rows": rows, "contribution": estimated.influence.contribution,
            "harmful": estimated.influence.most_harmful(36), "helpful": estimated.influence.most_helpful(36),
            "metrics": {k: estimated.metrics[k] for k in ("metric_value", "trace_seconds", "inference_seconds")}}

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 30)
started = time.perf_counter()
gan = load_model(MODEL, DEVICE)
if TRAIN_SIZE:
    gan.card.data["size"] = TRAIN_SIZE  # in memory only: trace the first TRAIN_SIZE training points
decay = float(gan.card.training.get("weight_decay", 0.0))
print(sign_rule("all"))
print(f"{MODEL}: trained {gan.card.training.get('epochs')} epochs, gamma {decay}, card metrics {gan.card.metrics}")


def config_for(k: int, **changes) -> InfluenceConfig:
    """The paper's traced continuation (plain SGD lr 1e-3, batch 100, simultaneous updates, the card's gamma)."""
    return InfluenceConfig(metric="all", trace=TraceConfig(epochs=k, weight_decay=decay), latents=LATENTS,
                           targets=TARGETS, workers=WORKERS, **changes)


def fig1_row(k: int, seed: int) -> dict:
    """Fig. 1 for one k and seed: trace k epochs, estimate, verify `TARGETS` instances by counterfactual replays."""
    config = config_for(k, verify=True)
    result = run_influence(prepare(gan, config, seed), config, seed)
    v = result.verification
    tau_random, jaccard_random = random_agreement(v.true, seed)
    return {"k": k, "seed": seed, "tau": v.kendall_tau, "jaccard": v.jaccard, "tau_random": tau_random,
            "jaccard_random": jaccard_random, "trace_s": result.metrics["trace_seconds"],
            "inference_s": result.metrics["inference_seconds"], "verify_s": v.seconds}


def cleanse_seed(seed: int) -> tuple[list[dict], tuple[np.ndarray, np.ndarray]]:
    """Fig. 2 / Table 6 for one seed: one traced epoch, then every n_h by every selector; and the Fig. 3a map."""
    base = config_for(1)
    ctx = prepare(gan, base, seed)
    seed_rows = []
    with TemporaryDirectory() as folder:
        estimate_run = run_influence(ctx, base, seed, trace_dir=folder)
        log = TraceLog(folder)
        game = Game(ctx.bundle, base.trace.torch_dtype, decay)
        for n_h in N_H:
            _, cleansing = check(ctx, replace(base, cleanse=n_h, baselines=(*BASELINES, "none")), seed, game, log,
                                 estimate_run.influence)
            seed_rows += [{"seed": seed, "n_h": n_h, "selector": selector,
                           "improvement_1e-2": 100 * cleansing.improvement(selector), "before": cleansing.before,
                           "after": cleansing.after[selector]} for selector in cleansing.after]
    return seed_rows, (ctx.x.numpy(), estimate_run.influence.contribution)


# Every (k, seed) of Fig. 1, every seed of Fig. 2 and every MNIST (metric, seed) is independent: all start now,
# `PROCESSES` at a time, and each section below collects its own.
pool = ProcessPoolExecutor(max_workers=PROCESSES)
mnist_runs = {}
if (zoo_folder(MNIST_MODEL) / "model.safetensors").is_file():
    mnist_runs = {(m, s): pool.submit(mnist_cleansing, m, s) for m in MNIST_METRICS for s in MNIST_SEEDS}
fig1_runs = {(k, s): pool.submit(fig1_row, k, s) for k in K_VALUES for s in SEEDS}
cleanse_runs = {s: pool.submit(cleanse_seed, s) for s in CLEANSE_SEEDS}
print(f"{len(fig1_runs)} Fig. 1, {len(cleanse_runs)} Fig. 2 and {len(mnist_runs)} MNIST runs started")


# %% [markdown]
# ## Fig. 1: estimated against true influence on ALL
# For every k and seed: continue training k epochs from the pretrained weights while logging each step
# (Algorithm 1), estimate every instance's influence walking the log back (Algorithm 2), then replay the logged run
# without each of `TARGETS` random instances (counterfactual ASGD) for the truth. "Random" is the mean over 200
# random orderings of the same targets.

# %%
rows = [run.result() for run in fig1_runs.values()]
agreement = pd.DataFrame(rows)
summary = agreement.groupby("k")[["tau", "jaccard", "tau_random", "jaccard_random"]].agg(["mean", "std"]).round(3)
tests = []
for k, group in agreement.groupby("k"):
    for name in ("tau", "jaccard"):
        gap = group[name] - group[f"{name}_random"]
        p = ttest_1samp(gap, 0.0, alternative="greater").pvalue if len(gap) > 1 else float("nan")
        tests.append({"k": k, "measure": name, "mean": group[name].mean(), "random": group[f"{name}_random"].mean(),
                      "one-sided t-test p (> random)": p, "seeds": len(group)})
print(summary)
print(pd.DataFrame(tests).round(4).to_string(index=False))
print("Paper (Fig. 1, ALL, 10 seeds, 200 targets): significantly better than random (p < .05) for every k, and "
      "accuracy falling as k grows; the values are given only as a plot.")
agreement_figure(agreement, title="Fig. 1 at 2-core size: ALL on influence-fcgan, mean ± std over seeds")

# %% [markdown]
# ## Fig. 2 / Table 6: data cleansing
# One traced epoch (k = 1, as the paper's cleansing) per seed, then for each n_h: remove the n_h most harmful
# instances by each selector, re-run the traced epoch without them (counterfactual ASGD) and measure ALL on test
# latents and test points that played no part in the selection. Improvement is test ALL after minus before,
# in units of 1e-2 as the paper's Table 6.

# %%
clean_rows = []
maps = {}
for seed, run in cleanse_runs.items():
    seed_rows, maps[seed] = run.result()
    clean_rows += seed_rows
cleaning = pd.DataFrame(clean_rows)
table6 = (cleaning.groupby(["selector", "n_h"])["improvement_1e-2"].agg(["mean", "std"])
          .apply(lambda r: f"{r['mean']:+.2f} ({r['std']:.2f})", axis=1).unstack("n_h"))
print(f"Ours: improvement of test ALL [1e-2], mean (std) over {len(CLEANSE_SEEDS)} seeds, N = {len(maps[CLEANSE_SEEDS[0]][0])}")
print(table6.to_string())
paper = pd.DataFrame({"n_h (paper, N = 50k)": ["0.5k", "2.5k", "5.0k", "10.0k"],
                      "influence": ["+0.09 (0.06)", "+0.31 (0.27)", "+0.44 (0.50)", "+0.22 (0.99)"],
                      "dloss": ["+0.02 (0.03)", "+0.11 (0.10)", "+0.19 (0.19)", "+0.32 (0.39)"],
                      "isolation-forest": ["+0.03 (0.05)", "+0.09 (0.27)", "+0.12 (0.54)", "+0.09 (1.05)"],
                      "random": ["+0.01 (0.04)", "+0.04 (0.19)", "+0.07 (0.39)", "+0.06 (0.83)"]})
print("\nPaper, Table 6 (same fractions of N: 1, 5, 10, 20%)")
print(paper.to_string(index=False))
best = cleaning[cleaning.selector == "influence"].groupby("n_h")["improvement_1e-2"].mean().idxmax()
at_best = cleaning[cleaning.n_h == best].groupby("selector")["improvement_1e-2"].mean().sort_values(ascending=False)
print(f"\nAt our best n_h = {best}: " + ", ".join(f"{s} {v:+.3f}" for s, v in at_best.items()))
last = cleaning[(cleaning.seed == CLEANSE_SEEDS[-1]) & (cleaning.n_h == best)]
cleansing_figure(last.assign(before=last["before"].iloc[0]),
                 "ALL", title=f"Fig. 2 at 2-core size: test ALL after removing {best} instances (seed "
                              f"{CLEANSE_SEEDS[-1]})")

# %% [markdown]
# ## Fig. 3a: where the harmful instances lie
# Training points coloured by their influence on ALL (red: hurt, blue: helped) over the density of the
# generator's samples. The paper finds the harmful instances where the generator over-samples (lower-left and
# upper-right along the correlation axis).

# %%
points, contribution = maps[CLEANSE_SEEDS[0]]
samples = gan.sample(4000, seed=0)[0].numpy()
influence_map(points, contribution, samples, harmful_positive=False,
              title="Fig. 3a: influence on ALL of each training point, generator samples as contours")

# %%
harm = -contribution
order = np.argsort(-harm)
top = points[order[:500]]
print(f"500 most harmful points: mean {top.mean(0).round(2)}, mean distance from the data mean "
      f"{np.linalg.norm(top - points.mean(0), axis=1).mean():.2f} vs {np.linalg.norm(points - points.mean(0), axis=1).mean():.2f} "
      "for all points")

# %% [markdown]
# ## Fig. 2 / Tables 7-8 on MNIST: data cleansing by influence on FID and IS
# Each row: the test metric after removing n_h images minus before (FID: negative is better; IS: positive is
# better), mean (std) over seeds. Paper (Tables 7-8, 15 seeds, N = 50k): influence on FID lowers test FID by up to
# 0.38 (std 0.36) at n_h = 20-25k; influence on IS raises test IS by up to 0.10 (0.12); the baselines do less.

# %%
if mnist_runs:
    mnist_done = {key: run.result() for key, run in mnist_runs.items()}
    mnist_table = pd.DataFrame([row for done in mnist_done.values() for row in done["rows"]])
    for metric, part in mnist_table.groupby("metric"):
        table = (part.groupby(["selector", "n_h"])["change"].agg(["mean", "std"])
                 .apply(lambda r: f"{r['mean']:+.3f} ({r['std']:.3f})", axis=1).unstack("n_h"))
        print(f"test {metric.upper()}[mnist-lenet] after - before, mean (std) over {part.seed.nunique()} seeds "
              f"(before: {part.before.mean():.3f})")
        print(table.to_string(), "\n")
    print(pd.DataFrame({key: done["metrics"] for key, done in mnist_done.items()}).T.round(3).to_string())
    metric, seed = MNIST_METRICS[0], MNIST_SEEDS[-1]
    last = mnist_table[(mnist_table.metric == metric) & (mnist_table.seed == seed)
                       & (mnist_table.n_h == MNIST_N_H[-1])]
    cleansing_figure(last, f"{metric.upper()}[mnist-lenet]",
                     title=f"Fig. 2 on MNIST: test {metric.upper()} after removing {MNIST_N_H[-1]} images "
                           f"(seed {seed})")

# %% [markdown]
# ## Fig. 4: the most harmful and the most helpful training images (influence on FID, first seed)

# %%
if mnist_runs:
    train_x = load_data("mnist", "train").x
    done = mnist_done[(MNIST_METRICS[0], MNIST_SEEDS[0])]
    for kind in ("harmful", "helpful"):
        print(f"36 most {kind} images (influence on {MNIST_METRICS[0].upper()}), most {kind} first")
        display(Image(png_bytes(image_grid(train_x[done[kind]], ncol=12, scale=2))))
pool.shutdown()
print(f"total {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## Where and why our numbers differ from the paper's
# Measured in the committed run (default parameters, 2 cores shared with five other jobs at load 40-60; every
# seed in its own worker process):
# - **Fig. 1.** Kendall tau 0.73 ± 0.17 and Jaccard 0.61 ± 0.24 at k = 1 (5 seeds, 20 targets), against random
#   -0.00 and 0.34; one-sided t-tests over seeds p = 0.0003 (tau) and 0.03 (Jaccard): significantly better than
#   random, as the paper finds. (The session-5 run at 30 targets and k = 1, 2 gave tau 0.83 ± 0.17 and 0.83 ± 0.08;
#   k = 2 did not fit this session's budget.) The paper's fall of accuracy with k shows over k = 1-50.
# - **Fig. 2 / Table 6.** Cleansing by influence on ALL improves test ALL more than every baseline at both n_h
#   (+0.12e-2 at n_h = 20% of N against +0.07e-2 for D loss, +0.05e-2 for isolation forest and random). The paper
#   peaks at 10% (+0.44e-2) and falls after; ours still rises at 20%. Our standard deviations are far smaller
#   because our seeds share the shipped pretrained model and differ only in the traced epoch and the metric sets;
#   the paper's 15 seeds retrain the whole GAN.
# - **Fig. 3a.** Our most harmful points lie below the diagonal (mean about (1.14, 0.16)), not at the lower-left and
#   upper-right ends as in the paper: our generator is another one (covariance error 1.44 on its card), so it
#   over-samples other regions. We did not measure its excess density per region.
# - **Sizes.** N = 10k training points (Table 6 uses 50k), 20 verified targets (paper 200), |Z'| = 1000 (10k),
#   5 seeds for Fig. 1 (10) and 3 for Fig. 2 (15), k = 1 epoch (paper up to 50): what 2 shared cores allowed.
#   With 20 targets the critical sets are 2 x 5 instances instead of 2 x 10.
# - **MNIST, Tables 7-8 / Fig. 2.** On `influence-dcgan`, one traced epoch over its first 2,000 training images at
#   the card's SGD step (3e-2), removing n_h = 500 (25%): cleansing by influence on FID lowers test
#   FID[mnist-lenet] by 8.0 ± 8.3 (from 104.8), where D-loss influence raises it by 7.1 ± 3.5 and random removal
#   by 3.3 ± 0.7; cleansing by influence on IS raises test IS by 0.074 ± 0.038 (from 5.87), against -0.046 ± 0.090
#   (D loss) and +0.003 ± 0.024 (random). Same direction as the paper's Tables 7-8 (FID -0.38, IS +0.10 at their
#   best n_h), with larger swings: our traced step is 30x the paper's and our GAN is far from converged. Only 2
#   seeds (paper 15) fitted the budget, so these are not significance tests.
# - **Fig. 4.** The most harmful images for FID are thin, light strokes (7, 1, 9); the most helpful are thick,
#   round digits (0, 8, 5, 6). Our width-8 generator draws thick blobs, so thin training digits pull its samples
#   away from what the test images' features reward. The paper's harmful MNIST instances are likewise atypical
#   strokes.
# - **Where the trace starts.** We trace k epochs *continuing* the shipped 50-epoch model; the paper traces the
#   last k of its K epochs. Both are the last k epochs of SGD on the same recipe.
# - **Scale of the effect.** Improvements are hundredths of a nat in both: bandwidth-1 ALL is nearly blind to the
#   spread of the samples, so removing a few percent of the data moves it little.
