"""Fitting capacity (GOLD paper, Sec. 4, after Ravuri & Vinyals 2019): the accuracy on *real* test data of a
LeNet trained only on a conditional generator's labelled samples. It matches the real-data classifier's
accuracy when the generator's joint distribution of images and labels matches the data.

GOLD's setting: LeNet, Adam lr 1e-3, 40 epochs "using 10,000 newly generated samples for each epoch"
(`gan_fitting_capacity`, resample=True), or a fixed sample set (their rejection-sampling experiment uses a fixed
50,000; `fitting_capacity` on given samples, or resample=False).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.device import resolve_device
from core.errors import EmptySelection, LetheError, NonFiniteError, ShapeMismatch
from core.metrics.invalidity import binomial_stderr
from core.metrics.results import Estimate
from core.models.bundles import GANBundle
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn

Draw = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


def fitting_capacity(
    samples: torch.Tensor,
    labels: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    make_net: Callable[[], nn.Module] | None = None,
    epochs: int = 40,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    progress: ProgressFn = NO_PROGRESS,
    cancel: CancelToken | None = None,
) -> Estimate:
    """Train a fresh classifier on (samples, labels), images in [0, 1], and return its accuracy on
    (test_x, test_y) with the binomial standard error over the test set.

    `make_net()` builds the classifier (`forward(x) -> logits`); default: `LeNet5` sized from `test_x` with
    as many classes as the labels name.
    """
    _check_labelled(samples, labels, "samples", "labels")
    return _train_and_score(lambda epoch: (samples, labels), test_x, test_y, make_net, epochs, batch_size, lr,
                            seed, device, progress, cancel, int(max(labels.max(), test_y.max())) + 1)


def gan_fitting_capacity(
    gan: GANBundle,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    n_per_epoch: int = 10_000,
    resample: bool = True,
    make_net: Callable[[], nn.Module] | None = None,
    epochs: int = 40,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    progress: ProgressFn = NO_PROGRESS,
    cancel: CancelToken | None = None,
) -> Estimate:
    """Fitting capacity of a conditional GAN: `n_per_epoch` fresh labelled samples each epoch (GOLD's
    protocol; sample seeds seed*1000 + epoch), or one fixed set when `resample=False`."""
    if not gan.conditional:
        raise LetheError(
            f"Fitting capacity needs a conditional GAN; {gan.card.name!r} has no classes.",
            "Use a conditional model such as mnist-acgan, or IS/FID for unconditional ones.",
        )

    def draw(epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        return gan.sample(n_per_epoch, seed=seed * 1000 + (epoch if resample else 0))

    return _train_and_score(draw, test_x, test_y, make_net, epochs, batch_size, lr, seed, device, progress,
                            cancel, gan.num_classes, cache_fixed=not resample)


def _train_and_score(
    draw: Draw,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    make_net: Callable[[], nn.Module] | None,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: str,
    progress: ProgressFn,
    cancel: CancelToken | None,
    num_classes: int,
    cache_fixed: bool = False,
) -> Estimate:
    _check_labelled(test_x, test_y, "test_x", "test_y")
    if epochs < 1:
        raise LetheError(f"fitting_capacity: epochs must be >= 1, got {epochs}.", "GOLD trains for 40 epochs.")
    dev = resolve_device(device)
    torch.manual_seed(seed)
    net = (make_net or _default_net(test_x, num_classes))().to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    fixed = None
    for epoch in range(epochs):
        if fixed is None or not cache_fixed:
            x, y = draw(epoch)
            _check_labelled(x, y, "generated samples", "their labels")
            fixed = (x, y)
        x, y = fixed
        net.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for start in range(0, len(x), batch_size):
            if cancel is not None:
                cancel.raise_if_set()
            idx = order[start : start + batch_size]
            loss = F.cross_entropy(net(x[idx].to(dev)), y[idx].to(dev).long())
            if not torch.isfinite(loss):
                raise NonFiniteError("fitting_capacity: the classifier's training loss became non-finite.",
                                     "Check the generated samples are finite images in [0, 1]; lower lr.")
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        progress(ProgressEvent(epoch + 1, epochs, {"train_loss": total / len(x)}, stage="fitting capacity"))
    acc = _accuracy(net, test_x, test_y, dev)
    return Estimate(acc, binomial_stderr(acc, len(test_x)), len(test_x), "fitting_capacity")


@torch.no_grad()
def _accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, dev: torch.device, batch_size: int = 1000) -> float:
    net.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        pred = net(x[start : start + batch_size].to(dev)).argmax(1).cpu()
        correct += int((pred == y[start : start + batch_size].long()).sum())
    return correct / len(x)


def _default_net(test_x: torch.Tensor, num_classes: int) -> Callable[[], nn.Module]:
    from core.models.classifiers import LeNet5

    if test_x.dim() != 4 or test_x.shape[2] != test_x.shape[3]:
        raise ShapeMismatch(
            f"fitting_capacity: the default LeNet5 needs square images N x C x H x H, got {tuple(test_x.shape)}.",
            "Pass make_net= a factory for a classifier that fits your data.",
        )
    c, size = int(test_x.shape[1]), int(test_x.shape[2])
    return lambda: LeNet5(in_channels=c, num_classes=num_classes, image_size=size)


def _check_labelled(x: torch.Tensor, y: torch.Tensor, xname: str, yname: str) -> None:
    if len(x) == 0:
        raise EmptySelection(f"fitting_capacity: {xname} is empty.", "Pass at least one labelled sample.")
    if len(x) != len(y):
        raise ShapeMismatch(f"fitting_capacity: {len(x)} {xname} but {len(y)} {yname}.", "Pass one label per image.")
    if not torch.isfinite(x).all():
        raise NonFiniteError(f"fitting_capacity: {xname} contain NaN or infinite values.", "Check the generator.")
