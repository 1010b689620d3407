"""The usual DCGAN (Radford et al. 2016), brought into Lethe as a user would: `examples.dcgan:build`.

Its generator takes z as (N, nz, 1, 1) and grows it with transposed convolutions; its discriminator shrinks an
image to one logit of shape (N, 1, 1, 1). Lethe draws latents as (N, nz); the bundle's `latent_shape=(nz, 1, 1)`
tells it to reshape them before calling G (see examples/README.md, "Latent shape"). `train` is the plain
non-saturating GAN loop a user would have run before coming to Lethe; the tests use it on a folder of images.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from core.models import GANBundle, ModelCard


def _blocks(image_size: int) -> int:
    """Doublings from the 4x4 seed to `image_size` (16 -> 2, 32 -> 3, 64 -> 4)."""
    doublings = math.log2(image_size / 4)
    if image_size < 8 or doublings != int(doublings):
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
    return int(doublings)


class Generator(nn.Module):
    """z (N, nz, 1, 1) -> ConvT 4x4 seed -> doubling ConvT blocks (BN, ReLU) -> image (N, C, S, S) in (-1, 1)."""

    def __init__(self, nz: int, ngf: int, channels: int, image_size: int) -> None:
        super().__init__()
        n = _blocks(image_size)
        width = ngf * 2 ** (n - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                       nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class Discriminator(nn.Module):
    """image (N, C, S, S) in (-1, 1) -> strided convs (LeakyReLU) -> logit (N, 1, 1, 1), no sigmoid."""

    def __init__(self, ndf: int, channels: int, image_size: int) -> None:
        super().__init__()
        n = _blocks(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        width = ndf
        for _ in range(n - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def build(nz: int = 32, ngf: int = 32, ndf: int = 32, channels: int = 1, image_size: int = 16,
          data: str | None = None, weights: str | None = None) -> GANBundle:
    """A DCGAN bundle. `data` is what the card records as its training data (a folder or .npz path, or a Lethe
    dataset name), so `--data` can be left out; `weights` names a state-dict file {"generator", "discriminator"}
    from your own training, read with `weights_only=True`."""
    generator, discriminator = Generator(nz, ngf, channels, image_size), Discriminator(ndf, channels, image_size)
    if weights is not None:
        state = torch.load(Path(weights), map_location="cpu", weights_only=True)
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
    hparams = {"nz": nz, "ngf": ngf, "ndf": ndf, "channels": channels, "image_size": image_size, "data": data}
    card = ModelCard(name="my-dcgan", family="gan", architecture="factory:examples.dcgan:build", hparams=hparams,
                     data_shape=[channels, image_size, image_size], data={"dataset": data} if data else {},
                     description="The usual DCGAN (z as N x nz x 1 x 1), examples/dcgan.py.")
    return GANBundle(card=card, generator=generator, discriminator=discriminator, latent_dim=nz, num_classes=0,
                     pixel_range=(-1.0, 1.0), latent_shape=(nz, 1, 1))


def train(gan: GANBundle, images: torch.Tensor, epochs: int = 30, batch_size: int = 32, lr: float = 2e-3,
          seed: int = 0) -> GANBundle:
    """Plain DCGAN training on `images` (N x C x H x W in [0, 1]): Adam, non-saturating loss. Returns `gan`."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    real_all = images * 2 - 1
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    gan.generator.train()
    gan.discriminator.train()
    for _ in range(epochs):
        order = torch.randperm(len(real_all), generator=gen)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            real = real_all[order[start:start + batch_size]]
            z = torch.randn(len(real), gan.latent_dim, 1, 1, generator=gen)
            fake = gan.generator(z)
            d_real, d_fake = gan.discriminator(real).flatten(), gan.discriminator(fake.detach()).flatten()
            loss_d = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                      + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            d_fake = gan.discriminator(fake).flatten()
            loss_g = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
    return gan.eval()
