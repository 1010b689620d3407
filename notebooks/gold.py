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
# # GOLD for conditional GANs, at 2-core size
#
# Mo et al., *Mining GOLD Samples for Conditional GANs* (NeurIPS 2019), reproduced with Lethe's engine on
# `mnist-acgan`, `fashion-acgan` (when shipped) and `toy-acgan` (six 2-D clusters, binary labels). Every number comes
# from `core.methods.gold`, the same calls the **GOLD** page and `python -m core gold` make.
#
# - Fig. 1a: histograms of the marginal and conditional terms; Fig. 2: samples sorted by GOLD.
# - Table 3 / 4: fitting capacity of plain vs rejection samples, and the p sweep (acceptance rates).
# - Fig. 1b-c / Table 1: re-weighting on the 2-D toy (the MNIST run does not fit the 2-core budget).
# - Fig. 3 / 4: active learning, GOLD vs random queries, on the 2-D clusters.
#
# The defaults are the 2-core size (about 15 minutes on a loaded machine). The budgets are far below the paper's (50k samples and 40 LeNet epochs per fitting capacity, 20 training epochs),
# so differences of a point are within the seed-to-seed spread printed beside them.

# %% tags=["parameters"]
MODELS = ["mnist-acgan", "fashion-acgan"]  # image cGANs (skipped when not shipped)
TOY = "toy-acgan"
SEEDS = [0, 1, 2]
SCORE_SAMPLES = 1000  # generated samples for Fig. 1a / Fig. 2
FC_SAMPLES = 2000  # samples per fitting capacity (paper: 50,000)
FC_EPOCHS = 3  # LeNet epochs (paper: 40)
BURN_IN = 2000  # rejection burn-in (paper: 50,000)
P_SWEEP = [0.1, 0.3, 0.5, 0.7, 0.9]
SWEEP_SAMPLES = 500
TOY_EPOCHS = 4  # re-weighting epochs on the toy (half plain)
ACTIVE_EPOCHS = 2  # training epochs per active-learning round on the toy
ACTIVE_POOL = 1000

# %%
import statistics
import sys
import time
from pathlib import Path

ROOT = Path.cwd().resolve().parent if Path.cwd().name == "notebooks" else Path.cwd().resolve()
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from core.data import load  # noqa: E402
from core.methods.gold import (ActiveConfig, ReweightConfig, active_learning, extremes, rejection_gain,  # noqa: E402
                               rejection_sample, reweight, score, score_generated)
from core.models import load_model  # noqa: E402
from core.viz.figures import grid_figure  # noqa: E402
from core.viz.gold import pool_queries_figure, terms_histogram_figure  # noqa: E402
from core.zoo.registry import zoo_folder  # noqa: E402

START = time.perf_counter()
shipped = [m for m in MODELS if (zoo_folder(m) / "model.safetensors").is_file()]
print("image models:", shipped)

# %% [markdown]
# ## Fig. 1a and Fig. 2: the two terms, and samples sorted by GOLD
# The marginal term spreads far wider than the conditional one (the paper's reason for eq. 4's balance).

# %%
for name in shipped:
    gan = load_model(name)
    x, s = score_generated(gan, SCORE_SAMPLES, seed=0)
    data = load(gan.card.data["dataset"], "train")
    real = score(gan, data.x[:SCORE_SAMPLES], data.labels[:SCORE_SAMPLES], "real")
    print(f"{name}: sigma_G / sigma_C = {s.balance_ratio():.2f}; mean GOLD generated {float(s.gold().mean()):.3f}, "
          f"real {float(real.gold().mean()):.3f}")
    terms_histogram_figure({"generated": {"marginal": s.marginal, "conditional": s.conditional},
                            "real": {"marginal": real.marginal, "conditional": real.conditional}},
                           title=f"{name}: Fig. 1a").show()
    ranked = extremes(s, "gold", 8, gan.num_classes)
    best = torch.cat([x[ranked[c][0]] for c in range(gan.num_classes)])
    worst = torch.cat([x[ranked[c][1]] for c in range(gan.num_classes)])
    grid_figure(best, ncol=8, scale=2, title=f"{name}: highest GOLD per class (under-represented)").show()
    grid_figure(worst, ncol=8, scale=2, title=f"{name}: lowest GOLD per class (over-represented)").show()

# %% [markdown]
# ## Table 3: fitting capacity, plain vs GOLD rejection (p = 0.1 for 1-channel images)

# %%
paper_table3 = {"mnist-acgan": (97.97, 98.09), "fashion-acgan": (80.29, 80.64)}
rows = []
for name in shipped:
    gan = load_model(name)
    test = load(gan.card.data["dataset"], "test")
    for seed in SEEDS:
        r = rejection_gain(gan, test.x, test.labels, 0.1, n=FC_SAMPLES, epochs=FC_EPOCHS, burn_in_size=BURN_IN,
                           seed=seed)
        rows.append({"model": name, "seed": seed, "baseline": 100 * r["fitting_capacity_baseline"],
                     "gold": 100 * r["fitting_capacity_gold"], "acceptance": r["acceptance_rate"]})
table3 = pd.DataFrame(rows)
summary = table3.groupby("model")[["baseline", "gold", "acceptance"]].agg(["mean", "std"]).round(2)
summary[("paper baseline / gold", "")] = [paper_table3.get(m, ("-", "-")) for m in summary.index]
print(summary.to_string())

# %% [markdown]
# ## Table 4: the p sweep (acceptance rate; a larger p rejects more)

# %%
gan = load_model(shipped[0]) if shipped else load_model(TOY)
sweep = [{"p": p, "acceptance": rejection_sample(gan, SWEEP_SAMPLES, p, seed=0, burn_in_size=BURN_IN).acceptance_rate}
         for p in P_SWEEP]
print(pd.DataFrame(sweep).round(3).to_string(index=False))

# %% [markdown]
# ## Fig. 1b-c / Table 1: re-weighting (eq. 5) on the 2-D toy, baseline and GOLD forked from the same first half

# %%
toy = load_model(TOY)
data, test = load("clusters6", "train"), load("clusters6", "test")
rw = []
for seed in SEEDS:
    out = reweight(toy, data, test, ReweightConfig(epochs=TOY_EPOCHS, fc_samples=2000, fc_epochs=FC_EPOCHS), seed=seed)
    rw.append(out["metrics"])
    if seed == SEEDS[0]:
        print(pd.DataFrame(out["history"]).round(3).to_string(index=False))
for key in ("fitting_capacity_baseline", "fitting_capacity_gold", "gold_mean_baseline", "gold_mean_gold"):
    values = [m[key] for m in rw]
    print(f"{key}: {statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0:.4f}")

# %% [markdown]
# ## Fig. 3 / 4: active learning on the 2-D clusters, GOLD (eq. 9) vs random queries, schedule (4, 1, 8)

# %%
finals = {"gold": [], "random": []}
for seed in SEEDS:
    for strategy in ("gold", "random"):
        config = ActiveConfig.for_dataset("clusters6", epochs=ACTIVE_EPOCHS, strategy=strategy, pool_size=ACTIVE_POOL,
                                          fc_samples=2000, fc_epochs=FC_EPOCHS)
        out = active_learning(toy, data, test, config, seed=seed)
        finals[strategy].append(out["history"][-1]["fitting_capacity"])
        if seed == SEEDS[0]:
            pool = data.x[:ACTIVE_POOL]
            pool_queries_figure(pool, data.labels[:ACTIVE_POOL], out["rounds"] >= 0, out["rounds"],
                                title=f"{strategy} queries (Fig. 3)").show()
for strategy, values in finals.items():
    print(f"active learning, {strategy}: final fitting capacity {statistics.mean(values):.4f} ± "
          f"{statistics.stdev(values) if len(values) > 1 else 0:.4f}")
print(f"whole notebook: {time.perf_counter() - START:.0f} s")

# %% [markdown]
# ## Where and why the numbers differ from the paper's
# - Fitting capacities are far below the paper's 98% (MNIST) and 80% (FMNIST): each LeNet sees 2,000 samples for 3
#   epochs instead of 50,000 for 40, and the zoo's cGANs are narrow and trained on 4,000 images. Only the
#   difference between the columns is meaningful, and with one LeNet per seed its spread is a point or two
#   (`bench/gold.py --fitting 3` measured 77.3 ± 1.6% vs 77.2 ± 0.9% on MNIST at 5,000 samples x 3 epochs).
# - The p sweep falls monotonically, as Table 4's acceptance does; the paper reports fitting capacities per p on
#   CIFAR-10, which Lethe does not ship.
# - Re-weighting and active learning run on the 2-D clusters only: a 20-epoch MNIST run per seed and branch does not
#   fit the 2-core budget (`python -m core gold mnist-acgan reweight` runs it). On the toy the re-weighted branch's
#   mean GOLD jumps from about -0.7 to about +0.4 within an epoch while the baseline's stays near -0.6: eq. 5 moves
#   it, but past the zero the paper's Fig. 1b converges to (the toy D re-fits in a few hundred steps).
