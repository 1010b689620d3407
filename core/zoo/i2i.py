"""Recipes and evaluators for the zoo image-to-image models mnist-i2i and synthfaces-i2i.

Training: each image of a batch gets one of the four degradations at random (`degrade_mixed`), the model
restores the whole image from the degraded one. Loss: per-pixel binary cross-entropy between the decoder's
logits and the clean image (a proper loss for targets in [0, 1] whose gradient, unlike MSE through a sigmoid,
does not vanish on saturated pixels), over all pixels (known pixels too: with no skip connections the decoder
must carry them through the code). Adam with cosine decay; the progress events report the training MSE.

Evaluation (`psnr_report`): on held-out images, for each degradation with a fixed seed,
PSNR = 10 log10(1 / MSE) per image on the model's raw output D(E(T(x))) over the *whole* image (as the
unlearning paper judges whole outputs), averaged over images; `psnr` (the floor metric) is the mean of the four.
`psnr_masked[kind]` is the same on the removed pixels only: how well the model invents what it did not see.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from core.data import ImageData, load
from core.device import resolve_device
from core.models.bundles import I2IBundle
from core.models.card import ModelCard
from core.models.degradations import KINDS, degrade, degrade_mixed
from core.models.i2i import build_conv_i2i
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn
from core.zoo.registry import ZOO

SMOKE_SIZE = 128
EVAL_SEED = 1234
MAX_PSNR = 60.0  # a perfect restoration would be +inf; cap per image so one exact copy cannot dominate the mean


@torch.no_grad()
def psnr_report(bundle: I2IBundle, x: torch.Tensor, seed: int = EVAL_SEED, batch_size: int = 500) -> dict[str, float]:
    """Whole-image and masked-region PSNR (dB) per degradation of the bundle, and their means `psnr` and
    `psnr_masked`, for images x in [0, 1]."""
    bundle.eval()
    out: dict[str, float] = {}
    for kind in bundle.degradations:
        gen = torch.Generator().manual_seed(seed)
        whole, masked = [], []
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(bundle.device)
            xd, mask = degrade(xb, kind, gen)
            err = (bundle.restore(xd) - xb) ** 2
            whole.append(err.flatten(1).mean(1))
            m = mask.expand_as(err).flatten(1).float()
            masked.append((err.flatten(1) * m).sum(1) / m.sum(1).clamp_min(1))
        for key, mse in ((f"psnr[{kind}]", torch.cat(whole)), (f"psnr_masked[{kind}]", torch.cat(masked))):
            out[key] = (10 * torch.log10(1 / mse.clamp_min(10 ** (-MAX_PSNR / 10)))).mean().item()
    out["psnr"] = sum(out[f"psnr[{k}]"] for k in bundle.degradations) / len(bundle.degradations)
    out["psnr_masked"] = sum(out[f"psnr_masked[{k}]"] for k in bundle.degradations) / len(bundle.degradations)
    return out


def _train_i2i(
    name: str, dataset: str, evaluate, *, seed: int, device: str, progress: ProgressFn, cancel: CancelToken,
    smoke: bool, epochs: int, width: int, latent_channels: int, lr: float = 2e-3, batch_size: int = 64,
    train: ImageData | None = None,
) -> I2IBundle:
    """Shared recipe: train the conv encoder-decoder on all four degradations of `dataset`'s train split (or on
    `train`, e.g. the split without a forget set, for retraining from scratch)."""
    torch.manual_seed(seed)
    dev = resolve_device(device)
    train = load(dataset, "train") if train is None else train
    if smoke:
        train = train.subset(torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:SMOKE_SIZE])
        epochs = 1
    c = train.shape[0]
    card = ModelCard(name=name, family="i2i", architecture="conv-i2i", data_shape=list(train.shape), seed=seed,
                     hparams={"in_channels": c, "width": width, "latent_channels": latent_channels,
                              "degradations": list(KINDS)},
                     description=ZOO[name].description)
    bundle = build_conv_i2i(card).to(dev)
    params = [*bundle.encoder.parameters(), *bundle.decoder.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    steps = epochs * math.ceil(len(train) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        bundle.encoder.train()
        bundle.decoder.train()
        order = torch.randperm(len(train), generator=gen)
        total = 0.0
        for i in range(0, len(train), batch_size):
            cancel.raise_if_set()
            xb = train.x[order[i : i + batch_size]]
            xd, _ = degrade_mixed(xb, KINDS, gen)
            xb = xb.to(dev)
            logits = bundle.decoder.logits(bundle.encoder(xd.to(dev)))
            loss = F.binary_cross_entropy_with_logits(logits, xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += F.mse_loss(torch.sigmoid(logits.detach()), xb).item() * len(xb)
        mse = total / len(train)
        progress(ProgressEvent(epoch, epochs, {"mse": mse, "train_psnr": 10 * math.log10(1 / mse)}, stage="train"))
    bundle.card.training = {"recipe": ZOO[name].recipe, "epochs": epochs, "optimiser": f"Adam(lr={lr}), cosine decay",
                            "batch_size": batch_size, "loss": "per-pixel binary cross-entropy on the whole image, degradation drawn per image",
                            "seconds": round(time.perf_counter() - start, 3), "smoke": smoke}
    bundle.card.data = {"dataset": dataset, "split": "train", "size": len(train)}
    # Smoke runs only prove the recipe works; measuring them on a few hundred test images keeps CI fast.
    bundle.card.metrics = psnr_report(bundle, load(dataset, "test").x[:SMOKE_SIZE]) if smoke else evaluate(bundle, dev)
    bundle.card.floors = {k: [op, v] for k, (op, v) in ZOO[name].floors.items()}
    return bundle.to("cpu").eval()


def train_mnist_i2i(seed: int = 0, device: str = "cpu", progress: ProgressFn = NO_PROGRESS,
                    cancel: CancelToken = CancelToken(), smoke: bool = False) -> I2IBundle:
    """Encoder-decoder on the 4,000 bundled MNIST training digits, all four degradations."""
    return _train_i2i("mnist-i2i", "mnist", evaluate_mnist_i2i, seed=seed, device=device, progress=progress,
                      cancel=cancel, smoke=smoke, epochs=10, width=32, latent_channels=32)


def evaluate_mnist_i2i(bundle: I2IBundle, device: str | torch.device = "cpu") -> dict[str, float]:
    """PSNR per degradation on the 1,000 held-out MNIST digits (see `psnr_report`)."""
    return psnr_report(bundle.to(resolve_device(device)), load("mnist", "test").x)


def train_synthfaces_i2i(seed: int = 0, device: str = "cpu", progress: ProgressFn = NO_PROGRESS,
                         cancel: CancelToken = CancelToken(), smoke: bool = False) -> I2IBundle:
    """Encoder-decoder on the synthfaces training images, all four degradations."""
    return _train_i2i("synthfaces-i2i", "synthfaces", evaluate_synthfaces_i2i, seed=seed, device=device,
                      progress=progress, cancel=cancel, smoke=smoke, epochs=14, width=24, latent_channels=48)


def evaluate_synthfaces_i2i(bundle: I2IBundle, device: str | torch.device = "cpu") -> dict[str, float]:
    """PSNR per degradation on every other synthfaces test image (1,000 images, two of each identity; see
    `psnr_report`)."""
    return psnr_report(bundle.to(resolve_device(device)), load("synthfaces", "test").x[::2])
