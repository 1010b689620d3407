"""Recipes and evaluators for the zoo classifiers: mnist-lenet, fashion-lenet, synthfaces-attributes and
synthfaces-identity.

Every recipe follows the zoo contract `train_xxx(seed, device, progress, cancel, smoke) -> ClassifierBundle`:
Adam on the dataset's train split with light augmentation (random shifts of up to 2 pixels, zero padded), one
progress event per epoch, the evaluator's metrics and the zoo floors written on the card. `smoke=True` trains
one short epoch on a few hundred images so CI can exercise the recipe in seconds.
"""

from __future__ import annotations

import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.data import load
from core.data.base import ImageData
from core.device import resolve_device
from core.models.bundles import ClassifierBundle
from core.models.card import ModelCard
from core.models.classifiers import build_lenet5, build_small_cnn
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn
from core.zoo.registry import ZOO

SMOKE_SIZE = 256


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by an integer offset in [-max_shift, max_shift]^2, filling with zeros."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None]).to(x.device)  # n x h
    cols = (dx[:, None] + torch.arange(w)[None]).to(x.device)  # n x w
    idx = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def _fit(
    net: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    max_shift: int,
    seed: int,
    device: torch.device,
    progress: ProgressFn,
    cancel: CancelToken,
) -> None:
    """Minibatch Adam with a cosine learning-rate decay; reports the mean training loss each epoch."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = (len(x) + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch)
    net.to(device).train()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch_size):
            cancel.raise_if_set()
            idx = order[i : i + batch_size]
            xb = random_shift(x[idx], max_shift, gen).to(device)
            loss = loss_fn(net(xb), targets[idx].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        progress(ProgressEvent(epoch, epochs, {"loss": total / len(x)}, stage="train"))
    net.eval()


def _subset(data: ImageData, n: int, seed: int) -> ImageData:
    return data.subset(torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n])


def _finish(
    bundle: ClassifierBundle, name: str, evaluate: Callable, device: torch.device, training: dict, data: dict
) -> ClassifierBundle:
    bundle.card.training = training
    bundle.card.data = data
    bundle.card.metrics = evaluate(bundle, device)
    bundle.card.floors = {k: [op, v] for k, (op, v) in ZOO[name].floors.items()}
    return bundle.to("cpu").eval()


def _train_label_classifier(
    name: str, dataset: str, evaluate: Callable, *, seed: int, device: str, progress: ProgressFn,
    cancel: CancelToken, smoke: bool, epochs: int, lr: float, max_shift: int,
) -> ClassifierBundle:
    """Shared recipe of the LeNet-5 label classifiers."""
    torch.manual_seed(seed)
    dev = resolve_device(device)
    train = load(dataset, "train")
    if smoke:
        train, epochs = _subset(train, SMOKE_SIZE, seed), 1
    c, h, _ = train.shape
    card = ModelCard(name=name, family="classifier", architecture="lenet5", data_shape=list(train.shape), seed=seed,
                     hparams={"in_channels": c, "num_classes": len(train.class_names), "image_size": h,
                              "class_names": list(train.class_names), "kind": "labels"},
                     description=ZOO[name].description)
    bundle = build_lenet5(card)
    batch_size = 64
    start = time.perf_counter()
    _fit(bundle.net, train.x, train.labels, F.cross_entropy, epochs=epochs, batch_size=batch_size, lr=lr,
         max_shift=max_shift, seed=seed, device=dev, progress=progress, cancel=cancel)
    training = {"recipe": ZOO[name].recipe, "epochs": epochs, "optimiser": f"Adam(lr={lr}), cosine decay",
                "batch_size": batch_size, "augmentation": f"random shifts <= {max_shift} px",
                "seconds": round(time.perf_counter() - start, 3), "smoke": smoke}
    return _finish(bundle, name, evaluate, dev, training, {"dataset": dataset, "split": "train", "size": len(train)})


@torch.no_grad()
def _accuracy(bundle: ClassifierBundle, dataset: str, device: str | torch.device) -> dict[str, float]:
    test = load(dataset, "test")
    bundle.to(resolve_device(device))
    pred = bundle.predict(test.x)
    return {"accuracy": (pred == test.labels).float().mean().item()}


def train_mnist_lenet(seed: int = 0, device: str = "cpu", progress: ProgressFn = NO_PROGRESS,
                      cancel: CancelToken = CancelToken(), smoke: bool = False) -> ClassifierBundle:
    """LeNet-5 on the 4,000 bundled MNIST training digits (40 epochs, shifts <= 2 px)."""
    return _train_label_classifier("mnist-lenet", "mnist", evaluate_mnist_lenet, seed=seed, device=device,
                                   progress=progress, cancel=cancel, smoke=smoke, epochs=40, lr=2e-3, max_shift=2)


def evaluate_mnist_lenet(bundle: ClassifierBundle, device: str | torch.device = "cpu") -> dict[str, float]:
    """Accuracy on the 1,000 held-out digits of the bundled MNIST split."""
    return _accuracy(bundle, "mnist", device)


def train_fashion_lenet(seed: int = 0, device: str = "cpu", progress: ProgressFn = NO_PROGRESS,
                        cancel: CancelToken = CancelToken(), smoke: bool = False) -> ClassifierBundle:
    """LeNet-5 on the 60,000 Fashion-MNIST training images (10 epochs, shifts <= 1 px)."""
    return _train_label_classifier("fashion-lenet", "fashion-mnist", evaluate_fashion_lenet, seed=seed,
                                   device=device, progress=progress, cancel=cancel, smoke=smoke, epochs=10, lr=2e-3,
                                   max_shift=1)


def evaluate_fashion_lenet(bundle: ClassifierBundle, device: str | torch.device = "cpu") -> dict[str, float]:
    """Accuracy on the 10,000 Fashion-MNIST test images."""
    return _accuracy(bundle, "fashion-mnist", device)


def _train_synthfaces(
    name: str, kind: str, evaluate: Callable, *, seed: int, device: str, progress: ProgressFn, cancel: CancelToken,
    smoke: bool, epochs: int, lr: float = 2e-3,
) -> ClassifierBundle:
    """Shared recipe of the synthfaces classifiers: SmallCNN with a multi-label head (`attributes`, binary
    cross-entropy per attribute) or a cosine-softmax head over the training identities (`embedding`)."""
    torch.manual_seed(seed)
    dev = resolve_device(device)
    train = load("synthfaces", "train")
    if smoke:
        train, epochs = _subset(train, SMOKE_SIZE, seed), 1
    if kind == "attributes":
        names = list(train.attribute_names)
        targets, loss_fn = train.attributes.float(), F.binary_cross_entropy_with_logits
    else:
        n_ids = int(load("synthfaces", "train").identities.max()) + 1
        names = [f"identity {i}" for i in range(n_ids)]
        targets, loss_fn = train.identities, F.cross_entropy
    c, h, _ = train.shape
    card = ModelCard(name=name, family="classifier", architecture="small-cnn", data_shape=list(train.shape),
                     seed=seed, description=ZOO[name].description,
                     hparams={"in_channels": c, "num_outputs": len(names), "image_size": h, "width": 16,
                              "feature_dim": 128, "kind": kind, "class_names": names})
    bundle = build_small_cnn(card)
    batch_size, max_shift = 64, 2
    start = time.perf_counter()
    _fit(bundle.net, train.x, targets, loss_fn, epochs=epochs, batch_size=batch_size, lr=lr, max_shift=max_shift,
         seed=seed, device=dev, progress=progress, cancel=cancel)
    training = {"recipe": ZOO[name].recipe, "epochs": epochs, "optimiser": f"Adam(lr={lr}), cosine decay",
                "batch_size": batch_size, "augmentation": f"random shifts <= {max_shift} px",
                "loss": "binary cross-entropy per attribute" if kind == "attributes" else "cosine-softmax (scale 16)",
                "seconds": round(time.perf_counter() - start, 3), "smoke": smoke}
    return _finish(bundle, name, evaluate, dev, training, {"dataset": "synthfaces", "split": "train", "size": len(train)})


def train_synthfaces_attributes(seed: int = 0, device: str = "cpu", progress: ProgressFn = NO_PROGRESS,
                                cancel: CancelToken = CancelToken(), smoke: bool = False) -> ClassifierBundle:
    """Multi-label attribute CNN on the synthfaces training images."""
    return _train_synthfaces("synthfaces-attributes", "attributes", evaluate_synthfaces_attributes, seed=seed,
                             device=device, progress=progress, cancel=cancel, smoke=smoke, epochs=8)


@torch.no_grad()
def evaluate_synthfaces_attributes(bundle: ClassifierBundle, device: str | torch.device = "cpu") -> dict[str, float]:
    """Accuracy of each attribute (`accuracy[name]`) and their mean on the synthfaces test split."""
    test = load("synthfaces", "test")
    bundle.to(resolve_device(device))
    correct = (bundle.predict(test.x) == test.attributes).float().mean(0)
    out = {f"accuracy[{n}]": v.item() for n, v in zip(test.attribute_names, correct)}
    out["mean_attribute_accuracy"] = correct.mean().item()
    return out


def train_synthfaces_identity(seed: int = 0, device: str = "cpu", progress: ProgressFn = NO_PROGRESS,
                              cancel: CancelToken = CancelToken(), smoke: bool = False) -> ClassifierBundle:
    """Identity embedding: SmallCNN with a cosine-softmax head over the synthfaces training identities."""
    return _train_synthfaces("synthfaces-identity", "embedding", evaluate_synthfaces_identity, seed=seed,
                             device=device, progress=progress, cancel=cancel, smoke=smoke, epochs=12)


ENROL_PER_IDENTITY = 5


@torch.no_grad()
def evaluate_synthfaces_identity(bundle: ClassifierBundle, device: str | torch.device = "cpu") -> dict[str, float]:
    """On the held-out images of the training identities: `identity_accuracy` (argmax of the identity logits)
    and `nearest_centroid_accuracy` (cosine nearest enrolment centroid, the mean normalised embedding of the
    first `ENROL_PER_IDENTITY` training images of each identity: how a method would match faces without the head)."""
    train, test = load("synthfaces", "train"), load("synthfaces", "test")
    bundle.to(resolve_device(device))
    accuracy = (bundle.predict(test.x) == test.identities).float().mean().item()
    rank = torch.zeros(len(train), dtype=torch.long)
    for i in torch.unique(train.identities):
        rows = torch.nonzero(train.identities == i).flatten()
        rank[rows] = torch.arange(len(rows))
    enrol = train.subset(rank < ENROL_PER_IDENTITY)
    emb = F.normalize(bundle.features(enrol.x), dim=1)
    n_ids = int(train.identities.max()) + 1
    centroids = torch.zeros(n_ids, emb.shape[1]).index_add_(0, enrol.identities, emb)
    nearest = (F.normalize(bundle.features(test.x), dim=1) @ F.normalize(centroids, dim=1).T).argmax(1)
    return {"identity_accuracy": accuracy, "nearest_centroid_accuracy": (nearest == test.identities).float().mean().item()}
