"""A user's own classifier as Lethe's judge (`--judge`): `examples.classifier:build`.

A judge's network needs three methods: `features(x)` (the feature layer IS/FID are computed on and nearest-
neighbour forget sets compare in), `head_logits(h)` (logits from those features) and `forward(x) =
head_logits(features(x))`, for x in [0, 1], N x C x H x W. The bundle's `class_names` name the logits and its
`kind` says how to read them: "labels" (softmax over classes), "attributes" (one sigmoid per name) or
"embedding" (an identity embedding). `train` is the plain loop a user would have run before.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from core.models import ClassifierBundle, ModelCard


class SmallNet(nn.Module):
    """Two conv layers, global average pooling, a linear head."""

    def __init__(self, channels: int, outputs: int, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten())
        self.head = nn.Linear(2 * width, outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def head_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_logits(self.features(x))


def build(class_names: list[str] | None = None, channels: int = 1, image_size: int = 16, width: int = 16,
          kind: str = "labels", name: str = "my-judge", weights: str | None = None) -> ClassifierBundle:
    """A judge for `channels` x `image_size` x `image_size` images; the card's name is what metrics are named for
    (FID[my-judge]); `weights` optionally names a state-dict file, read with `weights_only=True`."""
    names = list(class_names or ["0", "1"])
    net = SmallNet(channels, len(names), width)
    if weights is not None:
        net.load_state_dict(torch.load(Path(weights), map_location="cpu", weights_only=True))
    card = ModelCard(name=name, family="classifier", architecture="factory:examples.classifier:build",
                     hparams={"class_names": names, "channels": channels, "image_size": image_size, "width": width,
                              "kind": kind, "name": name},
                     data_shape=[channels, image_size, image_size], description="A user's judge, examples/classifier.py.")
    return ClassifierBundle(card=card, net=net, class_names=tuple(names), kind=kind)


def train(judge: ClassifierBundle, images: torch.Tensor, labels: torch.Tensor, epochs: int = 10,
          batch_size: int = 32, lr: float = 3e-3, seed: int = 0) -> ClassifierBundle:
    """Cross-entropy training of a "labels" judge on images in [0, 1]; returns `judge` in eval mode."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(judge.net.parameters(), lr=lr)
    judge.net.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            loss = F.cross_entropy(judge.net(images[rows]), labels[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
    judge.eval()
    return judge
