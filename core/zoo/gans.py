"""Zoo recipes and evaluators for the GANs: `mnist-dcgan`, `synthfaces-dcgan`, `toy-gan`, `mnist-acgan`,
`toy-acgan`.

Each recipe follows the zoo contract `train_xxx(seed, device, progress, cancel, smoke) -> GANBundle` and fills
the card (hyperparameters, data, training record with every deviation from the paper, measured metrics, floors).
`smoke=True` runs a few steps on a small subset so CI can exercise every recipe in seconds.

Losses (all discriminators return logits):
- DCGAN, redaction paper App. D: D maximises alpha+ log D(x) + (1 - alpha+) log(1 - D(x)) on real data and
  alpha- log D(G(z)) + (1 - alpha-) log(1 - D(G(z))) on fakes, i.e. BCE against the smoothed targets
  alpha+ = 0.9, alpha- = 0.1; G uses the usual non-saturating loss -log D(G(z)).
- FCGAN, influence paper App. C: the non-saturating game of Goodfellow et al. (2014).
- ACGAN, GOLD paper eq. (1)-(2): D minimises L_GAN + L_AC, G minimises -L_GAN + L_AC with
  L_AC = CE(D_C(x), c) on real data + lambda_c CE(D_C(G(z, c)), c) on fakes, lambda_c = 0.1.
"""

from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from core.data import load as load_data
from core.device import resolve_device
from core.distributed import team as current_team
from core.metrics import class_shares, fid_from_features, inception_score, kde_log_likelihood, metric_name
import core.models.gans  # noqa: F401 - registers the GAN architectures used below
from core.models.bundles import ClassifierBundle, GANBundle, from_unit
from core.models.card import ModelCard
from core.models.registry import build
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn

EpochHook = Callable[[int, GANBundle], None]
FakeWeights = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _new_bundle(name: str, architecture: str, hparams: dict, seed: int) -> GANBundle:
    torch.manual_seed(seed)
    card = ModelCard(name=name, family="gan", architecture=architecture, hparams=dict(hparams), seed=seed)
    return build(card)  # type: ignore[return-value]


def _finish_card(bundle: GANBundle, name: str, metrics: dict[str, float]) -> GANBundle:
    """Attach measured metrics and the zoo entry's floors to the card; return the bundle in eval mode."""
    from core.zoo.registry import ZOO

    bundle.card.metrics = {k: float(v) for k, v in metrics.items()}
    bundle.card.floors = {k: [op, bound] for k, (op, bound) in ZOO[name].floors.items()}
    bundle.card.description = ZOO[name].description + " " + bundle.card.description
    return bundle.eval()


def shuffled_batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """Shuffled minibatch index lists covering n rows (the last, short batch is dropped, as in DCGAN loaders)."""
    order = torch.randperm(n, generator=gen)
    return [order[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


# ---------------------------------------------------------------------------------------------------- mnist-dcgan


@dataclass(frozen=True)
class DCGANRecipe:
    """Redaction paper, Appendix D (loss, label smoothing, optimiser, batch, latent 128), with what made it reach
    the zoo floor on 2 shared CPU cores in 15 minutes (measured; the paper's recipe, `PAPER_DCGAN`, at width 32
    with batch-norm D and K_G = 5 plateaued at IS[mnist-lenet] ~6.9 after 30 epochs, 100+ s/epoch):
    spectral-norm D, a 256-unit FC layer in G and D as in the GOLD paper's MNIST nets, K_G = 1, 60 epochs,
    and a moving average of G's weights."""

    epochs: int = 60
    width: int = 32
    d_norm: str = "spectral"
    fc_width: int = 256
    latent_dim: int = 128
    batch_size: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    alpha_pos: float = 0.9
    alpha_neg: float = 0.1
    k_d: int = 1
    k_g: int = 1
    ema: float = 0.995  # decay of the exponential moving average of G's weights that is shipped (0 = off)


PAPER_DCGAN = DCGANRecipe(epochs=200, width=64, d_norm="batch", fc_width=0, k_d=1, k_g=5, ema=0.0)


def fit_dcgan(
    bundle: GANBundle,
    x: torch.Tensor,
    recipe: DCGANRecipe,
    seed: int,
    progress: ProgressFn = NO_PROGRESS,
    cancel: CancelToken | None = None,
    on_epoch: EpochHook | None = None,
    max_steps: int | None = None,
) -> float:
    """Train G and D in place on images `x` in [0, 1] with label smoothing; return seconds spent.

    Each minibatch makes `k_d` discriminator steps and then `k_g` generator steps with fresh latents. With
    `recipe.ema > 0` the generator that is kept (and shown to `on_epoch`) is the exponential moving average of
    G's weights over the generator steps (Yazici et al., 2019), which removes much of the step-to-step noise of
    GAN training; D is always the live discriminator."""
    cancel = cancel or CancelToken()
    device = bundle.device
    x = from_unit(x, bundle.pixel_range)
    G, D = bundle.generator, bundle.discriminator
    opt_g = torch.optim.Adam(G.parameters(), lr=recipe.lr, betas=recipe.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=recipe.lr, betas=recipe.betas)
    gen = torch.Generator().manual_seed(seed)
    bce = nn.BCEWithLogitsLoss()
    G.train()
    D.train()
    averaged = copy.deepcopy(G).eval() if recipe.ema > 0 else None
    start = time.perf_counter()
    steps = 0
    for epoch in range(1, recipe.epochs + 1):
        d_sum = g_sum = 0.0
        batches = shuffled_batches(len(x), recipe.batch_size, gen)
        for idx in batches:
            cancel.raise_if_set()
            real = x[idx].to(device)
            b = len(real)
            for _ in range(recipe.k_d):
                z = torch.randn(b, bundle.latent_dim, generator=gen).to(device)
                with torch.no_grad():
                    fake = G(z)
                logit_real, logit_fake = D(real).reshape(-1), D(fake).reshape(-1)
                loss_d = bce(logit_real, torch.full_like(logit_real, recipe.alpha_pos)) + bce(
                    logit_fake, torch.full_like(logit_fake, recipe.alpha_neg)
                )
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
            for _ in range(recipe.k_g):
                z = torch.randn(b, bundle.latent_dim, generator=gen).to(device)
                logit = D(G(z)).reshape(-1)
                loss_g = bce(logit, torch.ones_like(logit))
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                if averaged is not None:
                    ema_update(averaged, G, recipe.ema)
            d_sum += loss_d.item()
            g_sum += loss_g.item()
            steps += 1
            if max_steps is not None and steps >= max_steps:
                break
        n = max(1, min(len(batches), steps))
        progress(ProgressEvent(epoch, recipe.epochs, {"loss_d": d_sum / n, "loss_g": g_sum / n},
                               message=f"epoch {epoch}/{recipe.epochs}", stage="train"))
        if on_epoch is not None:
            on_epoch(epoch, bundle if averaged is None else replace(bundle, generator=averaged))
        if max_steps is not None and steps >= max_steps:
            break
    if averaged is not None:
        G.load_state_dict(averaged.state_dict())
    return time.perf_counter() - start


@torch.no_grad()
def ema_update(averaged: nn.Module, live: nn.Module, decay: float) -> None:
    """averaged <- decay * averaged + (1 - decay) * live for parameters; buffers (BN statistics) are copied."""
    for p_avg, p in zip(averaged.parameters(), live.parameters()):
        p_avg.lerp_(p, 1.0 - decay)
    for b_avg, b in zip(averaged.buffers(), live.buffers()):
        b_avg.copy_(b)


@dataclass(frozen=True)
class DCGANData:
    """What a DCGAN zoo entry trains on: its dataset, architecture, recipe path and the data deviation noted on
    the card."""

    dataset: str
    architecture: str
    recipe_path: str
    data_note: str


DCGAN_DATA = {
    "mnist-dcgan": DCGANData(
        "mnist", "dcgan28", "core.zoo.gans:train_mnist_dcgan",
        "trained on the 4,000-image train split of the bundled MNIST subset, not the full 60k"),
    "synthfaces-dcgan": DCGANData(
        "synthfaces", "dcgan32", "core.zoo.gans:train_synthfaces_dcgan",
        "trained on the 10,000-image train split of synthfaces (32x32 rendered cartoon faces with 8 attributes), "
        "Lethe's offline stand-in for the paper's CelebA 64x64, so G starts from 4x4 and has three transposed "
        "convolutions instead of four"),
}


def describe_dcgan(bundle: GANBundle, recipe: DCGANRecipe, size: int, seconds: float, device: str, smoke: bool,
                   name: str = "mnist-dcgan") -> None:
    """Fill the card's data, training record and deviations from the redaction paper's App. D for the DCGAN zoo
    entry `name` (a key of `DCGAN_DATA`)."""
    entry = DCGAN_DATA[name]
    bundle.card.data = {"dataset": entry.dataset, "split": "train", "size": size}
    bundle.card.training = {
        "recipe": entry.recipe_path, "epochs": recipe.epochs, "batch_size": recipe.batch_size,
        "optimiser": f"Adam lr={recipe.lr} betas={list(recipe.betas)} (G and D)",
        "label_smoothing": [recipe.alpha_pos, recipe.alpha_neg], "k_d": recipe.k_d, "k_g": recipe.k_g,
        "generator_ema": recipe.ema,
        "seconds": round(seconds, 3), "seconds_per_epoch": round(seconds / recipe.epochs, 2),
        "device": str(device), "smoke": smoke,
    }
    bundle.card.description = _dcgan_deviations(recipe, entry.data_note)


def describe_mnist_dcgan(bundle: GANBundle, recipe: DCGANRecipe, size: int, seconds: float, device: str,
                         smoke: bool) -> None:
    """`describe_dcgan` for `mnist-dcgan`."""
    describe_dcgan(bundle, recipe, size, seconds, device, smoke, "mnist-dcgan")


def _dcgan_deviations(recipe: DCGANRecipe, data_note: str) -> str:
    diffs = []
    if recipe.epochs != PAPER_DCGAN.epochs:
        diffs.append(f"{recipe.epochs} epochs instead of {PAPER_DCGAN.epochs}")
    if recipe.width != PAPER_DCGAN.width:
        diffs.append(f"width {recipe.width} instead of DCGAN's {PAPER_DCGAN.width}")
    if recipe.ema:
        diffs.append(f"the shipped G is the moving average (decay {recipe.ema}) of G's weights")
    if recipe.fc_width:
        diffs.append(f"a hidden FC layer of {recipe.fc_width} units in G and D (as in the GOLD paper's MNIST nets)")
    if recipe.d_norm != PAPER_DCGAN.d_norm:
        diffs.append(f"{recipe.d_norm} normalisation in D instead of DCGAN's batch norm")
    if (recipe.k_d, recipe.k_g) != (PAPER_DCGAN.k_d, PAPER_DCGAN.k_g):
        diffs.append(f"K_D={recipe.k_d}, K_G={recipe.k_g} instead of K_D=1, K_G=5")
    diffs.append(data_note)
    diffs.append("G minimises the non-saturating -log D(G(z)) (the paper writes the minimax objective)")
    return "Deviations from the paper: " + "; ".join(diffs) + "."


def new_dcgan(name: str, recipe: DCGANRecipe, seed: int = 0, device: str = "cpu") -> GANBundle:
    """A freshly initialised (seeded) G and D for the DCGAN zoo entry `name`, sized by `recipe`, on `device`.

    With `fit_dcgan` this retrains the entry from scratch on any images, e.g. the deletion baseline of the
    redaction paper: `fit_dcgan(new_dcgan("synthfaces-dcgan", SYNTHFACES_DCGAN, s), x_kept, SYNTHFACES_DCGAN, s)`."""
    hp = {"latent_dim": recipe.latent_dim, "width": recipe.width, "d_norm": recipe.d_norm, "fc_width": recipe.fc_width}
    bundle = _new_bundle(name, DCGAN_DATA[name].architecture, hp, seed)
    bundle.to(resolve_device(device))
    return bundle


def _train_dcgan(name: str, recipe: DCGANRecipe, seed: int, device: str, progress: ProgressFn, cancel: CancelToken,
                 smoke: bool, on_epoch: EpochHook | None, evaluate: Callable[[GANBundle, str], dict]) -> GANBundle:
    """Shared DCGAN zoo recipe: build the entry's architecture, `fit_dcgan` on its train split, describe, measure.

    Smoke mode: one epoch of 3 steps at width 8 on 256 images, no evaluation."""
    if smoke:
        recipe = replace(recipe, epochs=1, width=8, fc_width=min(recipe.fc_width, 16))
    data = load_data(DCGAN_DATA[name].dataset, "train")
    x = data.x[:256] if smoke else data.x
    bundle = new_dcgan(name, recipe, seed, device)
    seconds = fit_dcgan(bundle, x, recipe, seed, progress, cancel, on_epoch, max_steps=3 if smoke else None)
    describe_dcgan(bundle, recipe, len(x), seconds, device, smoke, name)
    metrics = {} if smoke else evaluate(bundle, device)
    return _finish_card(bundle, name, metrics)


def train_mnist_dcgan(
    seed: int = 0,
    device: str = "cpu",
    progress: ProgressFn = NO_PROGRESS,
    cancel: CancelToken = CancelToken(),
    smoke: bool = False,
    recipe: DCGANRecipe | None = None,
    on_epoch: EpochHook | None = None,
) -> GANBundle:
    """DCGAN on the bundled MNIST train split with label smoothing 0.9/0.1, Adam 2e-4 (0.5, 0.999), batch 64."""
    return _train_dcgan("mnist-dcgan", recipe or DCGANRecipe(), seed, device, progress, cancel, smoke, on_epoch,
                        evaluate_mnist_dcgan)


def evaluate_mnist_dcgan(bundle: GANBundle, device: str = "cpu", n: int = 10_000, seed: int = 1) -> dict[str, float]:
    """IS with `mnist-lenet` on n samples and the smallest / largest share of a digit among them."""
    from core.models.spec import load_model

    judge = load_model("mnist-lenet", device)
    x, _ = bundle.sample(n, seed=seed)
    logits = judge.logits(x)
    shares = class_shares(logits.argmax(1), 10)
    return {
        "IS[mnist-lenet]": float(inception_score(logits)),
        "min_class_share": float(shares.min()),
        "max_class_share": float(shares.max()),
    }


# ----------------------------------------------------------------------------------------------- synthfaces-dcgan

SYNTHFACES_DCGAN = DCGANRecipe(
    epochs=40, width=32, d_norm="spectral", fc_width=0, latent_dim=128, k_d=1, k_g=1, ema=0.999,
)
"""The `synthfaces-dcgan` recipe: `DCGANRecipe` (App. D loss, label smoothing 0.9/0.1, Adam 2e-4 (0.5, 0.999),
batch 64, latent 128) with a spectral-norm D, K_G = 1 and a moving average of G, sized for 2 shared CPU cores.
`fit_dcgan(bundle, x, SYNTHFACES_DCGAN, seed)` retrains a fresh `dcgan32` bundle on any image tensor x."""


def train_synthfaces_dcgan(
    seed: int = 0,
    device: str = "cpu",
    progress: ProgressFn = NO_PROGRESS,
    cancel: CancelToken = CancelToken(),
    smoke: bool = False,
    recipe: DCGANRecipe | None = None,
    on_epoch: EpochHook | None = None,
) -> GANBundle:
    """Unconditional DCGAN (`dcgan32`) on the synthfaces train split with the redaction paper's App. D loss."""
    return _train_dcgan("synthfaces-dcgan", recipe or SYNTHFACES_DCGAN, seed, device, progress, cancel, smoke,
                        on_epoch, evaluate_synthfaces_dcgan)


_JUDGED_TRAIN: dict[tuple[str, str, str], tuple[torch.Tensor, torch.Tensor]] = {}


def _judged_train_split(judge: ClassifierBundle, dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(feature-layer activations, predicted attribute shares) of `judge` on `dataset`'s train split, computed once
    per process and judge weights (keyed by a hash of the weights, so a retrained judge is never served stale)."""
    digest = hashlib.sha1()
    for name, tensor in sorted(judge.net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    key = (dataset, judge.card.name, digest.hexdigest())
    if key not in _JUDGED_TRAIN:
        x = load_data(dataset, "train").x
        _JUDGED_TRAIN.clear()  # one judged split at a time: 10,000 x 128 floats
        _JUDGED_TRAIN[key] = (judge.features(x), (judge.logits(x) > 0).float().mean(0))
    return _JUDGED_TRAIN[key]


def evaluate_synthfaces_dcgan(bundle: GANBundle, device: str = "cpu", n: int = 10_000,
                              seed: int = 1) -> dict[str, float]:
    """FID on `synthfaces-attributes`' feature layer between n samples and the 10,000 train images, and the
    attribute shares of the samples against those of the train images, both as predicted by that classifier
    (so its small errors cancel): `attribute_share[a]` per attribute, `max_attribute_share_gap`, the largest
    absolute difference (fidelity: a G that invents or drops glasses, hats, ... fails), and
    `min_attribute_share_ratio`, the smallest sample share / data share (mode collapse: 0 when an attribute is
    never generated).

    The judge is trained on renders degraded as generated images are (noise, blur, colour shifts; see
    `core.zoo.augmentation`): 0.95 mean attribute accuracy on degraded test renders. Its predecessor, trained on
    clean renders only, kept 0.73 there and read 70% of this GAN's samples as wearing glasses (27% of the data).
    The floors are set for this judge, not for an Inception network."""
    from core.models.spec import load_model

    judge = load_model("synthfaces-attributes", device)
    train_features, data_shares = _judged_train_split(judge, "synthfaces")
    x, _ = bundle.sample(n, seed=seed)
    metrics = {metric_name("FID", judge): fid_from_features(judge.features(x), train_features)}
    sample_shares = (judge.logits(x) > 0).float().mean(0)
    metrics.update({f"attribute_share[{a}]": float(v) for a, v in zip(judge.class_names, sample_shares)})
    metrics["max_attribute_share_gap"] = float((sample_shares - data_shares).abs().max())
    metrics["min_attribute_share_ratio"] = float((sample_shares / data_shares.clamp_min(1e-6)).min())
    return metrics


# -------------------------------------------------------------------------------------------------------- toy-gan


@dataclass(frozen=True)
class ToyGANRecipe:
    """Influence paper, App. C (Tables 2-3): FCGAN with z = 10, hidden 32 (G) / 64 (D), batch 100; Adam 2e-4
    instead of the paper's SGD 1e-3 (measured: SGD-speed convergence would need far more epochs)."""

    epochs: int = 60
    latent_dim: int = 10
    g_hidden: int = 32
    d_hidden: int = 64
    batch_size: int = 100
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)


def fit_toy_gan(
    bundle: GANBundle,
    x: torch.Tensor,
    recipe: ToyGANRecipe,
    seed: int,
    progress: ProgressFn = NO_PROGRESS,
    cancel: CancelToken | None = None,
    max_steps: int | None = None,
) -> float:
    """Simultaneous non-saturating G/D updates (one each per minibatch) on 2-D data; return seconds spent."""
    cancel = cancel or CancelToken()
    device = bundle.device
    G, D = bundle.generator, bundle.discriminator
    opt_g = torch.optim.Adam(G.parameters(), lr=recipe.lr, betas=recipe.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=recipe.lr, betas=recipe.betas)
    gen = torch.Generator().manual_seed(seed)
    G.train()
    D.train()
    start = time.perf_counter()
    steps = 0
    for epoch in range(1, recipe.epochs + 1):
        for idx in shuffled_batches(len(x), recipe.batch_size, gen):
            cancel.raise_if_set()
            real = x[idx].to(device)
            z = torch.randn(len(real), bundle.latent_dim, generator=gen).to(device)
            fake = G(z)
            logit_real, logit_fake = D(real).reshape(-1), D(fake.detach()).reshape(-1)
            loss_d = F.softplus(-logit_real).mean() + F.softplus(logit_fake).mean()  # -log D(x) - log(1 - D(G(z)))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            loss_g = F.softplus(-D(fake).reshape(-1)).mean()  # -log D(G(z))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            steps += 1
            if max_steps is not None and steps >= max_steps:
                break
        progress(ProgressEvent(epoch, recipe.epochs, {"loss_d": loss_d.item(), "loss_g": loss_g.item()},
                               message=f"epoch {epoch}/{recipe.epochs}", stage="train"))
        if max_steps is not None and steps >= max_steps:
            break
    return time.perf_counter() - start


def train_toy_gan(
    seed: int = 0,
    device: str = "cpu",
    progress: ProgressFn = NO_PROGRESS,
    cancel: CancelToken = CancelToken(),
    smoke: bool = False,
) -> GANBundle:
    """FCGAN on the correlated 2-D Gaussian `gaussian2d` (10k training points)."""
    recipe = ToyGANRecipe(epochs=1) if smoke else ToyGANRecipe()
    data = load_data("gaussian2d", "train")
    hp = {"latent_dim": recipe.latent_dim, "g_hidden": recipe.g_hidden, "d_hidden": recipe.d_hidden, "dim": 2}
    bundle = _new_bundle("toy-gan", "fcgan", hp, seed)
    bundle.to(resolve_device(device))
    seconds = fit_toy_gan(bundle, data.x, recipe, seed, progress, cancel, max_steps=20 if smoke else None)
    bundle.card.data = {"dataset": "gaussian2d", "split": "train", "size": len(data)}
    bundle.card.training = {
        "recipe": "core.zoo.gans:train_toy_gan", "epochs": recipe.epochs, "batch_size": recipe.batch_size,
        "optimiser": f"Adam lr={recipe.lr} betas={list(recipe.betas)} (G and D)", "loss": "non-saturating",
        "seconds": round(seconds, 3), "device": str(device), "smoke": smoke,
    }
    bundle.card.description = (
        "Deviations from the paper: Adam 2e-4 (0.5, 0.999) instead of plain SGD 1e-3 (converges in 60 epochs), "
        "linear instead of tanh generator output (the data have mean (1, 1) and are not bounded by 1), no L2 "
        "weight decay, float32 instead of float64."
    )
    metrics = {} if smoke else evaluate_toy_gan(bundle, device)
    return _finish_card(bundle, "toy-gan", metrics)


def evaluate_toy_gan(bundle: GANBundle, device: str = "cpu", n: int = 10_000, seed: int = 1) -> dict[str, float]:
    """Average log-likelihood of the test split under a bandwidth-1 Gaussian KDE of n generated samples (the
    influence paper's ALL), and the errors of the sample mean and covariance against the true (1, 1) and
    [[1, .8], [.8, 1]]."""
    test = load_data("gaussian2d", "test").x
    x, _ = bundle.sample(n, seed=seed)
    true_mean = torch.tensor([1.0, 1.0])
    true_cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]])
    return {
        "kde_loglik": float(kde_log_likelihood(x, test, bandwidth=1.0)),
        "mean_error": float((x.mean(0) - true_mean).norm()),
        "cov_error": float((torch.cov(x.T) - true_cov).norm()),
    }


# ---------------------------------------------------------------------------------------- mnist-acgan, toy-acgan


@dataclass(frozen=True)
class ACGANRecipe:
    """GOLD paper (Sec. 2 and 4): ACGAN loss with lambda_c = 0.1, SN discriminator, Adam 2e-4 (0.5, 0.999),
    batch 128."""

    epochs: int = 40
    batch_size: int = 128
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lambda_c: float = 0.1


def fit_acgan(
    bundle: GANBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    recipe: ACGANRecipe,
    seed: int,
    progress: ProgressFn = NO_PROGRESS,
    cancel: CancelToken | None = None,
    max_steps: int | None = None,
    on_epoch: EpochHook | None = None,
    fake_weights: FakeWeights | None = None,
) -> float:
    """Train a conditional GAN with an auxiliary classifier (GOLD eq. 1-2) in place; return seconds spent.

    Per minibatch: one D step on L_GAN + CE(D_C(x), c) + lambda_c CE(D_C(G(z, c')), c'), then one G step on
    the non-saturating -log D(G(z, c')) + lambda_c CE(D_C(G(z, c')), c'), with c' uniform over the classes.
    Labels < 0 mark real images whose class is unknown (semi-supervised training, GOLD Sec. 3.2): they enter
    L_GAN only. `fake_weights(logit, class_logits, c)` returns per-sample weights of D's two fake terms
    (GOLD's re-weighting, eq. 5); None weighs every fake sample 1.

    Under torchrun (`core.distributed`) every rank draws the same global minibatch, z and c' and trains on its
    `shard` of them, D through DDP in D's step and G in G's step, so each step is one process's step (the
    auxiliary CE over labelled real rows is a per-rank mean: exact when every row is labelled, as in re-weighting).
    The epoch's mean losses are summed on the device and read once per epoch (no host round trip per step)."""
    cancel = cancel or CancelToken()
    team = current_team()
    team.check_batch(recipe.batch_size)
    device = bundle.device
    x = from_unit(x, bundle.pixel_range)
    G, D = bundle.generator, bundle.discriminator
    G_step, D_step = team.wrap(G), team.wrap(D)  # the DDP views share G's and D's parameters
    opt_g = torch.optim.Adam(G.parameters(), lr=recipe.lr, betas=recipe.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=recipe.lr, betas=recipe.betas)
    gen = torch.Generator().manual_seed(seed)
    rows = team.shard(recipe.batch_size)
    G.train()
    D.train()
    start = time.perf_counter()
    steps = 0
    for epoch in range(1, recipe.epochs + 1):
        totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss_d, loss_g, aux_acc_real
        batches = shuffled_batches(len(x), recipe.batch_size, gen)
        for idx in batches:
            team.agree_cancel(cancel, steps)
            b = len(idx)
            z = torch.randn(b, bundle.latent_dim, generator=gen)[rows].to(device)
            c = torch.randint(0, bundle.num_classes, (b,), generator=gen)[rows].to(device)
            real, label = x[idx[rows]].to(device), y[idx[rows]].to(device)
            fake = G_step(z, c)
            lr_, cr = D_step(real)
            lf, cf = D_step(fake.detach())
            weight = 1.0 if fake_weights is None else fake_weights(lf.detach().reshape(-1), cf.detach(), c)
            known = (label >= 0).to(cr.dtype)
            labelled = known.sum().clamp(min=1.0)  # a batch without labels adds 0, with no host-side branch
            loss_real_c = (F.cross_entropy(cr, label.clamp(min=0), reduction="none") * known).sum() / labelled
            loss_d = (F.softplus(-lr_).mean() + (weight * F.softplus(lf).reshape(-1)).mean()
                      + loss_real_c + recipe.lambda_c * (weight * F.cross_entropy(cf, c, reduction="none")).mean())
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            lf, cf = D(fake)  # D's gradient from G's step is dropped by D's next zero_grad: not all-reduced
            loss_g = F.softplus(-lf).mean() + recipe.lambda_c * F.cross_entropy(cf, c)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            accuracy = ((cr.detach().argmax(1) == label).to(cr.dtype) * known).sum() / labelled
            totals += torch.stack([loss_d.detach(), loss_g.detach(), accuracy]).double()
            steps += 1
            if max_steps is not None and steps >= max_steps:
                break
        n = max(1, min(len(batches), steps))
        means = dict(zip(("loss_d", "loss_g", "aux_acc_real"), (team.mean(totals) / n).tolist()))
        progress(ProgressEvent(epoch, recipe.epochs, means, message=f"epoch {epoch}/{recipe.epochs}", stage="train"))
        if on_epoch is not None:
            on_epoch(epoch, bundle)
        if max_steps is not None and steps >= max_steps:
            break
    return time.perf_counter() - start


def _acgan_training_card(recipe: ACGANRecipe, recipe_path: str, seconds: float, device: str, smoke: bool) -> dict:
    return {
        "recipe": recipe_path, "epochs": recipe.epochs, "batch_size": recipe.batch_size,
        "optimiser": f"Adam lr={recipe.lr} betas={list(recipe.betas)} (G and D)", "lambda_c": recipe.lambda_c,
        "loss": "ACGAN (GOLD eq. 1-2) with the non-saturating generator loss", "k_d": 1, "k_g": 1,
        "seconds": round(seconds, 3), "device": str(device), "smoke": smoke,
    }


MNIST_ACGAN_HPARAMS = {"latent_dim": 100, "num_classes": 10, "fc_width": 256, "width": 32}


def _fit_acgan28(name: str, x: torch.Tensor, y: torch.Tensor, seed: int, device: str, progress: ProgressFn,
                 cancel: CancelToken, smoke: bool, recipe: ACGANRecipe | None,
                 on_epoch: EpochHook | None) -> tuple[GANBundle, ACGANRecipe, float]:
    """Build the 28x28 ACGAN nets (narrowed in a smoke run) and train them on (x, y) with the recipe; shared by the
    MNIST and Fashion-MNIST zoo entries so that both columns of the GOLD paper are trained alike."""
    recipe = ACGANRecipe(epochs=1) if smoke else (recipe or ACGANRecipe())
    hp = dict(MNIST_ACGAN_HPARAMS)
    if smoke:
        hp.update(fc_width=32, width=8)
    bundle = _new_bundle(name, "acgan28", hp, seed)
    bundle.to(resolve_device(device))
    seconds = fit_acgan(bundle, x, y, recipe, seed, progress, cancel, max_steps=3 if smoke else None,
                        on_epoch=on_epoch)
    return bundle, recipe, seconds


def train_mnist_acgan(
    seed: int = 0,
    device: str = "cpu",
    progress: ProgressFn = NO_PROGRESS,
    cancel: CancelToken = CancelToken(),
    smoke: bool = False,
    recipe: ACGANRecipe | None = None,
    on_epoch: EpochHook | None = None,
) -> GANBundle:
    """ACGAN on the bundled MNIST train split (GOLD paper's MNIST nets, narrowed to fit the zoo's size budget)."""
    data = load_data("mnist", "train")
    x, y = (data.x[:256], data.labels[:256]) if smoke else (data.x, data.labels)
    bundle, recipe, seconds = _fit_acgan28("mnist-acgan", x, y, seed, device, progress, cancel, smoke, recipe,
                                           on_epoch)
    describe_mnist_acgan(bundle, recipe, len(x), seconds, device, smoke)
    metrics = {} if smoke else evaluate_mnist_acgan(bundle, device)
    return _finish_card(bundle, "mnist-acgan", metrics)


def describe_mnist_acgan(bundle: GANBundle, recipe: ACGANRecipe, size: int, seconds: float, device: str,
                         smoke: bool) -> None:
    """Fill the card's data, training record and deviations from the GOLD paper."""
    hp = bundle.card.hparams
    bundle.card.data = {"dataset": "mnist", "split": "train", "size": size, "labels": "digit"}
    bundle.card.training = _acgan_training_card(recipe, "core.zoo.gans:train_mnist_acgan", seconds, device, smoke)
    bundle.card.description = (
        f"Deviations from the paper: FC width {hp['fc_width']} instead of 1024 and conv widths "
        f"{hp['width']}/{2 * hp['width']} instead of 64/128 (zoo size budget, CPU training); 28x28 output from a "
        f"7x7 start instead of 32x32 from 8x8; {recipe.epochs} epochs on the 4,000-image bundled train split "
        "instead of 20 epochs on the full 60k; non-saturating generator loss; InfoGAN-style nets as listed in "
        "the authors' code, not their InfoGAN latent codes."
    )


def evaluate_mnist_acgan(bundle: GANBundle, device: str = "cpu", n: int = 10_000, seed: int = 1) -> dict[str, float]:
    """Fraction of class-conditional samples that `mnist-lenet` assigns to the requested digit, IS with
    `mnist-lenet`, and the smallest / largest share of a predicted digit (labels are drawn uniformly)."""
    return _judge_conditional(bundle, "mnist-lenet", device, n, seed)


def _judge_conditional(bundle: GANBundle, judge_name: str, device: str, n: int, seed: int) -> dict[str, float]:
    from core.models.spec import load_model

    judge = load_model(judge_name, device)
    labels = torch.arange(n) % bundle.num_classes
    x, y = bundle.sample(n, seed=seed, labels=labels)
    logits = judge.logits(x)
    pred = logits.argmax(1)
    shares = class_shares(pred, 10)
    return {
        f"label_accuracy[{judge_name}]": float((pred == y).float().mean()),
        f"IS[{judge_name}]": float(inception_score(logits)),
        "min_class_share": float(shares.min()),
        "max_class_share": float(shares.max()),
    }


def train_fashion_acgan(
    seed: int = 0,
    device: str = "cpu",
    progress: ProgressFn = NO_PROGRESS,
    cancel: CancelToken = CancelToken(),
    smoke: bool = False,
    recipe: ACGANRecipe | None = None,
    on_epoch: EpochHook | None = None,
) -> GANBundle:
    """`mnist-acgan`'s recipe and nets on the first 4,000 images of Fashion-MNIST's train split (the same size as
    the bundled MNIST split), so the GOLD paper's MNIST and FMNIST columns are measured alike."""
    data = load_data("fashion-mnist", "train")
    size = 256 if smoke else 4000
    x, y = data.x[:size], data.labels[:size]
    bundle, recipe, seconds = _fit_acgan28("fashion-acgan", x, y, seed, device, progress, cancel, smoke, recipe,
                                           on_epoch)
    describe_mnist_acgan(bundle, recipe, len(x), seconds, device, smoke)
    bundle.card.data = {"dataset": "fashion-mnist", "split": "train", "size": len(x), "labels": "clothing class",
                        "subset": f"first {len(x)} images"}
    bundle.card.training["recipe"] = "core.zoo.gans:train_fashion_acgan"
    bundle.card.description = bundle.card.description.replace("bundled train split", "Fashion-MNIST train split")
    metrics = {} if smoke else evaluate_fashion_acgan(bundle, device)
    return _finish_card(bundle, "fashion-acgan", metrics)


def evaluate_fashion_acgan(bundle: GANBundle, device: str = "cpu", n: int = 10_000, seed: int = 1) -> dict[str, float]:
    """`evaluate_mnist_acgan`'s measures with `fashion-lenet` as the judge."""
    return _judge_conditional(bundle, "fashion-lenet", device, n, seed)


TOY_ACGAN_HPARAMS = {"latent_dim": 2, "num_classes": 2, "hidden": 128, "dim": 2}


def train_toy_acgan(
    seed: int = 0,
    device: str = "cpu",
    progress: ProgressFn = NO_PROGRESS,
    cancel: CancelToken = CancelToken(),
    smoke: bool = False,
) -> GANBundle:
    """ACGAN with a fully connected SN discriminator on `clusters6` (six clusters, binary parity labels)."""
    recipe = ACGANRecipe(epochs=1) if smoke else ACGANRecipe(epochs=40, lr=1e-3)
    data = load_data("clusters6", "train")
    bundle = _new_bundle("toy-acgan", "fc-acgan", TOY_ACGAN_HPARAMS, seed)
    bundle.to(resolve_device(device))
    seconds = fit_acgan(bundle, data.x, data.labels, recipe, seed, progress, cancel,
                        max_steps=20 if smoke else None)
    bundle.card.data = {"dataset": "clusters6", "split": "train", "size": len(data), "labels": "cluster parity"}
    bundle.card.training = _acgan_training_card(recipe, "core.zoo.gans:train_toy_acgan", seconds, device, smoke)
    bundle.card.description = (
        "The GOLD paper's synthetic setting (GAN of Gulrajani et al. with an auxiliary classifier, SN, "
        "lambda_c = 0.1); widths are Lethe's choice (the paper does not list them); Adam lr 1e-3 instead of 2e-4 "
        "so the toy converges in seconds."
    )
    metrics = {} if smoke else evaluate_toy_acgan(bundle, device)
    return _finish_card(bundle, "toy-acgan", metrics)


def evaluate_toy_acgan(bundle: GANBundle, device: str = "cpu", n: int = 10_000, seed: int = 1) -> dict[str, float]:
    """Label accuracy against the true cluster parity: a sample generated for label c counts as correct when
    the nearest cluster centre (centres = per-cluster means of the training data) has label c. Also reports the
    smallest share of samples per cluster (0 means a cluster was dropped) and the mean distance to that centre."""
    data = load_data("clusters6", "train")
    cluster = data.meta["cluster"]
    centres = torch.stack([data.x[cluster == k].mean(0) for k in range(int(cluster.max()) + 1)])
    labels = torch.arange(n) % bundle.num_classes
    x, y = bundle.sample(n, seed=seed, labels=labels)
    dist = torch.cdist(x, centres)
    nearest = dist.argmin(1)
    shares = class_shares(nearest, len(centres))
    return {
        "label_accuracy": float(((nearest % 2) == y).float().mean()),
        "min_cluster_share": float(shares.min()),
        "mean_distance_to_centre": float(dist.min(1).values.mean()),
    }
