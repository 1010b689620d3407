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
# Not here: the MNIST half of Fig. 1 and 2 (IS and FID). Lethe has no SGD-trained MNIST DCGAN in the zoo yet, and
# counterfactual replays of an image GAN do not fit a 2-core budget in this notebook; `python -m core influence
# mnist-dcgan --metric fid` runs the same code on the Adam-trained DCGAN.

# %% tags=["parameters"]
MODEL = "influence-fcgan"
K_VALUES = [1, 2]  # traced epochs k of Fig. 1 (paper: 1, 5, 10, 20, 50)
SEEDS = [0, 1, 2, 3, 4]  # Fig. 1 seeds (paper: 10)
TARGETS = 30  # verified instances per run (paper: 200)
N_H = [100, 500, 1000, 2000]  # instances removed in Fig. 2 (1, 5, 10, 20% of N; paper: 0.5k-20k of 50k)
CLEANSE_SEEDS = [0, 1, 2]  # Fig. 2 seeds (paper: 15)
LATENTS = 2000  # latents in Z prime and in Z_test (paper: 10k)
TRAIN_SIZE = 0  # 0: the card's 10k points; a smaller number traces only the first points (tests)
WORKERS = 1  # counterfactual replays in parallel (1: in this process)
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

from core.methods.influence import (BASELINES, Game, InfluenceConfig, TraceConfig, TraceLog, check,  # noqa: E402
                                    prepare, random_agreement, run_influence, sign_rule)
from core.models import load_model  # noqa: E402
from core.viz.influence import agreement_figure, cleansing_figure, influence_map  # noqa: E402

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


# %% [markdown]
# ## Fig. 1: estimated against true influence on ALL
# For every k and seed: continue training k epochs from the pretrained weights while logging each step
# (Algorithm 1), estimate every instance's influence walking the log back (Algorithm 2), then replay the logged run
# without each of `TARGETS` random instances (counterfactual ASGD) for the truth. "Random" is the mean over 200
# random orderings of the same targets.

# %%
rows = []
for k in K_VALUES:
    for seed in SEEDS:
        config = config_for(k, verify=True)
        result = run_influence(prepare(gan, config, seed), config, seed)
        v = result.verification
        tau_random, jaccard_random = random_agreement(v.true, seed)
        rows.append({"k": k, "seed": seed, "tau": v.kendall_tau, "jaccard": v.jaccard, "tau_random": tau_random,
                     "jaccard_random": jaccard_random, "trace_s": result.metrics["trace_seconds"],
                     "inference_s": result.metrics["inference_seconds"], "verify_s": v.seconds})
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
for seed in CLEANSE_SEEDS:
    base = config_for(1)
    ctx = prepare(gan, base, seed)
    with TemporaryDirectory() as folder:
        estimate_run = run_influence(ctx, base, seed, trace_dir=folder)
        log = TraceLog(folder)
        game = Game(ctx.bundle, base.trace.torch_dtype, decay)
        for n_h in N_H:
            _, cleansing = check(ctx, replace(base, cleanse=n_h, baselines=(*BASELINES, "none")), seed, game, log,
                                 estimate_run.influence)
            for selector in cleansing.after:
                clean_rows.append({"seed": seed, "n_h": n_h, "selector": selector,
                                   "improvement_1e-2": 100 * cleansing.improvement(selector),
                                   "before": cleansing.before, "after": cleansing.after[selector]})
    maps[seed] = (ctx.x.numpy(), estimate_run.influence.contribution)
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
print(f"total {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## Where and why our numbers differ from the paper's
# Measured in the committed run (default parameters, 2 shared cores, 21 min):
# - **Fig. 1.** Kendall tau 0.83 ± 0.17 (k = 1) and 0.83 ± 0.08 (k = 2), Jaccard 0.75 ± 0.20 and 0.80 ± 0.10, against
#   random 0.00 and 0.31; one-sided t-tests over 5 seeds p <= 0.004 in every cell: significantly better than random,
#   as the paper finds. The paper's fall of accuracy with k shows over k = 1-50; k = 1-2 is too short to see it.
# - **Fig. 2 / Table 6.** Cleansing by influence on ALL improves test ALL more than every baseline at every n_h
#   (+0.13e-2 at n_h = 20% of N against +0.06e-2 for D loss, +0.05e-2 for isolation forest and random). The paper
#   peaks at 10% (+0.44e-2) and falls after; ours still rises at 20%. Our standard deviations are far smaller
#   because our seeds share the shipped pretrained model and differ only in the traced epoch and the metric sets;
#   the paper's 15 seeds retrain the whole GAN.
# - **Fig. 3a.** Our most harmful points lie below the diagonal (mean about (1.24, 0.24)), not at the lower-left and
#   upper-right ends as in the paper: our generator is another one (covariance error 1.44 on its card), so it
#   over-samples other regions. We did not measure its excess density per region.
# - **Sizes.** N = 10k training points (Table 6 uses 50k), 30 verified targets (paper 200), |Z'| = 2000 (10k),
#   5 seeds for Fig. 1 (10) and 3 for Fig. 2 (15), k up to 2 epochs (paper up to 50): what 2 shared cores allow.
#   With 30 targets the critical sets are 2 x 7 instances instead of 2 x 10.
# - **Where the trace starts.** We trace k epochs *continuing* the shipped 50-epoch model; the paper traces the
#   last k of its K epochs. Both are the last k epochs of SGD on the same recipe.
# - **Scale of the effect.** Improvements are hundredths of a nat in both: bandwidth-1 ALL is nearly blind to the
#   spread of the samples, so removing a few percent of the data moves it little.
