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
# - Fig. 1b-c / Table 1: re-weighting on the 2-D toy, MNIST and Fashion-MNIST, baseline and GOLD forked from the same
#   first half.
# - Fig. 3 / 4: active learning, GOLD vs random queries, on the 2-D clusters and on MNIST (schedule (10, 2, 18)).
#
# The defaults train the image cGANs at a size that fits 2 cores in about 25 minutes (1,457 s when executed on
# 2026-12-02): 10,000 samples x 3 LeNet epochs per fitting capacity, re-weighting on the zoo cGANs' 4,000 training
# images for 10 epochs, active learning on MNIST's 4,000-image pool for 10 epochs per round, 3 seeds each. The
# paper's budgets are larger (50k samples and 40 LeNet epochs per fitting capacity, 20 training epochs on 60k
# images, 100 epochs per active-learning round), so differences of a point are within the seed-to-seed spread
# printed beside them. The independent runs go `MNIST_WORKERS` at a time in worker processes of Lethe's executor
# (`run_jobs`). Image grids are shown as static PNGs to keep the notebook small.

# %% tags=["parameters"]
MODELS = ["mnist-acgan", "fashion-acgan"]  # image cGANs (skipped when not shipped)
TOY = "toy-acgan"
SEEDS = [0, 1, 2]
SCORE_SAMPLES = 1000  # generated samples for Fig. 1a / Fig. 2
FC_SAMPLES = 10000  # samples per fitting capacity on the image models (paper: 50,000)
FC_EPOCHS = 3  # LeNet epochs (paper: 40)
BURN_IN = 10000  # rejection burn-in (paper: 50,000)
P_SWEEP = [0.1, 0.3, 0.5, 0.7, 0.9]
SWEEP_SAMPLES = 500
TOY_FC_SAMPLES = 2000  # samples per fitting capacity on the 2-D toy
TOY_EPOCHS = 4  # re-weighting epochs on the toy (half plain)
ACTIVE_EPOCHS = 10  # training epochs per active-learning round on the toy (paper: 100)
ACTIVE_POOL = 1000
MNIST = "mnist-acgan"  # the cGAN whose architecture MNIST active learning and Fig. 1b-c train afresh
RW_EPOCHS = 10  # re-weighting epochs on the image models, half plain (paper: 20)
RW_SEEDS = [0, 1, 2]  # paper: 3
MNIST_ACTIVE_EPOCHS = 10  # training epochs per active-learning round on MNIST (paper: 100)
MNIST_ACTIVE_SEEDS = [0, 1, 2]
MNIST_POOL = 0  # the first N train images as the active-learning pool (0: all 4,000)
RW_TRAIN = 4000  # re-weight on the first N train images (the zoo cGANs' own training sets; paper: 60,000)
RW_FC_EVERY = 5  # fitting capacity every this many re-weighting epochs (and at the end)
MNIST_WORKERS = 2  # independent runs (Table 3 rows, toy and MNIST training) at once, in worker processes

# %%
import statistics
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path.cwd().resolve().parent if Path.cwd().name == "notebooks" else Path.cwd().resolve()
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from IPython.display import Image, display  # noqa: E402

from core.data import load  # noqa: E402
from core.methods.gold import (ActiveConfig, ReweightConfig, extremes, rejection_sample, score,  # noqa: E402
                               score_generated)
from core.methods.gold.studies import active_study, rejection_study, reweight_study  # noqa: E402
from core.models import load_model  # noqa: E402
from core.runs.executor import run_jobs  # noqa: E402
from core.viz.figures import curves_figure  # noqa: E402
from core.viz.gold import pool_queries_figure, terms_histogram_figure  # noqa: E402
from core.viz.images import image_grid, png_bytes  # noqa: E402
from core.zoo.registry import zoo_folder  # noqa: E402

START = time.perf_counter()
shipped = [m for m in MODELS if (zoo_folder(m) / "model.safetensors").is_file()]
print("image models:", shipped)


def show_grid(images: torch.Tensor, title: str, ncol: int = 8) -> None:
    """A grid of images as one static PNG (a few kB, where an interactive figure stores every pixel as JSON)."""
    print(title)
    display(Image(png_bytes(image_grid(images, ncol=ncol, scale=2))))

# %% [markdown]
# ## Independent runs go through Lethe's executor
# Table 3's rows (one per model and seed) and every re-weighting and active-learning run (toy and MNIST; on MNIST
# each trains a fresh cGAN of `mnist-acgan`'s architecture) are independent jobs (`core.methods.gold.studies`):
# each section below hands its own to `run_jobs`, `MNIST_WORKERS` at a time in worker processes, and waits.


# %%
def in_workers(jobs: list) -> list:
    """The jobs' results in order, run `MNIST_WORKERS` at a time by the shared executor (spawned workers)."""
    return run_jobs(jobs, workers=max(1, min(MNIST_WORKERS, len(jobs))))


mnist_shipped = (zoo_folder(MNIST) / "model.safetensors").is_file()
toy_rw_config = ReweightConfig(epochs=TOY_EPOCHS, fc_samples=TOY_FC_SAMPLES, fc_epochs=FC_EPOCHS)
image_rw_config = ReweightConfig(epochs=RW_EPOCHS, fc_samples=FC_SAMPLES, fc_epochs=FC_EPOCHS, fc_every=RW_FC_EVERY,
                                 train_size=RW_TRAIN or None)


def toy_active_config(strategy: str) -> ActiveConfig:
    """Fig. 3 / 4 on the 2-D clusters: schedule (4, 1, 8), eq. 9."""
    return ActiveConfig.for_dataset("clusters6", epochs=ACTIVE_EPOCHS, strategy=strategy, pool_size=ACTIVE_POOL,
                                    fc_samples=TOY_FC_SAMPLES, fc_epochs=FC_EPOCHS)


def mnist_active_config(strategy: str) -> ActiveConfig:
    """Fig. 4 on MNIST: the paper's schedule (10, 2, 18) per class on a pool of the first `MNIST_POOL` images."""
    return ActiveConfig.for_dataset(load_model(MNIST).card.data["dataset"], epochs=MNIST_ACTIVE_EPOCHS,
                                    strategy=strategy, pool_size=MNIST_POOL or None, fc_samples=FC_SAMPLES,
                                    fc_epochs=FC_EPOCHS)


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
    show_grid(best, f"{name}: highest GOLD per class (under-represented), one row per class")
    show_grid(worst, f"{name}: lowest GOLD per class (over-represented), one row per class")

# %% [markdown]
# ## Table 3: fitting capacity, plain vs GOLD rejection (p = 0.1 for 1-channel images)

# %%
paper_table3 = {"mnist-acgan": (97.97, 98.09), "fashion-acgan": (80.29, 80.64)}
table3_keys = [(name, seed) for name in shipped for seed in SEEDS]
table3_runs = in_workers([partial(rejection_study, name, 0.1, FC_SAMPLES, FC_EPOCHS, BURN_IN, seed)
                          for name, seed in table3_keys])
rows = []
for (name, seed), r in zip(table3_keys, table3_runs):
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
for seed, out in zip(SEEDS, in_workers([partial(reweight_study, TOY, toy_rw_config, seed) for seed in SEEDS])):
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
toy_active_keys = [(seed, strategy) for seed in SEEDS for strategy in ("gold", "random")]
toy_active_runs = in_workers([partial(active_study, TOY, toy_active_config(strategy), seed)
                              for seed, strategy in toy_active_keys])
for (seed, strategy), out in zip(toy_active_keys, toy_active_runs):
    finals[strategy].append(out["history"][-1]["fitting_capacity"])
    if seed == SEEDS[0]:
        pool = data.x[:ACTIVE_POOL]
        pool_queries_figure(pool, data.labels[:ACTIVE_POOL], out["rounds"] >= 0, out["rounds"],
                            title=f"{strategy} queries (Fig. 3)").show()
for strategy, values in finals.items():
    print(f"active learning, {strategy}: final fitting capacity {statistics.mean(values):.4f} ± "
          f"{statistics.stdev(values) if len(values) > 1 else 0:.4f}")

# %% [markdown]
# ## Fig. 1b-c / Table 1 on MNIST and Fashion-MNIST: re-weighting, baseline and GOLD forked from the same first half
# Paper (Table 1, fitting capacity): MNIST baseline 97.95 %, GOLD re-weighting 98.11 %; FMNIST 80.29 % and
# 80.64 % (20 epochs on 60k images, a LeNet trained for 40 epochs on 10k fresh samples each epoch).

# %%
paper_table1 = {"mnist-acgan": (97.95, 98.11), "fashion-acgan": (80.29, 80.64)}
rw_keys = [(name, s) for name in shipped for s in RW_SEEDS]
rw_runs = dict(zip(rw_keys, in_workers([partial(reweight_study, name, image_rw_config, s) for name, s in rw_keys])))
finals = pd.DataFrame([{"model": name, "seed": s, **r["metrics"]} for (name, s), r in rw_runs.items()])
columns = ["fitting_capacity_baseline", "fitting_capacity_gold", "gold_mean_baseline", "gold_mean_gold",
           "epoch_seconds_plain", "epoch_seconds_gold"]
print(finals[["model", "seed", *columns]].round(4).to_string(index=False))
table1 = finals.groupby("model")[columns].agg(["mean", "std"]).round(4)
table1[("paper baseline / gold", "")] = [paper_table1.get(m, ("-", "-")) for m in table1.index]
print(table1.to_string())
if (MNIST, RW_SEEDS[0]) in rw_runs:
    first = pd.DataFrame(rw_runs[(MNIST, RW_SEEDS[0])]["history"])
    shared = first[first.branch == "both"]
    curves = pd.concat([pd.concat([shared, first[first.branch == b]]).assign(run=b) for b in ("baseline", "gold")])
    long = curves.melt(id_vars=["epoch", "run"], value_vars=["gold_mean", "fitting_capacity"], var_name="metric",
                       value_name="value").rename(columns={"epoch": "step"}).dropna()
    curves_figure(long, title=f"Fig. 1b-c on MNIST (seed {RW_SEEDS[0]}): mean GOLD of generated samples and "
                              "fitting capacity per epoch").show()

# %% [markdown]
# ## Fig. 4 on MNIST: active learning, GOLD (eq. 8) vs random queries, schedule (10, 2, 18) per class
# Paper (Fig. 4a): GOLD queries end above random ones on MNIST at every labelled-set size.

# %%
if mnist_shipped:
    active_keys = [(s, strategy) for s in MNIST_ACTIVE_SEEDS for strategy in ("gold", "random")]
    active_runs = in_workers([partial(active_study, MNIST, mnist_active_config(strategy), s)
                              for s, strategy in active_keys])
    rows = [{**row, "seed": s, "strategy": strategy} for (s, strategy), out in zip(active_keys, active_runs)
            for row in out["history"]]
    mnist_active_table = pd.DataFrame(rows)
    per_size = (mnist_active_table.groupby(["labelled", "strategy"])["fitting_capacity"].agg(["mean", "std"])
                .round(4).unstack("strategy"))
    print(per_size.to_string())
    long = (mnist_active_table.groupby(["labelled", "strategy"])["fitting_capacity"].mean().reset_index()
            .rename(columns={"labelled": "step", "strategy": "run", "fitting_capacity": "value"})
            .assign(metric="fitting_capacity"))
    curves_figure(long, title="Fig. 4 on MNIST: fitting capacity against labelled images, mean over seeds").show()
print(f"whole notebook: {time.perf_counter() - START:.0f} s")

# %% [markdown]
# ## Where and why the numbers differ from the paper's
# - Fitting capacities are far below the paper's 98% (MNIST) and 80% (FMNIST): each LeNet sees 10,000 samples for
#   3 epochs instead of 50,000 for 40, and the zoo's cGANs are narrow and trained on 4,000 images. Only the
#   difference between the columns is meaningful.
# - **Table 3** at this LeNet budget shows no gain from rejection (MNIST 77.8 ± 1.1% vs 77.6 ± 0.3%, FMNIST
#   68.9 ± 0.4% vs 68.6 ± 0.9%). At the paper's 50,000 fixed samples and burn-in, with 20 LeNet epochs (`python
#   bench/gold.py --skip-speed --fitting 3 --fc-samples 50000 --fc-epochs 20 --burn-in 50000`; 931 s, seeds 0-2)
#   it does: MNIST 80.27 ± 0.50% vs 80.93 ± 0.35% (+0.66 points). A LeNet that trains briefly on few samples is
#   limited by its own training; one that trains long on many is limited by the samples, which is where rejecting
#   the worst ones pays.
# - The paper's MNIST and FMNIST values printed beside ours (Tables 1 and 3) were carried over from an earlier
#   session: the shared copy of the paper lost those columns in extraction, so they are not checked against it.
# - The p sweep falls monotonically (62% accepted at p = 0.1, 36% at p = 0.9), as Table 4's acceptance does; the
#   paper reports fitting capacities per p on CIFAR-10, which Lethe does not ship.
# - On the 2-D toy the re-weighted branch's mean GOLD jumps from about -0.7 to about +0.4 within an epoch while the
#   baseline's stays near -0.6: eq. 5 moves it, but past the zero the paper's Fig. 1b converges to (the toy D
#   re-fits in a few hundred steps). Fitting capacity 79.9 ± 2.3% (baseline) vs 88.1 ± 10.8% (GOLD).
# - **Table 1** (10 epochs on 4,000 images, 5 plain then 5 re-weighted): GOLD re-weighting ends above its baseline
#   in the mean on both datasets, MNIST 70.3 ± 5.5% vs 71.5 ± 3.3% and FMNIST 64.1 ± 2.3% vs 65.5 ± 2.8% (the
#   paper: 97.95 vs 98.11%, 80.29 vs 80.64%), within the seed spread, as the paper's gains are small; eq. 5 lifts
#   the mean GOLD of generated samples from -2.88 to +0.22 (MNIST) and from -1.66 to +0.49 (FMNIST), towards the
#   zero of Fig. 1b. The epoch times printed are two runs at a time, not a cost ratio; `bench/gold.py` measures
#   that (1.08x).
# - **Active learning**: on the 2-D clusters GOLD queries (eq. 9) end well above random ones (65.0 ± 0.7% vs
#   53.8 ± 9.5% at 8 labels, 10 epochs per round). On MNIST (eq. 8, 10 epochs per round, the paper's 100) they do
#   not: 76.0 ± 1.4% vs 76.9 ± 0.1% at 180 labels, after leading at 120 labels (74.4 vs 73.8%). The gap follows
#   the training per round: -1.8 points at 3 epochs per round, -0.8 at 10 (here), +0.9 at 20 (82.5 ± 1.0% vs
#   81.6 ± 2.5%, `python -m core gold mnist-acgan active --epochs 20 --fc-samples 10000 --fc-epochs 3 --seed S`,
#   seeds 0-2; README). The paper trains 100 epochs per round, about 4 hours per seed on 2 cores.
