"""Recipes and evaluators for the zoo classifiers: mnist-lenet, fashion-lenet, synthfaces-attributes and
synthfaces-identity.

Every recipe follows the zoo contract `train_xxx(seed, device, progress, cancel, smoke) -> ClassifierBundle`:
Adam on the dataset's train split with an augmentation from `core.zoo.augmentation` (random shifts of up to 2
pixels for mnist-lenet, which reads degraded digits well without more; for fashion-lenet and the synthfaces judges
also the blur, noise and colour changes generated images show, so they read samples as they read the data), one
progress event per epoch, the evaluator's metrics and the zoo floors
written on the card. Every evaluator reports its metrics twice: on the clean held-out images and, suffixed
`[degraded]`, on the same images degraded once with a fixed seed (`degraded_test_images`). `smoke=True` trains one
short epoch on a few hundred images so CI can exercise the recipe in seconds.
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
from core.zoo.augmentation import GENERATED_LOOK, SHIFT_ONLY, Degradations, degraded_test_images
from core.zoo.registry import ZOO

SMOKE_SIZE = 256


def _fit(
    net: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    augment: Degradations,
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
            xb = augment(x[idx], gen).to(device)
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
    cancel: CancelToken, smoke: bool, epochs: int, lr: float, augment: Degradations,
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
         augment=augment, seed=seed, device=dev, progress=progress, cancel=cancel)
    training = {"recipe": ZOO[name].recipe, "epochs": epochs, "optimiser": f"Adam(lr={lr}), cosine decay",
                "batch_size": batch_size, "augmentation": _describe(augment),
                "seconds": round(time.perf_counter() - start, 3), "smoke": smoke}
    return _finish(bundle, name, evaluate, dev, training, {"dataset": dataset, "split": "train", "size": len(train)})


def _describe(augment: Degradations) -> str | dict:
    """The card's record of a training augmentation."""
    return f"random shifts <= {augment.max_shift} px" if augment.p_clean >= 1.0 else augment.describe()


def _clean_and_degraded(measure: Callable[[torch.Tensor], dict[str, float]], x: torch.Tensor) -> dict[str, float]:
    """`measure` on held-out images x, and again on their degraded copy with every key suffixed `[degraded]`."""
    out = measure(x)
    out.update({f"{k}[degraded]": v for k, v in measure(degraded_test_images(x)).items()})
    return out


@torch.no_grad()
def _accuracy(bundle: ClassifierBundle, dataset: str, device: str | torch.device) -> dict[str, float]:
    """`accuracy` on the dataset's test split and `accuracy[degraded]` on its degraded copy."""
    test = load(dataset, "test")
    bundle.to(resolve_device(device))
    return _clean_and_degraded(lambda x: {"accuracy": (bundle.predict(x) == test.labels).float().mean().item()},
                               test.x)


def train_mnist_lenet(seed: int = 0, device: str = "cpu", progress: ProgressFn = NO_PROGRESS,
                      cancel: CancelToken = CancelToken(), smoke: bool = False) -> ClassifierBundle:
    """LeNet-5 on the 4,000 bundled MNIST training digits (40 epochs, shifts <= 2 px)."""
    return _train_label_classifier("mnist-lenet", "mnist", evaluate_mnist_lenet, seed=seed, device=device,
                                   progress=progress, cancel=cancel, smoke=smoke, epochs=40, lr=2e-3,
                                   augment=SHIFT_ONLY)


def evaluate_mnist_lenet(bundle: ClassifierBundle, device: str | torch.device = "cpu") -> dict[str, float]:
    """Accuracy on the 1,000 held-out digits of the bundled MNIST split, clean and degraded."""
    return _accuracy(bundle, "mnist", device)


def train_fashion_lenet(seed: int = 0, device: str = "cpu", progress: ProgressFn = NO_PROGRESS,
                        cancel: CancelToken = CancelToken(), smoke: bool = False) -> ClassifierBundle:
    """LeNet-5 on the 60,000 Fashion-MNIST training images (10 epochs, shifts <= 1 px, and blur, noise, contrast
    and brightness changes on 3 of 4 images: trained on shifts only, it kept 0.68 accuracy on degraded test images
    against 0.91 on clean ones)."""
    return _train_label_classifier("fashion-lenet", "fashion-mnist", evaluate_fashion_lenet, seed=seed,
                                   device=device, progress=progress, cancel=cancel, smoke=smoke, epochs=10, lr=2e-3,
                                   augment=Degradations(max_shift=1))


def evaluate_fashion_lenet(bundle: ClassifierBundle, device: str | torch.device = "cpu") -> dict[str, float]:
    """Accuracy on the 10,000 Fashion-MNIST test images, clean and degraded."""
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
    batch_size = 64
    start = time.perf_counter()
    _fit(bundle.net, train.x, targets, loss_fn, epochs=epochs, batch_size=batch_size, lr=lr, augment=GENERATED_LOOK,
         seed=seed, device=dev, progress=progress, cancel=cancel)
    training = {"recipe": ZOO[name].recipe, "epochs": epochs, "optimiser": f"Adam(lr={lr}), cosine decay",
                "batch_size": batch_size, "augmentation": _describe(GENERATED_LOOK),
                "loss": "binary cross-entropy per attribute" if kind == "attributes" else "cosine-softmax (scale 16)",
                "seconds": round(time.perf_counter() - start, 3), "smoke": smoke}
    return _finish(bundle, name, evaluate, dev, training, {"dataset": "synthfaces", "split": "train", "size": len(train)})


def train_synthfaces_attributes(seed: int = 0, device: str = "cpu", progress: ProgressFn = NO_PROGRESS,
                                cancel: CancelToken = CancelToken(), smoke: bool = False) -> ClassifierBundle:
    """Multi-label attribute CNN on the synthfaces training images."""
    return _train_synthfaces("synthfaces-attributes", "attributes", evaluate_synthfaces_attributes, seed=seed,
                             device=device, progress=progress, cancel=cancel, smoke=smoke, epochs=10)


@torch.no_grad()
def evaluate_synthfaces_attributes(bundle: ClassifierBundle, device: str | torch.device = "cpu") -> dict[str, float]:
    """Accuracy of each attribute (`accuracy[name]`) and their mean on the synthfaces test split, clean and
    degraded (`accuracy[name][degraded]`, `mean_attribute_accuracy[degraded]`)."""
    test = load("synthfaces", "test")
    bundle.to(resolve_device(device))

    def measure(x: torch.Tensor) -> dict[str, float]:
        correct = (bundle.predict(x) == test.attributes).float().mean(0)
        out = {f"accuracy[{n}]": v.item() for n, v in zip(test.attribute_names, correct)}
        out["mean_attribute_accuracy"] = correct.mean().item()
        return out

    return _clean_and_degraded(measure, test.x)


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
    first `ENROL_PER_IDENTITY` training images of each identity: how a method would match faces without the head);
    both again on the degraded test images (`...[degraded]`; the enrolment images stay clean renders)."""
    train, test = load("synthfaces", "train"), load("synthfaces", "test")
    bundle.to(resolve_device(device))
    rank = torch.zeros(len(train), dtype=torch.long)
    for i in torch.unique(train.identities):
        rows = torch.nonzero(train.identities == i).flatten()
        rank[rows] = torch.arange(len(rows))
    enrol = train.subset(rank < ENROL_PER_IDENTITY)
    emb = F.normalize(bundle.features(enrol.x), dim=1)
    n_ids = int(train.identities.max()) + 1
    centroids = torch.zeros(n_ids, emb.shape[1]).index_add_(0, enrol.identities, emb)
    centroids = F.normalize(centroids, dim=1)

    def measure(x: torch.Tensor) -> dict[str, float]:
        nearest = (F.normalize(bundle.features(x), dim=1) @ centroids.T).argmax(1)
        return {"identity_accuracy": (bundle.predict(x) == test.identities).float().mean().item(),
                "nearest_centroid_accuracy": (nearest == test.identities).float().mean().item()}

    return _clean_and_degraded(measure, test.x)
