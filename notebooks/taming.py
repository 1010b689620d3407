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
# # Taming normalizing flows, at 2-core size
#
# Malnick, Avidan & Fried, *Taming Normalizing Flows* (WACV 2024), reproduced with Lethe's engine on
# `toy-flow` (RealNVP on a ring of five Gaussians) and `synthfaces-flow` (a small Glow on 32x32 cartoon faces,
# 5-bit data) instead of a 128x128 Glow on CelebA. Every number comes from `core.methods.taming` and every figure
# from `core.viz.taming`, the same calls the **Tame** page and `python -m core tame` make.
#
# - Fig. 2: forgetting the centre mode of the 2-D toy.
# - Table 1: forgetting 1, 4, 8 and 15 images of a person, several seeds; quantile drops (eq. 15) on D_F, D'_F,
#   D_R, D_R^id and D_R^NN.
# - Fig. 4 and 5: forgetting attributes, their share in generated samples over iterations, and the same latents
#   through the base and tamed models.
# - Table 2: the ablations of the loss.
# - Debiasing: pushing an attribute's share toward a target.
#
# `make test` runs this notebook at a tiny size through the parameters cell; the defaults are the full 2-core run
# (roughly an hour on 2 free cores; with `SEEDS = [0]` about half of that).
#
# **The committed outputs are from the default size** (2026-12-02, with the FID reference a random sample of D_R
# and the attribute judge retrained on degraded renders): 7,312 s, on 2 cores shared with the redaction notebook,
# an unlearning sweep and the test suite for most of the run.

# %% tags=["parameters"]
MODEL = "synthfaces-flow"  # the image flow
TOY = "toy-flow"  # the 2-D flow of Fig. 2
SIZES = [1, 4, 8, 15]  # forget-set sizes of Table 1 (images of one person)
SEEDS = [0, 1, 2]  # each seed picks a person, the images and the batches
ATTRIBUTES = ["glasses", "beard", "long_hair"]  # Fig. 4: attributes to forget
DEBIAS = ("dark_hair", 0.46)  # the judge reads it on 46% of the training faces, 35% of samples at T = 0.7
ABLATION_IMAGES = 15  # Table 2 forgets this many images of one person
MAX_ITERATIONS = 800  # Algorithm 1's cap (the paper's)
ATTRIBUTE_ITERATIONS = 300  # Fig. 4 runs a fixed number of iterations and watches the share
EVAL_SAMPLES = 2000  # generated samples for FID and attribute shares
EVAL_SIZE = 500  # images per evaluation set (reference statistics, random D_R)
HELDOUT_IDENTITIES = 25  # people kept out of the remember set (D_R^id)
TOY_ITERATIONS = 400
WORKERS = 2  # independent runs (sizes x seeds, attributes, ablations) at once, in Lethe's executor's workers
DEVICE = "cpu"

# %%
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path.cwd() if (Path.cwd() / "core").is_dir() else Path.cwd().parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from core.data import load  # noqa: E402
from core.methods.taming import ABLATIONS, TamingConfig, prepare, tame, taming_study, zoo_judges  # noqa: E402
from core.models import load_model  # noqa: E402
from core.runs.executor import run_keyed  # noqa: E402
from core.viz.figures import grid_figure  # noqa: E402
from core.viz.taming import nll_histogram_figure, quantile_table, share_figure, toy_figure  # noqa: E402

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 30)
started = time.perf_counter()

# %% [markdown]
# ## Fig. 2: forget the centre of a ring of Gaussians
# The toy flow maps N(0, I) onto five Gaussians; D_F is every training point of the centre mode (label 0).
# After taming, latents that went to the centre land elsewhere and the centre's density drops.

# %%
toy = load_model(TOY, DEVICE)
toy_sets, toy_judges = prepare(toy, "label=0", seed=0, eval_size=EVAL_SIZE)
toy_cfg = TamingConfig(max_iterations=TOY_ITERATIONS, remember_batch=128, forget_batch=128,
                       eval_samples=max(EVAL_SAMPLES, 1000))
toy_run = tame(toy, toy_sets, toy_cfg, seed=0, judges=toy_judges)
m = toy_run.metrics
print(f"centre mode share of samples: {m['share_before']:.3f} -> {m['share_after']:.3f}; "
      f"QD on D_F {m['qd_forget']:.3f}, on held-out centre points {m['qd_holdout']:.3f}, on D_R {m['qd_remember']:.4f}; "
      f"{m['iterations']} iterations ({m['stop_reason']})")
print(f"remember NLLs normal? {m['normality_test']} p = {m['normality_p_before']:.2g} (a mixture of five modes "
      "need not be: sigma units on the toy are approximate)")
toy_figure(toy_run.figures["toy"], title="Fig. 2 at toy size: density and samples from the same latents")

# %% [markdown]
# ## Table 1: forget images of one person
# For each size k and seed, a person is drawn at random and k of their 20 training images form D_F; their
# other training images and their 4 test images form D'_F (never remembered). D_R^id are 25 people kept out of the
# remember set, D_R^NN the 5 people nearest in `synthfaces-identity`'s embedding. q is the likelihood quantile
# (eq. 14) and QD = q_base - q_tamed (eq. 15); the threshold is delta = 4 (q = 3.2e-5 at the threshold).

# %%
flow = load_model(MODEL, DEVICE)
judges = zoo_judges(flow.card.data["dataset"], DEVICE)
train, test = load(flow.card.data["dataset"], "train"), load(flow.card.data["dataset"], "test")


def person_images(k: int, seed: int) -> str:
    gen = torch.Generator().manual_seed(1000 + seed)
    person = int(torch.unique(train.identities)[torch.randint(0, int(train.identities.max()) + 1, (1,), generator=gen)])
    rows = torch.nonzero(train.identities == person).flatten()
    rows = rows[torch.randperm(len(rows), generator=gen)[:k]]
    return "ids=" + ",".join(str(int(i)) for i in train.ids[rows])


def study(spec: str, config: TamingConfig, seed: int = 0):
    """One taming run as an independent job (`taming_study`: `prepare` and `tame` on a copy of the flow, as the
    app's job runs them), for Lethe's executor."""
    return partial(taming_study, MODEL, spec, config, seed, eval_size=EVAL_SIZE,
                   heldout_identities=HELDOUT_IDENTITIES, device=DEVICE)



table1_runs = run_keyed({(k, seed): study(person_images(k, seed), TamingConfig(max_iterations=MAX_ITERATIONS,
                                                                                eval_samples=EVAL_SAMPLES), seed)
                         for k in SIZES for seed in SEEDS}, WORKERS)
rows = []
for (k, seed), result in table1_runs.items():
    rows.append({"images": k, "seed": seed, **result.metrics})
    print(f"k={k} seed={seed}: {result.metrics['iterations']} iterations, reached={result.metrics['reached_threshold']}, "
          f"{result.metrics['seconds']:.0f} s")
last = table1_runs[SIZES[-1], SEEDS[-1]]
table1 = pd.DataFrame(rows)
cols = ["qd_forget", "qd_holdout", "qd_remember", "qd_identities", "qd_neighbours"]
summary = table1.groupby("images").agg(
    reached=("reached_threshold", "mean"), iterations=("iterations", "median"), seconds=("seconds", "median"),
    **{f"{c} mean": (c, "mean") for c in cols}, **{f"{c} std": (c, "std") for c in cols},
    bpd_change=("bpd_remember_change", "mean"))
paper1 = pd.DataFrame({"images": [1, 4, 8, 15], "paper QD D_F": ["0.47±0.04", "0.42±0.17", "0.34±0.13", "0.38±0.14"],
                       "paper QD D'_F": ["<1e-2±0.03", "0.05±0.03", "0.06±0.04", "0.12±0.04"],
                       "paper QD D_R": ["<1e-2±0.01", "<1e-2±0.00", "<1e-3±0.00", "<1e-3±0.00"],
                       "paper QD D_R^id": ["<1e-3±0.01", "0.01±0.01", "<1e-2±0.00", "<1e-2±0.00"],
                       "paper QD D_R^NN": ["0.01±0.01", "0.03±0.02", "0.01±0.01", "0.01±0.00"]}).set_index("images")
print(summary.round(4).to_string())
print(paper1.to_string())

# %% [markdown]
# Measured in the committed run (k = 1, 4, 8, 15, seeds 0-2): all 12 runs reached eq. 10, in a median 23, 68, 128
# and 250 iterations. QD on D_F 0.61 / 0.58 / 0.54 / 0.51 (the paper's 0.47 / 0.42 / 0.34 / 0.38), on D'_F 0.05 /
# 0.18 / 0.28 / 0.33 (it grows with k, as the paper's < 0.01 / 0.05 / 0.06 / 0.12 do, from higher), on D_R within
# 0.002 of 0, on D_R^id at most 0.005, on D_R^NN 0.009-0.030 (the paper's 0.01-0.03); BPD on D_R rises by 1.0% /
# 0.6% / 0.5% / 0.4% (most for k = 1). The previous default-size run (2026-11-23, the first judge and FID reference)
# agreed to within 0.01 on every mean QD.
#
# How to read the comparison. QD on D_F is bounded by the base model's q on D_F: the paper's CelebA faces start
# near q = 0.5 (typical images), so reaching q ~ 0 drops it by ~0.4-0.5. A synthfaces person's images start where
# the base model puts them (printed below), so the drop is that starting q. Held-out images of the person (D'_F)
# share the person's identity-level look (face shape, skin, hair, glasses) in synthfaces, which is rendered
# from a handful of identity parameters, so forgetting generalises to them more than on CelebA.

# %%
print("q on D_F before taming, by size:", table1.groupby("images")["q_forget_before"].mean().round(3).to_dict())
quantile_table(last.metrics)  # the last run above: the largest forget set, the last seed

# %%
nll_histogram_figure(last.figures["nlls"], sets=("remember_eval", "forget", "holdout", "neighbours"),
                     title=f"Fig. 1 / 6: NLLs of {SIZES[-1]} forgotten images of a person and the threshold")

# %% [markdown]
# ## Fig. 6: taming without the training set (Sec. 4.3)
# The remember set is drawn from a different distribution than the flow's training data: test-split faces
# wearing a hat (the paper uses FairFace children). The threshold is measured against *their* NLLs.

# %%
sets, judge = prepare(flow, person_images(SIZES[-1], SEEDS[0]), remember="test:attr=hat", seed=0,
                      eval_size=EVAL_SIZE, heldout_identities=HELDOUT_IDENTITIES, judges=judges, data=train, test=test)
without = tame(flow, sets, TamingConfig(max_iterations=MAX_ITERATIONS, eval_samples=EVAL_SAMPLES), judges=judge)
m = without.metrics
print(f"remember set: {sets.notes['remember']}, {len(sets.remember)} images; {m['iterations']} iterations, "
      f"reached={m['reached_threshold']}; QD on D_F {m['qd_forget']:.3f}, D'_F {m['qd_holdout']:.3f}, "
      f"D_R {m['qd_remember']:.4f}")
nll_histogram_figure(without.figures["nlls"], title="Fig. 6: forgetting against a remember set of other faces")

# %% [markdown]
# ## Fig. 4 and Fig. 5: forget an attribute
# D_F is every training image the attribute classifier (`synthfaces-attributes`) finds the attribute in, D_R the
# rest. The share of 512 generated samples from a fixed latent batch is measured every 20 iterations;
# the final share and FID[synthfaces-attributes] use `EVAL_SAMPLES` samples at temperature 0.7. FID is measured
# against D_R, the faces without the attribute that the tamed model should keep generating; since that reference
# lacks the attribute, generating less of it lowers FID by itself (`bench/taming.py` also prints FID against all
# training faces).

# %%
attr_runs, attr_rows = {}, []
attr_results = run_keyed({attr: study(f"attr={attr}", TamingConfig(max_iterations=ATTRIBUTE_ITERATIONS,
                                                                    eval_samples=EVAL_SAMPLES)) for attr in ATTRIBUTES},
                         WORKERS)
for attr, result in attr_results.items():
    attr_runs[attr] = pd.DataFrame(result.history).rename(columns={"iteration": "step"})
    m = result.metrics
    attr_rows.append({"attribute": attr, "share before": m["share_before"], "share after": m["share_after"],
                      "ratio": m["share_after"] / max(m["share_before"], 1e-9), "FID before": m["fid_before"],
                      "FID after": m["fid_after"], "FID change": m["fid_change"],
                      "BPD D_R change": m["bpd_remember_change"], "iterations": m["iterations"]})
    print(f"{attr}: share {m['share_before']:.3f} -> {m['share_after']:.3f}")
print(pd.DataFrame(attr_rows).round(4).to_string(index=False))
share_figure(attr_runs, title="Fig. 4: share of generated samples with the attribute while it is forgotten")

# %% [markdown]
# Measured in the committed run (300 iterations, 2,000 samples, the retrained judge): beard 20.5% -> 1.9% and long
# hair 12.0% -> 0.8% of generated faces, FID[synthfaces-attributes] against D_R -14% and -10%, BPD on D_R +0.8% and
# +0.5%: both attributes all but vanish, as in the paper's Fig. 4. Glasses end where they began (26.4% -> 26.6%,
# FID -4.9%, BPD +1.0%): the rebound after ~200 iterations described below. (The 2026-12-01 reduced run stopped
# glasses at 100 iterations: 26.8% -> 12.0%; on the monitor batch 19.7, 17.4, 14.3, 11.5 and 11.7% at iterations
# 20-100.)
#
# **What the judge reads on the flow's samples** (measured 2026-12-01 for issue 11, synthfaces-flow at T = 0.7,
# `synthfaces-attributes` retrained on degraded renders):
#
# - D_F is chosen as the paper's Sec. 4.2 chooses it, on the training images with a classifier,
#   D_F = {x in D | C(x) = 1}; the paper evaluates by classifying random samples. On the training faces the judge
#   agrees with the rendered glasses on 99.1% and finds them on 27.1% (2,707 of 10,000 faces): choosing D_F on
#   clean renders is not what goes wrong.
# - On the flow's reconstructions of training faces at T = 0.7 (x' = f^-1(0.7 f(x))) it still finds glasses on 82%
#   of the faces that have them, with 0.4% false positives: it reads glasses through the flow's blur.
# - On the flow's samples it reads glasses on 26.4%, close to the data's 27.1%, but it is unsure
#   (0.1 < p < 0.9) of 48% of the samples, against 4% of the training faces and 11% of their reconstructions; the
#   samples it calls "glasses" and those it does not look much alike (blurred eye regions). Smile: unsure of 81% of
#   samples (43% of the data). Other shares of samples against the data: smile 24% / 43%, hat 0.4% / 24%, long
#   hair 12% / 38%, mouth open 7.5% / 25.5%, dark hair 35% / 46%. This is the small flow's capacity: its samples
#   do not draw these attributes clearly, and a share read on them is partly a coin-flip. Taming runs now report
#   `share_unsure_before/after` (and `share_data`, the data's share as the judge reads it) beside the share.
# - The flow's likelihoods: faces with glasses 1.928 +- 0.140 bits/dim, the others 1.815 +- 0.126; the flow's own
#   samples the judge calls glasses 1.694 bits/dim (samples at T = 0.7 are more likely than the data).
# - **The share is not monotone in the iterations.** The same run continued to 300 iterations (as `bench/taming.py`
#   runs it; monitor batch every 20 iterations): 19.7, 17.4, 14.3, 11.5, 11.7, 11.5, 10.4, 11.7, 12.9, 10.5% up to
#   iteration 200, then 12.5, 14.6, 11.1, 19.1 and 27.7% at 220-300, and 26.3% -> 27.7% on 1,000 fresh samples
#   at the end: the bench's "26.4% -> 26.6%" is a rebound, not a taming that never worked. The rebound comes with the
#   run losing its hold on D_R: forget images cross the threshold (max d from -1.3 to +1.8; eq. 9 is two-sided and
#   pulls them back), the forward KL of the remember NLLs grows tenfold (0.001 -> 0.012) and mu_R drifts up
#   (1.819 -> 1.832 bits/dim). After 300 iterations the glasses faces' NLL rose by 0.073 bits/dim and the other
#   faces' by 0.018, but the flow's own samples' NLL rose by the same 0.032 whether the judge calls them glasses or
#   not: the likelihood change separates real faces, not the flow's samples. So stop an attribute run by the share
#   (`target_share`, the paper's "stop the process when the desired ratio suffices") or after ~100 iterations;
#   a fixed 300 or 800 iterations can end on the rebound.

# %%
grid_figure(torch.from_numpy(result.figures["fixed_latents"]), ncol=len(result.figures["fixed_latents"]) // 2,
            title=f"Fig. 5: the same latents through the base (top) and the {ATTRIBUTES[-1]}-tamed model (bottom)",
            scale=3)

# %% [markdown]
# ## Table 2: ablations
# Forget `ABLATION_IMAGES` images of one person with the full loss and with one part dropped. The paper's
# numbers (Glow on CelebA) are printed beside ours; BPD is on D_R, FID on generated samples.

# %%
spec = person_images(ABLATION_IMAGES, 0)
ablation_runs = run_keyed({name: study(spec, TamingConfig(max_iterations=MAX_ITERATIONS, eval_samples=EVAL_SAMPLES,
                                                           **switches))
                           for name, switches in [("full loss", {}), *[(a, ABLATIONS[a]) for a in ABLATIONS
                                                                       if a != "none"]]}, WORKERS)
ab_rows = []
for name, result in ablation_runs.items():
    m = result.metrics
    ab_rows.append({"model": name, "BPD D_R": m["bpd_remember_after"], "FID": m["fid_after"],
                    "threshold reached": m["reached_threshold"], "q(D_F)": m["q_forget_after"],
                    "iterations": m["iterations"]})
base_row = {"model": "base", "BPD D_R": m["bpd_remember_before"], "FID": m["fid_before"], "threshold reached": None,
            "q(D_F)": m["q_forget_before"], "iterations": 0}
table2 = pd.DataFrame([base_row, *ab_rows])
paper2 = pd.DataFrame({"model": ["base", "full loss", "no-remember", "no-reverse-kl", "no-forward-kl", "no-nll"],
                       "paper BPD": [1.021, 1.020, 25.640, 2.254, 1.072, 1.028],
                       "paper FID": [140.89, 141.63, 181.26, 110.34, 121.45, 143.16],
                       "paper reached": [None, True, False, False, True, True],
                       "paper q(D_F)": [None, 2.35e-5, 0.34, 0.73, 2.45e-5, 8.53e-6]})
print(table2.merge(paper2, on="model", how="left").to_string(index=False))

# %% [markdown]
# The paper's "no-nll" row is its $\mathcal{L}_{KL_F} + \mathcal{L}_{KL_R}$ model (NLL term dropped) and
# its $A_{\theta_T}$ row keeps only the NLL term; "no-forward-kl" is its $\mathcal{L}_{KL_F}$ column (the loss
# without KL_F); "no-kl" (both KLs dropped, the NLL term alone) is the paper's $A_{\theta_T}$ row, whose numbers
# did not survive the PDF extraction. Committed run (15 images of one person, cap 800): the full loss reaches eq. 10
# in 250 iterations, BPD on D_R 1.842 -> 1.849 (+0.4%), FID 139.6 -> 140.1 (the paper's 1.021 -> 1.020, 140.9 ->
# 141.6). Without the remember loss a flow is free to raise every NLL: ours ends at 32.5 bits/dim on D_R (FID 371)
# and misses eq. 10 within 800 iterations (q(D_F) 0.56: its own remember statistics run away with it), as the
# paper's no-remember model reaches 25.6 bits/dim and fails. Dropping one KL or the NLL term changed little (eq. 10
# in 213-225 iterations, BPD on D_R within 0.2% of the full loss, FID 136.9-139.4), whereas the paper's model
# without the reverse KL failed (BPD 2.25, q(D_F) 0.73); dropping both KLs (the NLL term alone) reaches eq. 10
# soonest (138 iterations) at the highest BPD of the rest (1.854, +0.6% over the base). A 0.4 M-parameter flow
# drifts less than a CelebA Glow fine-tuned for up to 800 iterations, so the single terms matter less at this
# size. (The 2026-12-01 reduced run, one image and cap 200: eq. 10 in 15-22 iterations for the full loss and the
# single-term rows, 4 for no-kl at BPD +5%; no-remember failed.)

# %% [markdown]
# ## Debiasing: push an attribute's share toward a target
# With a target share the direction follows from the current share: above the target the attribute's images
# are forgotten, below it they are emphasised (their NLL lowered), until the share of a fixed latent batch is
# within 2 points of the target.

# %%
attr, target = DEBIAS
m = study(f"attr={attr}", TamingConfig(max_iterations=MAX_ITERATIONS, target_share=target, monitor_every=10,
                                      eval_samples=EVAL_SAMPLES))().metrics  # one run: in this process
print(f"{attr}: share {m['share_before']:.3f} -> {m['share_after']:.3f} (target {target}, direction {m['direction']}, "
      f"{m['iterations']} iterations, stopped by {m['stop_reason']}); FID change {m['fid_change']:+.1%}")
print(f"whole notebook: {time.perf_counter() - started:.0f} s")

# %% [markdown]
# Committed run (cap 800): dark hair, which the retrained judge reads on 46% of the training faces and 34.7% of
# samples, is emphasised toward 46% and reaches 45.2% on 2,000 fresh samples after the full 800 iterations (the
# monitor batch of 512 fixed latents never came within 2 points at a check, so the cap stopped the run), at FID
# +8.4%. Emphasising a set that large (4,600 faces, a random batch of 32 per iteration) moves the share slowly: the
# 2026-12-01 run capped at 200 iterations did not move it (35.6% -> 35.0%). (The first judge, which read dark hair
# on only 9% of the blurry samples, reported a doubling to 17.6% in 800 iterations against a 30% target.)
# Shares read on samples are the judge's reading of blurry faces; see the notes under Fig. 4 for how often it is
# unsure. `bench/taming.py` rebalances smile toward 0.5 (see its output).
