"""Domain classifiers: Lethe's judges for invalidity, Inception Score / FID features and attribute tests.

Two architectures, both taking images in [0, 1] and exposing `forward(x) -> logits` and `features(x)`:

- `LeNet5`: LeCun et al. (1998)'s layout (two 5x5 conv + 2x2 pool stages, then 120 -> 84 -> classes), with
  ReLU and max pooling. `features` is the 84-d penultimate layer: it is what `FID[mnist-lenet]` compares, so FID
  numbers are only comparable between models judged by the same classifier.
- `SmallCNN`: three conv stages (conv-BN-ReLU x2, pool) and a linear feature layer, for the 32x32 colour
  synthfaces. Used as a multi-label attribute classifier (one sigmoid logit per attribute) and as an identity
  embedding (features are the embedding; logits classify the training identities through a bias-free linear
  head on the L2-normalised embedding, i.e. cosine-softmax, so nearest-neighbour search on normalised
  features matches what training optimised).

Builders registered here rebuild a `ClassifierBundle` from a card's hyperparameters alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import ShapeMismatch
from core.models.bundles import ClassifierBundle
from core.models.card import ModelCard
from core.models.registry import register

KINDS = ("labels", "attributes", "embedding")


def _check_input(x: torch.Tensor, channels: int, size: int, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != channels or x.shape[2] != size or x.shape[3] != size:
        raise ShapeMismatch(
            f"{name} expects images of shape N x {channels} x {size} x {size}, got {tuple(x.shape)}.",
            "Pass a batch of images in [0, 1] with the classifier's channel count and size.",
        )


class LeNet5(nn.Module):
    """LeNet-5 for `in_channels` x `image_size` x `image_size` images in [0, 1] (default: MNIST digits).

    The first convolution pads by 2 on 28x28 inputs (as the original network saw 32x32), so both MNIST and
    32x32 images leave a 16 x 5 x 5 map before the fully connected layers.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> None:
        super().__init__()
        self.in_channels, self.num_classes, self.image_size = in_channels, num_classes, image_size
        pad = (32 - image_size) // 2 if image_size < 32 else 0
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        side = ((image_size + 2 * pad - 4) // 2 - 4) // 2
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(16 * side * side, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.head = nn.Linear(84, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 84-d penultimate activations (FID features)."""
        _check_input(x, self.in_channels, self.image_size, "LeNet5")
        return self.fc(self.conv(x))

    def head_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Logits from `features(x)` (forward = head_logits(features(x)))."""
        return self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_logits(self.features(x))


class SmallCNN(nn.Module):
    """Three conv stages and a `feature_dim` feature layer, for small colour images in [0, 1].

    `normalized_head=True` makes the head a bias-free linear layer on the L2-normalised features scaled by
    `scale` (cosine-softmax), used for identity embeddings.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_outputs: int = 6,
        image_size: int = 32,
        width: int = 32,
        feature_dim: int = 128,
        normalized_head: bool = False,
        scale: float = 16.0,
    ) -> None:
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size
        self.normalized_head, self.scale = normalized_head, scale

        def stage(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.MaxPool2d(2),
            )

        self.conv = nn.Sequential(stage(in_channels, width), stage(width, 2 * width), stage(2 * width, 4 * width))
        self.embed = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, feature_dim))
        self.head = nn.Linear(feature_dim, num_outputs, bias=not normalized_head)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The `feature_dim` feature layer (an identity embedding when the head is normalised)."""
        _check_input(x, self.in_channels, self.image_size, "SmallCNN")
        return self.embed(self.conv(x))

    def head_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Logits from `features(x)` (forward = head_logits(features(x)))."""
        if self.normalized_head:
            return self.scale * F.normalize(h, dim=1) @ F.normalize(self.head.weight, dim=1).T
        return self.head(F.relu(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_logits(self.features(x))


def _class_names(card: ModelCard, n: int) -> tuple[str, ...]:
    names = card.hparams.get("class_names")
    return tuple(names) if names else tuple(str(i) for i in range(n))


@register("lenet5")
def build_lenet5(card: ModelCard) -> ClassifierBundle:
    """LeNet-5 from hparams `in_channels`, `num_classes`, `image_size` (and optional `class_names`)."""
    hp = card.hparams
    net = LeNet5(hp.get("in_channels", 1), hp.get("num_classes", 10), hp.get("image_size", 28))
    return ClassifierBundle(card=card, net=net, class_names=_class_names(card, net.num_classes),
                            kind=hp.get("kind", "labels"))


@register("small-cnn")
def build_small_cnn(card: ModelCard) -> ClassifierBundle:
    """SmallCNN from hparams `in_channels`, `num_outputs`, `image_size`, `width`, `feature_dim`, `kind`;
    `kind="embedding"` uses the normalised (cosine-softmax) head."""
    hp = card.hparams
    kind = hp.get("kind", "labels")
    net = SmallCNN(hp.get("in_channels", 3), hp["num_outputs"], hp.get("image_size", 32), hp.get("width", 32),
                   hp.get("feature_dim", 128), normalized_head=kind == "embedding", scale=hp.get("scale", 16.0))
    return ClassifierBundle(card=card, net=net, class_names=_class_names(card, hp["num_outputs"]), kind=kind)
