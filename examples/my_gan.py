"""A user's own GAN, loaded into Lethe through the model spec `examples.my_gan:build`, with no change to Lethe.

Any `nn.Module` generator and discriminator work, as long as:
- the generator maps latents z of shape (N, latent_dim) (and class labels y, for a conditional GAN) to samples
  in `pixel_range` (here tanh, so (-1, 1)); the bundle converts to Lethe's [0, 1] images;
- the discriminator maps samples in `pixel_range` to a logit of shape (N, 1) or (N,), no sigmoid
  (a conditional discriminator with an auxiliary classifier returns `(logit, class_logits)`).

The factory returns a `GANBundle` whose card names the factory as its architecture, so a copy saved by Lethe
(`save_bundle`) is rebuilt by calling the factory with the card's `hparams` and filled from the safetensors file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from core.models import GANBundle, ModelCard


class MyGenerator(nn.Module):
    """A two-layer MLP generator: z -> 28x28 image in (-1, 1)."""

    def __init__(self, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, 28 * 28), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 1, 28, 28)


class MyDiscriminator(nn.Module):
    """A two-layer MLP discriminator: 28x28 image in (-1, 1) -> real/fake logit."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build(latent_dim: int = 64, hidden: int = 256, weights: str | None = None) -> GANBundle:
    """The Lethe bundle for this GAN; `weights` optionally names a PyTorch state-dict file
    ({"generator": ..., "discriminator": ...}) from your own training, read with `weights_only=True`."""
    generator, discriminator = MyGenerator(latent_dim, hidden), MyDiscriminator(hidden)
    if weights is not None:
        state = torch.load(Path(weights), map_location="cpu", weights_only=True)
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
    card = ModelCard(
        name="my-gan",
        family="gan",
        architecture="factory:examples.my_gan:build",
        hparams={"latent_dim": latent_dim, "hidden": hidden},  # what the factory needs to rebuild the modules
        data_shape=[1, 28, 28],
        data={"dataset": "mnist"},
        description="Example of a user's own MLP GAN (examples/my_gan.py).",
    )
    return GANBundle(card=card, generator=generator, discriminator=discriminator, latent_dim=latent_dim,
                     num_classes=0, pixel_range=(-1.0, 1.0))
