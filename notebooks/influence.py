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
# # Influence estimation for GANs at 2-core size: the 2-D study and MNIST
#
# Terashita, Ohashi, Nonaka & Kanamori, *Influence Estimation for Generative Adversarial Networks* (ICLR 2021),
# reproduced with Lethe's engine on `influence-fcgan`, the paper's own FCGAN (float64, D 2x64, G 2x32, z 10) trained
# by the paper's recipe (plain SGD lr 1e-3, batch 100, gamma 1e-3, 50 epochs) on 10k points of the correlated
# Gaussian, and on `influence-dcgan`, the paper's MNIST DCGAN (z 32) trained by the same plain-SGD loop. Every
# number comes from `core.methods.influence` and every figure from `core.viz.influence`, the same calls the
# **Influence** page and `python -m core influence` make.
#
# - Fig. 1: Kendall's tau and the Jaccard index of the 20 critical instances between estimated and true influence
#   (counterfactual replays), over several seeds, beside random ranking, with the significance test the paper
#   uses (p < .05): on ALL for the 2-D model (against the number of traced epochs k), and on IS and FID for MNIST.
# - Fig. 2 / Table 6: test ALL after removing the n_h most harmful instances, against isolation forest,
#   influence on the discriminator loss, random removal and no removal.
# - Fig. 3a: where the harmful and helpful instances lie, over the generator's samples.
# - Fig. 2 / Tables 7-8 (MNIST): test FID and IS after removing the n_h most harmful images by influence on FID or
#   IS, against influence on the discriminator loss and random removal, and Fig. 4: the most harmful and most
#   helpful images.
#
# **Sign.** Influence is shown as *V with j - V without j* (what instance j contributed): on ALL, positive means
# j helped and negative means j hurt. The paper's eq. 9 is the opposite difference (the effect of removing j).
#
# Every trace (with its estimates) and every counterfactual replay is an independent job for Lethe's shared
# executor (`core.runs.executor.run_jobs`), `WORKERS` at a time in worker processes; each section runs its own.

# %% tags=["parameters"]
MODEL = "influence-fcgan"
K_VALUES = [1]  # traced epochs k of Fig. 1 (paper: 1, 5, 10, 20, 50)
SEEDS = [0, 1, 2, 3, 4]  # Fig. 1 seeds (paper: 10)
TARGETS = 20  # verified instances per run (paper: 200)
N_H = [500, 2000]  # instances removed in Fig. 2 (5 and 20% of N; paper: 0.5k-20k of 50k)
CLEANSE_SEEDS = [0, 1, 2]  # Fig. 2 seeds (paper: 15)
LATENTS = 1000  # latents in Z prime and in Z_test (paper: 10k)
TRAIN_SIZE = 0  # 0: the card's 10k points; a smaller number traces only the first points (tests)
MNIST_MODEL = "influence-dcgan"
MNIST_FIG1_SEEDS = [0, 1, 2, 3, 4]  # Fig. 1 on MNIST (paper: 10); [] skips the section
MNIST_FIG1_TARGETS = 200  # verified images per run (the paper's 200: critical sets of 2 x 10 among 200)
MNIST_FIG1_TRAIN = 1000  # images traced in Fig. 1 on MNIST (paper: N = 10k)
MNIST_FIG1_LR = 1e-3  # the paper's SGD step for Fig. 1 (Table 2)
MNIST_METRICS = ["fid", "is"]  # influence on these, each cleansed by its own ranking
MNIST_N_H = [500, 1000]  # images removed (25 and 50% of the traced 2,000; paper: 0.5k-45k of 50k, best at 20-25k)
MNIST_SEEDS = [0, 1, 2, 3, 4]  # paper: 15
MNIST_LATENTS = 500  # |Z'| = |Z_test| (paper: 10k)
MNIST_BASELINES = ("dloss", "isolation-forest", "random")
MNIST_TRAIN = 2000  # trace the first 2,000 of the card's 4,000 images (0: all)
WORKERS = 2  # worker processes for each section's independent jobs (core.runs.executor.run_jobs)
DEVICE = "cpu"

# %%
import sys
import time
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path.cwd() if (Path.cwd() / "core").is_dir() else Path.cwd().parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import ttest_1samp  # noqa: E402

from core.data import load as load_data  # noqa: E402
from core.methods.influence import (BASELINES, EstimateJob, Game, InfluenceConfig, ReplayJob,  # noqa: E402
                                    ScoredReplay, TraceConfig, TraceLog, Verification, make_metric, pick_targets,
                                    prepare, random_agreement, removal_sets, run_jobs, sign_rule)
from core.models import load_model  # noqa: E402
from core.viz.images import image_grid, png_bytes  # noqa: E402
from core.viz.influence import agreement_figure, cleansing_figure, influence_map  # noqa: E402
from core.zoo.registry import zoo_folder  # noqa: E402
from IPython.display import Image, display  # noqa: E402

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 30)
started = time.perf_counter()
traces = TemporaryDirectory(prefix="lethe-influence-notebook-")  # every run's trace log, removed at the end


def estimated(study: str, runs: dict, metrics: tuple[str, ...]) -> dict:
    """Algorithm 1 and 2 for every run of `study`: `runs[key] = (ctx, trace config, seed)`; one `EstimateJob` per
    run (one trace, the influence on each of `metrics`), `WORKERS` at a time through the shared executor. Returns
    `{key: (TraceLog, {metric: Influence})}`."""
    folders = {key: Path(traces.name) / study / str(key) for key in runs}
    jobs = [EstimateJob(ctx.bundle, ctx.x, tc, seed, folders[key], metrics, ctx.sets, ctx.judge, ctx.dataset)
            for key, (ctx, tc, seed) in runs.items()]
    return {key: (TraceLog(folders[key]), out) for key, out in zip(runs, run_jobs(jobs, WORKERS))}


def template_of(ctx, tc: TraceConfig, log: TraceLog, metric: str) -> ReplayJob:
    """The counterfactual replay of `log` (nothing removed yet), scored on `metric`."""
    return ReplayJob(ctx.bundle, tc.torch_dtype, tc.weight_decay, ctx.x, log.folder, np.zeros(0, np.int64), metric,
                     ctx.sets, ctx.judge, ctx.dataset)


def fig1_table(study: str, runs: dict, metrics: tuple[str, ...], targets: int) -> pd.DataFrame:
    """Fig. 1 for every run `(k, seed)`: estimate, then replay the logged run once without each of `targets` random
    instances (counterfactual ASGD), every replay of every run one job scored on all `metrics`; tau and Jaccard
    of estimated against true influence beside random orderings of the same targets."""
    estimates = estimated(study, runs, metrics)
    picked = {key: pick_targets(log, targets, runs[key][2]) for key, (log, _) in estimates.items()}
    jobs = [ScoredReplay(replace(template_of(runs[key][0], runs[key][1], log, metrics[0]), removed=np.array([j])),
                         metrics) for key, (log, _) in estimates.items() for j in picked[key]]
    start = time.perf_counter()
    values = iter(run_jobs(jobs, WORKERS))
    seconds_per_replay = (time.perf_counter() - start) * WORKERS / max(1, len(jobs))
    rows = []
    for (k, seed), (log, influences) in estimates.items():
        scored = [next(values) for _ in picked[(k, seed)]]
        for metric, influence in influences.items():
            true = np.array([v[metric] for v in scored]) - influence.metric_value
            v = Verification.measured(picked[(k, seed)], influence.values[picked[(k, seed)]], true,
                                      seconds_per_replay * len(picked[(k, seed)]))
            tau_random, jaccard_random = random_agreement(v.true, seed)
            rows.append({"metric": metric, "k": k, "seed": seed, "tau": v.kendall_tau, "jaccard": v.jaccard,
                         "tau_random": tau_random, "jaccard_random": jaccard_random,
                         "inference_s": influence.seconds, "replay_s": seconds_per_replay})
    return pd.DataFrame(rows)


def significance(agreement: pd.DataFrame) -> pd.DataFrame:
    """The paper's test (p < .05): one-sided t-test over seeds that tau (Jaccard) beats random ranking's."""
    tests = []
    for (metric, k), group in agreement.groupby(["metric", "k"]):
        for name in ("tau", "jaccard"):
            gap = group[name] - group[f"{name}_random"]
            p = ttest_1samp(gap, 0.0, alternative="greater").pvalue if len(gap) > 1 else float("nan")
            tests.append({"metric": metric, "k": k, "measure": name, "mean": group[name].mean(),
                          "std": group[name].std(), "random": group[f"{name}_random"].mean(),
                          "one-sided t-test p (> random)": p, "seeds": len(group)})
    return pd.DataFrame(tests)


def cleansing_rows(runs: dict, estimates: dict, metric: str, n_hs: list[int], selectors: tuple[str, ...]) -> list:
    """Fig. 2 for every run `seed`: remove each selector's n_h most harmful instances, re-run the traced epoch
    without them (one job per seed, n_h and selector) and measure `metric` on test latents and test data."""
    cases, jobs = [], []
    for seed, (log, influences) in estimates.items():
        ctx, tc, _ = runs[seed]
        for n_h in n_hs:
            removed = removal_sets(n_h, len(ctx.x), selectors, influences[metric], influences.get("dloss"), ctx.x,
                                   ctx.judge, seed)
            for selector, chosen in removed.items():
                cases.append((seed, n_h, selector))
                jobs.append(replace(template_of(ctx, tc, log, metric), removed=chosen, on="test"))
    after = run_jobs(jobs, WORKERS)
    before = {}
    for seed, (log, _) in estimates.items():
        ctx, tc, _ = runs[seed]
        game = Game(ctx.bundle, tc.torch_dtype, tc.weight_decay)
        before[seed] = make_metric(metric, game, ctx.sets, ctx.judge, ctx.dataset).test(log.final(game))
    return [{"metric": metric, "seed": seed, "n_h": n_h, "selector": selector, "before": before[seed],
             "after": value, "change": value - before[seed]} for (seed, n_h, selector), value in zip(cases, after)]


gan = load_model(MODEL, DEVICE)
if TRAIN_SIZE:
    gan.card.data["size"] = TRAIN_SIZE  # in memory only: trace the first TRAIN_SIZE training points
decay = float(gan.card.training.get("weight_decay", 0.0))
print(sign_rule("all"))
print(f"{MODEL}: trained {gan.card.training.get('epochs')} epochs, gamma {decay}, card metrics {gan.card.metrics}")


def config_for(k: int) -> InfluenceConfig:
    """The paper's traced continuation (plain SGD lr 1e-3, batch 100, simultaneous updates, the card's gamma)."""
    return InfluenceConfig(metric="all", trace=TraceConfig(epochs=k, weight_decay=decay), latents=LATENTS)


# %% [markdown]
# ## Fig. 1: estimated against true influence on ALL
# For every k and seed: continue training k epochs from the pretrained weights while logging each step
# (Algorithm 1), estimate every instance's influence walking the log back (Algorithm 2), then replay the logged run
# without each of `TARGETS` random instances (counterfactual ASGD) for the truth. "Random" is the mean over 200
# random orderings of the same targets. Every trace and every replay is a job for the shared executor.

# %%
fig1_runs = {(k, s): (prepare(gan, config_for(k), s), config_for(k).trace, s) for k in K_VALUES for s in SEEDS}
agreement = fig1_table("fig1-all", fig1_runs, ("all",), TARGETS)
print(agreement.groupby("k")[["tau", "jaccard", "tau_random", "jaccard_random"]].agg(["mean", "std"]).round(3))
print(significance(agreement).round(4).to_string(index=False))
print("Paper (Fig. 1, ALL, 10 seeds, 200 targets): significantly better than random (p < .05) for every k, and "
      "accuracy falling as k grows; the values are given only as a plot.")
agreement_figure(agreement.drop(columns="metric"),
                 title="Fig. 1 at 2-core size: ALL on influence-fcgan, mean ± std over seeds")

# %% [markdown]
# ## Fig. 1 on MNIST: estimated against true influence on IS and FID
# As the ALL study above, on `influence-dcgan` (the paper's MNIST DCGAN, z 32): per seed, trace one epoch over
# its first `MNIST_FIG1_TRAIN` training images at the paper's SGD step (1e-3, Table 2) in float64, estimate every
# image's influence on IS and on FID from that one trace, then replay the epoch without each of
# `MNIST_FIG1_TARGETS` random images; each replay is scored on both metrics (one counterfactual generator, two
# true influences). IS and FID use `mnist-lenet`, the dataset's Lethe classifier (the paper: a small CNN trained on
# D'_x). k = 1 only (the paper: k = 1-50).

# %%
mnist_available = (zoo_folder(MNIST_MODEL) / "model.safetensors").is_file()
if mnist_available and MNIST_FIG1_SEEDS:
    fig1_gan = load_model(MNIST_MODEL, DEVICE)
    fig1_gan.card.data["size"] = MNIST_FIG1_TRAIN
    fig1_trace = TraceConfig(epochs=1, lr_g=MNIST_FIG1_LR, lr_d=MNIST_FIG1_LR, dtype="float64",
                             weight_decay=float(fig1_gan.card.training["weight_decay"]))
    fig1_config = InfluenceConfig(metric="fid", trace=fig1_trace, latents=MNIST_LATENTS)
    fig1_mnist_runs = {(1, s): (prepare(fig1_gan, fig1_config, s), fig1_trace, s) for s in MNIST_FIG1_SEEDS}
    mnist_fig1 = fig1_table("fig1-mnist", fig1_mnist_runs, ("is", "fid"), MNIST_FIG1_TARGETS)
    print(f"N = {MNIST_FIG1_TRAIN} images, {MNIST_FIG1_TARGETS} verified per seed, |Z'| = {MNIST_LATENTS}, "
          f"{len(MNIST_FIG1_SEEDS)} seeds, k = 1")
    print(mnist_fig1.groupby("metric")[["tau", "jaccard", "tau_random", "jaccard_random"]].agg(["mean", "std"])
          .round(3))
    print(significance(mnist_fig1).round(4).to_string(index=False))
    print(mnist_fig1.groupby("metric")[["inference_s", "replay_s"]].mean().round(1)
          .rename(columns={"inference_s": "inference s (per seed)", "replay_s": "s per replay (per worker)"}))
    print("Paper (Fig. 1, MNIST DCGAN, N = 10k, 10 seeds, 200 targets): IS and FID significantly better than random "
          "(p < .05) for every k, except the Jaccard index of IS at k = 50; values given only as a plot.")
    for metric, part in mnist_fig1.groupby("metric"):
        display(agreement_figure(part.drop(columns="metric"),
                                 title=f"Fig. 1 on MNIST: {metric.upper()}[mnist-lenet], mean ± std over seeds"))

# %% [markdown]
# ## Fig. 2 / Table 6: data cleansing
# One traced epoch (k = 1, as the paper's cleansing) per seed, then for each n_h: remove the n_h most harmful
# instances by each selector, re-run the traced epoch without them (counterfactual ASGD) and measure ALL on test
# latents and test points that played no part in the selection. Improvement is test ALL after minus before,
# in units of 1e-2 as the paper's Table 6.

# %%
cleanse_runs = {s: (prepare(gan, config_for(1), s), config_for(1).trace, s) for s in CLEANSE_SEEDS}
cleanse_estimates = estimated("fig2-all", cleanse_runs, ("all", "dloss"))
cleaning = pd.DataFrame(cleansing_rows(cleanse_runs, cleanse_estimates, "all", N_H,
                                       ("influence", *BASELINES, "none")))
cleaning["improvement_1e-2"] = 100 * cleaning["change"]
maps = {s: (cleanse_runs[s][0].x.numpy(), cleanse_estimates[s][1]["all"].contribution) for s in CLEANSE_SEEDS}
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
cleansing_figure(last, "ALL", title=f"Fig. 2 at 2-core size: test ALL after removing {best} instances (seed "
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
# Per seed, one epoch of `MNIST_MODEL` traced over its first `MNIST_TRAIN` images, continuing its own SGD training
# (the card's step and gamma, float32); influence on FID, IS and the discriminator loss from that one trace; then
# the epoch re-run without the n_h most harmful images of each selector, and the metric measured on test latents
# and test images. Each row: the test metric after removing n_h images minus before (FID: negative is better;
# IS: positive is better), mean (std) over seeds. Paper (Tables 7-8, 15 seeds, N = 50k): influence on FID lowers
# test FID by up to 0.38 (std 0.36) at n_h = 20-25k; influence on IS raises test IS by up to 0.10 (0.12); the
# baselines do less.

# %%
if mnist_available and MNIST_SEEDS:
    mnist_gan = load_model(MNIST_MODEL, DEVICE)
    if MNIST_TRAIN:
        mnist_gan.card.data["size"] = MNIST_TRAIN
    lr = float(mnist_gan.card.training.get("lr", 1e-3))
    mnist_trace = TraceConfig(epochs=1, lr_g=lr, lr_d=lr, dtype="float32",
                              weight_decay=float(mnist_gan.card.training["weight_decay"]))
    mnist_config = InfluenceConfig(metric="fid", trace=mnist_trace, latents=MNIST_LATENTS)
    mnist_runs = {s: (prepare(mnist_gan, mnist_config, s), mnist_trace, s) for s in MNIST_SEEDS}
    mnist_estimates = estimated("fig2-mnist", mnist_runs, (*MNIST_METRICS, "dloss"))
    mnist_table = pd.DataFrame([row for metric in MNIST_METRICS for row in cleansing_rows(
        mnist_runs, mnist_estimates, metric, MNIST_N_H, ("influence", *MNIST_BASELINES))])
    for metric, part in mnist_table.groupby("metric"):
        table = (part.groupby(["selector", "n_h"])["change"].agg(["mean", "std"])
                 .apply(lambda r: f"{r['mean']:+.3f} ({r['std']:.3f})", axis=1).unstack("n_h"))
        print(f"test {metric.upper()}[mnist-lenet] after - before, mean (std) over {part.seed.nunique()} seeds "
              f"(before: {part.before.mean():.3f})")
        print(table.to_string(), "\n")
    print(pd.DataFrame({(m, s): {"metric_value": inf[m].metric_value, "inference_s": inf[m].seconds}
                        for s, (_, inf) in mnist_estimates.items() for m in MNIST_METRICS}).T.round(3).to_string())
    metric, seed = MNIST_METRICS[0], MNIST_SEEDS[-1]
    last = mnist_table[(mnist_table.metric == metric) & (mnist_table.seed == seed)
                       & (mnist_table.n_h == MNIST_N_H[-1])]
    display(cleansing_figure(last, f"{metric.upper()}[mnist-lenet]",
                             title=f"Fig. 2 on MNIST: test {metric.upper()} after removing {MNIST_N_H[-1]} images "
                                   f"(seed {seed})"))

# %% [markdown]
# ## Fig. 4: the most harmful and the most helpful training images (influence on FID, first seed)

# %%
if mnist_available and MNIST_SEEDS:
    train_x = load_data("mnist", "train").x
    first = mnist_estimates[MNIST_SEEDS[0]][1][MNIST_METRICS[0]]
    for kind, chosen in (("harmful", first.most_harmful(36)), ("helpful", first.most_helpful(36))):
        print(f"36 most {kind} images (influence on {MNIST_METRICS[0].upper()}), most {kind} first")
        display(Image(png_bytes(image_grid(train_x[chosen], ncol=12, scale=2))))
traces.cleanup()
print(f"total {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## Where and why our numbers differ from the paper's
# Measured in the committed run (2026-12-02, default parameters, 1,548 s on 2 cores shared with one single-threaded
# experiment, load about 3; each section's traces and replays through the shared executor with 2 worker processes):
# - **Fig. 1.** Kendall tau 0.73 ± 0.17 and Jaccard 0.61 ± 0.24 at k = 1 (5 seeds, 20 targets), against random
#   -0.00 and 0.34; one-sided t-tests over seeds p = 0.0003 (tau) and 0.03 (Jaccard): significantly better than
#   random, as the paper finds. (The session-5 run at 30 targets and k = 1, 2 gave tau 0.83 ± 0.17 and 0.83 ± 0.08;
#   k = 2 did not fit this session's budget.) The paper's fall of accuracy with k shows over k = 1-50.
# - **Fig. 1 on MNIST.** At k = 1 (N = 1,000 images, the paper's 200 verified images per seed, 5 seeds, lr 1e-3):
#   FID, tau 0.55 ± 0.20 and Jaccard 0.49 ± 0.24 against random -0.00 and 0.05, one-sided p = 0.002 and 0.007; IS,
#   tau 0.39 ± 0.13 and Jaccard 0.36 ± 0.15 against random 0.00 and 0.05, p = 0.001 and 0.006. Both metrics beat
#   random on both measures, as in the paper. The number of verified images matters for the Jaccard index: its 2 x 10
#   critical instances among 40 verified images (the 2026-11 run) are half of them, so random orderings already
#   reach 0.34 and IS's 0.36 ± 0.10 was not distinguishable from it (p = 0.33); among 200 random reaches 0.05.
#   Agreement is lower than on ALL: (1) our DCGAN uses ReLU / LeakyReLU where the paper's uses sigmoids, so the
#   replayed training map is piecewise linear: dropping one image (1% of one D step) moves pre-activations across
#   kinks, and the true effect is not linear in the removed weight (a side check on seed 0, outside this notebook:
#   the IS change per unit of removed weight at weights 0, 0.5, 0.9 and 0.99 of one image was -1.4e-5, -2.1e-5,
#   +1.0e-6 and -3.0e-5), which no first-order estimate follows; IS, a ratio of mean class probabilities, is the
#   more sensitive to it. (2) The Jacobian treats spectral-norm vectors and batch-norm statistics as constants, as
#   PyTorch does. (3) 5 seeds instead of 10, N = 1,000 instead of 10k. We trace at the paper's step 1e-3 (Table 2),
#   not the card's 3e-2: at 3e-2 (side check, 7 targets) the estimate was 10-100x smaller than the true influence
#   and of the other sign on about half of them; the linearisation over 10 steps breaks down at 30x the paper's
#   step.
# - **Fig. 2 / Table 6.** Cleansing by influence on ALL improves test ALL more than every baseline at both n_h
#   (+0.12e-2 at n_h = 20% of N against +0.07e-2 for D loss, +0.05e-2 for isolation forest and random). The paper
#   peaks at 10% (+0.44e-2) and falls after; ours still rises at 20%. Our standard deviations are far smaller
#   because our seeds share the shipped pretrained model and differ only in the traced epoch and the metric sets;
#   the paper's 15 seeds retrain the whole GAN.
# - **Fig. 3a.** Our most harmful points lie below the diagonal (mean about (1.14, 0.16)), not at the lower-left and
#   upper-right ends as in the paper: our generator is another one (covariance error 1.44 on its card), so it
#   over-samples other regions. We did not measure its excess density per region.
# - **Sizes.** 2-D: N = 10k training points (Table 6 uses 50k), 20 verified targets (paper 200), |Z'| = 1000 (10k),
#   5 seeds for Fig. 1 (10) and 3 for Fig. 2 (15), k = 1 epoch (paper up to 50): what 2 shared cores allowed.
#   With 20 targets the critical sets are 2 x 5 instances instead of 2 x 10. MNIST: 200 verified images per seed
#   (the paper's), N = 1,000 for Fig. 1 and 2,000 for cleansing, |Z'| = 500, 5 seeds.
# - **MNIST, Tables 7-8 / Fig. 2.** On `influence-dcgan`, one traced epoch over its first 2,000 training images at
#   the card's SGD step (3e-2), 5 seeds. Removing n_h = 500 (25%): cleansing by influence on FID lowers test
#   FID[mnist-lenet] by 6.0 ± 5.0 (from 110.4), where D-loss influence raises it by 4.0 ± 4.6, random removal
#   by 4.2 ± 3.5 and isolation forest (on mnist-lenet's features) by 10.5 ± 9.1; cleansing by influence on IS
#   raises test IS by 0.106 ± 0.043 (from 5.74), against -0.037 ± 0.058 (D loss), -0.017 ± 0.056 (random) and
#   -0.068 ± 0.149 (isolation forest). Removing n_h = 1000 (50%, near the paper's best fraction) hurts every
#   selector, influence least (FID +5.1 ± 2.2 against +18.9 D loss, +15.0 random, +33.6 isolation forest; IS -0.063
#   against -0.268, -0.135 and -0.353). Isolation forest is the worst baseline here, as in the authors' report
#   (FID +6.99 where influence gave -0.38). One
#   epoch at 30x the paper's step without half the data moves the GAN far, where the paper's last epoch of a
#   converged GAN does not. Same direction as the paper's Tables 7-8 (FID -0.38, IS +0.10 at their best n_h) at
#   25%, with larger swings: our traced step is 30x the paper's and our GAN is far from converged. 5 seeds
#   (paper 15).
# - **Fig. 4.** The most harmful images for FID are thin, light strokes (7, 1, 9); the most helpful are thick,
#   round digits (0, 8, 5, 6). Our width-8 generator draws thick blobs, so thin training digits pull its samples
#   away from what the test images' features reward. The paper's harmful MNIST instances are likewise atypical
#   strokes.
# - **Where the trace starts.** We trace k epochs *continuing* the shipped 50-epoch model; the paper traces the
#   last k of its K epochs. Both are the last k epochs of SGD on the same recipe.
# - **Scale of the effect.** Improvements are hundredths of a nat in both: bandwidth-1 ALL is nearly blind to the
#   spread of the samples, so removing a few percent of the data moves it little.
