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
# # Machine unlearning for image-to-image models, at 2-core size
#
# Li, Hsu, Chen & Marculescu, *Machine Unlearning for Image-to-Image Generative Models* (ICLR 2024), reproduced
# with Lethe's engine on `mnist-i2i` (forget digits) and `synthfaces-i2i` (forget people): small conv
# encoder-decoders trained on four degradations, instead of diffusion models, VQ-GAN and MAE on ImageNet. Every
# number comes from `core.methods.unlearning`, every figure from `core.viz.unlearning`: the same calls the
# **Unlearn** page and `python -m core unlearn` make. FID and IS use the dataset's Lethe classifier
# (`mnist-lenet`, `synthfaces-identity`) instead of Inception, cosine uses its features instead of CLIP.
#
# - Tables 1 and 2: original, the four baselines, ours, ours with a proxy retain set; centre crop (8x8 of 16x16
#   patches, i.e. half the side) and the small centre crop (4x4 patches, a quarter of the side).
# - People: recognition of forgotten identities in their completed held-out faces, against the noise-filled hole.
# - Table 3: the alpha sweep. Fig. D.6: limited retain sets. Fig. 4: embeddings. Table E.4: cross-validation.
#   Completion grids like Fig. 3.
#
# **The committed outputs** are this notebook's defaults, executed whole on 2026-12-02 in 3,241 s on 2 cores shared
# with a test suite (1,871 s alone before the 80-epoch proxy run was added; the 17 unlearning runs two at a time in
# worker processes). A completion is the degraded image with only its
# hole painted by the model (`I2IBundle.inpaint`), as the paper's models complete images.

# %% tags=["parameters"]
MNIST = "mnist-i2i"
MNIST_FORGET = "label=0,1"  # "some digits"
MNIST_PROXY = "proxy:label=5-9"  # other classes (the paper's proxy), as many images as the forget set; fashion-mnist
# measured x4.8 retain FID: clothing does not hold the encoder's codes for digits in place
PROXY_ALPHA = 0.035  # with PROXY_EPOCHS: the measured setting for the proxy (README); the first proxy row keeps
PROXY_EPOCHS = 80  # the defaults (alpha 0.25, EPOCHS)
FACES = "synthfaces-i2i"
FACES_FORGET = "identity=0-9"  # 10 people
FACES_PROXY = "proxy:identity=400-409"  # 10 other people
FACES_ALPHA = 1.0  # people: the measured setting that forgets them within the retain PSNR budget (README)
FACES_EPOCHS = 320  # with FACES_ALPHA: 1,280 steps over the 200 faces of 10 people
METHODS = ["max-loss", "noisy-label", "retain-label", "random-encoder", "ours"]
EPOCHS = 40  # passes over the forget set (UnlearnConfig's default)
LR = 2e-3  # UnlearnConfig's default
EVAL_SIZE = 1000  # held-out images per set (MNIST: every held-out digit, 800 kept and 200 forgotten)
ALPHAS = [0.05, 0.1, 0.25, 1.0]  # Table 3
LIMITED_KS = [1, 5, 50]  # Fig. D.6: retain images per class
WORKERS = 2  # unlearning runs at a time, each in its own worker process (core.runs.executor.run_keyed)
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
from IPython.display import Image, display  # noqa: E402

from core.methods.unlearning import (METHOD_NAMES, UnlearnConfig, comparison, complete, degrade_for_eval,  # noqa: E402
                                     embedding_points, eval_sets, measure, prepare, unlearning_study)
from core.models.spec import load_model  # noqa: E402
from core.runs.executor import run_keyed  # noqa: E402
from core.viz.embedding import project  # noqa: E402
from core.viz.images import png_bytes  # noqa: E402
from core.viz.unlearning import completion_grid, embedding_figure  # noqa: E402

torch.set_num_threads(1)
START = time.time()
KINDS = ("center", "center-small")


def study(forget, retain="train", model=MNIST, **overrides):
    """One unlearning run as a job for the executor: `unlearning_study` unlearns a copy of `model` with the
    notebook's EPOCHS and LR unless `overrides` set them (and any other `UnlearnConfig` field), and measures it, with
    E.2 against the original, on the held-out sets."""
    config = UnlearnConfig(**{"epochs": EPOCHS, "lr": LR, **overrides})
    return partial(unlearning_study, model, forget, config, retain=retain, eval_size=EVAL_SIZE, kinds=KINDS,
                   device=DEVICE)


def original_metrics(model, sets, judges):
    """The original model's measurements under the `before:` prefix, as a run records them."""
    return {f"before:{k}": v for k, v in measure(model, sets, judges, original=model, kinds=KINDS).items()}


# %% [markdown]
# ## Every unlearning run, `WORKERS` at a time
# The sections below read their tables from these runs: every method and the proxy retain set on MNIST, the alpha
# sweep (alpha 0.25 is the "ours" run), the limited retain sets, and ours and its proxy on synthfaces. Each run
# loads its model and sets in a worker process, unlearns a copy and measures it.

# %%
jobs = {("faces", "people setting"): study(FACES_FORGET, model=FACES, alpha=FACES_ALPHA, epochs=FACES_EPOCHS)}
jobs.update({("method", m): study(MNIST_FORGET, method=m) for m in METHODS})
jobs[("proxy",)] = study(MNIST_FORGET, MNIST_PROXY)
jobs[("proxy", "tuned")] = study(MNIST_FORGET, MNIST_PROXY, alpha=PROXY_ALPHA, epochs=PROXY_EPOCHS)
jobs.update({("alpha", a): study(MNIST_FORGET, alpha=a) for a in ALPHAS if a != UnlearnConfig.alpha})
jobs.update({("limited", k): study(MNIST_FORGET, f"limited:{k}") for k in LIMITED_KS})
jobs[("faces", "default")] = study(FACES_FORGET, model=FACES)
jobs[("faces", "proxy")] = study(FACES_FORGET, FACES_PROXY, model=FACES)
done = run_keyed(jobs, WORKERS)
for key, (_, metrics) in done.items():
    print(f"{' '.join(map(str, key))}: {metrics['seconds']:.0f} s unlearning")

# %% [markdown]
# ## Tables 1 and 2 on MNIST: forget two digits

# %%
mnist = load_model(MNIST, DEVICE)
mnist_sets, mnist_judges = prepare(mnist, MNIST_FORGET, eval_size=EVAL_SIZE)
print(mnist_sets.describe())
before = original_metrics(mnist, mnist_sets, mnist_judges)
models = {m: done[("method", m)][0] for m in METHODS}
runs = [(m, {"method": m}, {**before, **done[("method", m)][1]}) for m in METHODS]
# the proxy runs' sets also hold the kept digits the proxy never shows (FID U); measure the original on them too
proxy_sets, _ = prepare(mnist, MNIST_FORGET, retain=MNIST_PROXY, eval_size=EVAL_SIZE)
proxy_before = original_metrics(mnist, proxy_sets, mnist_judges)
proxy_label = f"proxy, alpha {PROXY_ALPHA}, {PROXY_EPOCHS} epochs"
runs.append(("proxy", {"method": "ours"}, {**proxy_before, **done[("proxy",)][1]}))
runs.append((proxy_label, {"method": "ours"}, {**proxy_before, **done[("proxy", "tuned")][1]}))
for kind, table in (("center", "Table 1"), ("center-small", "Table 2")):
    print(f"\n{table} ({kind}, MNIST, forget {MNIST_FORGET}; judge mnist-lenet)")
    print(comparison(runs, kind).round(3).to_string(index=False))
print("\nPaper, Table 1, diffusion model: original FID R 12.2 F 14.6; ours 13.4 / 107.9 (x7.4 on F, +10% on R); "
      "proxy 17.9 / 75.5")
ours = runs[METHODS.index("ours")][2]
if proxy_sets.eval_unseen is not None:  # None when fewer than 50 such held-out digits (no FID covariance)
    print(f"U: the {len(proxy_sets.eval_unseen)} held-out digits of the kept classes the proxy never shows "
          f"{sorted(set(proxy_sets.eval_unseen.labels.tolist()))} (the paper's proxy classes are neither retain "
          "nor forget classes)")
for name, m in (("ours", ours), ("ours (proxy)", runs[-2][2]), (f"ours ({proxy_label})", runs[-1][2])):
    change = {s: m[f"fid_{s}[center]"] / m[f"before:fid_{s}[center]"] for s in ("forget", "retain", "unseen")
              if f"fid_{s}[center]" in m}
    print(f"{name}: forget FID x{change['forget']:.2f} (target >= 5), retain FID {change['retain'] - 1:+.1%}"
          + (f", on U {change['unseen'] - 1:+.1%}" if "unseen" in change else "")
          + " (target <= +10%, proxy <= +20%)")

# %% [markdown]
# ## People: forget 10 synthfaces identities
#
# The identity embedding should recognise the forgotten people in their completed held-out faces no more often
# than in the same faces with the hole filled by noise (what the unmasked context alone reveals).

# %%
faces = load_model(FACES, DEVICE)
face_sets, face_judges = prepare(faces, FACES_FORGET, eval_size=EVAL_SIZE)
print(face_sets.describe())
face_before = original_metrics(faces, face_sets, face_judges)
face_runs = [(f"ours, alpha {UnlearnConfig.alpha}, {EPOCHS} epochs", {"method": "ours"},
              {**face_before, **done[("faces", "default")][1]}),
             (f"ours, alpha {FACES_ALPHA}, {FACES_EPOCHS} epochs", {"method": "ours"},
              {**face_before, **done[("faces", "people setting")][1]}),
             (f"ours, proxy {FACES_PROXY}", {"method": "ours"}, {**face_before, **done[("faces", "proxy")][1]})]
print(comparison(face_runs, "center").round(3).to_string(index=False))
for name, _, m in face_runs:
    print(f"\n{name}: recognised forgotten people (centre crop) original {m['before:recognised_forget[center]']:.1%}, "
          f"unlearned {m['recognised_forget[center]']:.1%}, noise-filled hole "
          f"{m['recognised_noise_forget[center]']:.1%} (target: within 5 points of the noise-filled rate); retain PSNR "
          f"{m['before:psnr_retain[center]']:.2f} -> {m['psnr_retain[center]']:.2f} dB (target: drop <= 1 dB)")

# %% [markdown]
# ## Table 3: the alpha sweep (MNIST, centre crop)

# %%
rows = []
for alpha in ALPHAS:
    m = ours if alpha == UnlearnConfig.alpha else done[("alpha", alpha)][1]
    rows.append({"alpha": alpha, "FID R change": m["fid_retain[center]"] / before["before:fid_retain[center]"] - 1,
                 "FID F ratio": m["fid_forget[center]"] / before["before:fid_forget[center]"],
                 "FID R": m["fid_retain[center]"], "FID F": m["fid_forget[center]"],
                 "IS R": m["is_retain[center]"], "IS F": m["is_forget[center]"], "cos R": m["cos_retain[center]"],
                 "cos F": m["cos_forget[center]"]})
print(pd.DataFrame(rows).round(3).to_string(index=False))
print("Paper (MAE): FID F 179.0 at alpha 0.01 -> 213.0 at 0.25, FID R 113.6 -> 115.9: alpha = 0.25 balances both.")

# %% [markdown]
# ## Fig. D.6: limited retain sets (K images per class, over-sampled to balance the forget set)

# %%
rows = []
for k in LIMITED_KS:
    m = done[("limited", k)][1]
    rows.append({"K per class": k, "FID R": m["fid_retain[center]"], "FID F": m["fid_forget[center]"],
                 "cos R": m["cos_retain[center]"], "cos F": m["cos_forget[center]"]})
rows.append({"K per class": "all (train)", "FID R": ours["fid_retain[center]"], "FID F": ours["fid_forget[center]"],
             "cos R": ours["cos_retain[center]"], "cos F": ours["cos_forget[center]"]})
print(pd.DataFrame(rows).round(3).to_string(index=False))

# %% [markdown]
# ## Fig. 4: embeddings of completions and ground truths, and Table E.4: cross-validation

# %%
feats, labels = embedding_points(models["ours"], eval_sets(mnist_sets), mnist_judges.quality)
embedding_figure(project(feats, "pca", key="notebook-unlearning"), labels, "Fig. 4: PCA of mnist-lenet features")

# %%
table = pd.DataFrame([
    {"model": "Original", **{f"{k} {s}": before[f"before:cv_{k.lower()}_{s}"] for k in ("FID", "cos", "PSNR")
                             for s in ("retain", "forget")}},
    {"model": "Unlearned (ours)", **{f"{k} {s}": ours[f"cv_{k.lower()}_{s}"] for k in ("FID", "cos", "PSNR")
                                     for s in ("retain", "forget")}},
])
print("Table E.4: second completions (the original model outpaints around the first completion's centre)")
print(table.round(3).to_string(index=False))
print("Paper (VQ-GAN): FID D_F 28.96 -> 156.68, D_R 36.14 -> 36.74.")

# %% [markdown]
# ## Completion grids (Fig. 3): held-out retain and forget digits, centre crop

# %%
for name, data in eval_sets(mnist_sets).items():
    x = data.x[:10]
    rows = {"ground truth": x, "input": degrade_for_eval(x, "center")[0], "original": complete(mnist, x, "center"),
            **{METHOD_NAMES[m]: complete(models[m], x, "center") for m in METHODS}}
    print(f"{name}: " + ", ".join(rows) + " (top to bottom)")
    display(Image(png_bytes(completion_grid(rows))))

# %% [markdown]
# ## Where and why the numbers differ from the paper's
#
# - **Models.** Small conv encoder-decoders without skip connections, trained for minutes on 4,000 digits or
#   10,000 cartoon faces, not diffusion models, VQ-GAN or MAE trained on ImageNet; FID and IS use the dataset's own
#   small classifier, so their scale is not the paper's (compare ratios, not values). Our models repaint the whole
#   image; the completions keep the pixels the model was shown, as MAGE and Palette do.
# - **Table 1 (MNIST, forget 0 and 1).** Ours at the paper's alpha 0.25: forget FID x8.9, retain FID +14.4%; the
#   paper's diffusion model x7.4 at +10%. At alpha 0.1 (Table 3 above) x5.6 at +8.1%: the targets (>= x5,
#   <= +10%) hold there, so on a small conv encoder alpha 0.1 is the retain-first setting. The baselines that also
#   train the decoder on the retain images (NOISY LABEL, RETAIN LABEL) *lower* retain FID (111 -> 66): the zoo's
#   mnist-i2i trained 10 epochs and is not converged, so 520 more reconstruction steps on retain digits improve it;
#   ours leaves the decoder untouched (Alg. 1) and cannot. On forgetting, MAX LOSS (x16) and the label baselines
#   (x12-13) beat ours (x8.9) on FID, and RANDOM ENCODER is about as good as ours, unlike the paper's Table 1; the
#   cosine similarity on D_F ranks them alike.
# - **Proxy retain set** (other digits, 5-9, as many as D_F). At the defaults: retain FID +22.4% on all kept digits
#   and +43.3% on U, the kept digits the proxy never showed (2-4; the paper's proxy classes are neither retain nor
#   forget classes); the paper's own proxy costs +47% on its diffusion model (12.2 -> 17.9). A weaker forget term
#   over more steps (alpha 0.035, 80 epochs = 1,040 steps) keeps U within the issue's +20% at forget FID >= x5:
#   the retain damage is done in the first steps and the retain term repairs it over hundreds, so twice the steps
#   at a seventh of alpha forget as hard for less retain cost (README: four seeds, U +15.8% to +19.1%).
# - **People.** At the defaults (alpha 0.25, 40 epochs = 160 steps) the identity judge still recognises 32.5% of
#   the forgotten people's completed held-out faces (45% before, 0% with a noise-filled hole). At alpha 1.0 and
#   320 epochs (1,280 steps) 2.5%, within the 5-point target, with retain PSNR -0.92 dB (target: <= 1 dB) and the
#   retain recognition 43% -> 35%: forgetting a person's face while keeping similar faces needs a strong forget term
#   and many steps on a small encoder.
# - **Held-out sets are small** (MNIST has 100 test digits per class; synthfaces 4 test faces per person, so one
#   face is 2.5 points of recognition), and FID on 200 forgotten digits is noisy.
# - Unlearning runs for a few hundred steps (40 passes over D_F: 520 steps for two digits, 160 for ten people; a
#   2-core budget), the paper's for epochs over ImageNet-size forget sets on GPUs.

# %%
print(f"unlearning notebook done in {time.time() - START:.0f} s (EPOCHS={EPOCHS}, LR={LR}, EVAL_SIZE={EVAL_SIZE}, "
      f"ALPHAS={ALPHAS}, LIMITED_KS={LIMITED_KS}, METHODS={METHODS})")
