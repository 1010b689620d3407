"""A user's own image-to-image model in Lethe: `examples.i2i:build`.

Lethe's I2I contract (`core.models.I2IBundle`): an `encoder` and a `decoder`, both `nn.Module`s on images in
[0, 1]; the model restores x from a degradation T(x) as `decoder(encoder(T(x)))`. The degradations stay outside
the model (`core.models.degradations`: centre crop, directional extension, outpainting, random patches), so a
method can compute `encoder(T(x))` itself; list the ones your model was trained for in `degradations`. Unlearning
methods compare encoder outputs, so everything the decoder sees must come through the encoder (no skip links).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from core.models import I2IBundle, ModelCard
from core.models.degradations import degrade


def _encoder(channels: int, width: int, code: int) -> nn.Module:
    """[0, 1] images C x H x W -> code `code` x H/4 x W/4."""
    return nn.Sequential(nn.Conv2d(channels, width, 4, 2, 1), nn.ReLU(), nn.Conv2d(width, width, 4, 2, 1), nn.ReLU(),
                         nn.Conv2d(width, code, 3, padding=1))


def _decoder(channels: int, width: int, code: int) -> nn.Module:
    """Code -> [0, 1] images, four times larger."""
    return nn.Sequential(nn.ConvTranspose2d(code, width, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(width, width, 4, 2, 1),
                         nn.ReLU(), nn.Conv2d(width, channels, 3, padding=1), nn.Sigmoid())


def build(channels: int = 1, image_size: int = 16, width: int = 16, code: int = 8,
          degradations: tuple[str, ...] = ("center", "patches"), weights: str | None = None) -> I2IBundle:
    """An encoder-decoder for `channels` x `image_size` x `image_size` images (size divisible by 4)."""
    encoder, decoder = _encoder(channels, width, code), _decoder(channels, width, code)
    if weights is not None:
        state = torch.load(Path(weights), map_location="cpu", weights_only=True)
        encoder.load_state_dict(state["encoder"])
        decoder.load_state_dict(state["decoder"])
    card = ModelCard(name="my-i2i", family="i2i", architecture="factory:examples.i2i:build",
                     hparams={"channels": channels, "image_size": image_size, "width": width, "code": code,
                              "degradations": list(degradations)},
                     data_shape=[channels, image_size, image_size],
                     description="A user's encoder-decoder, examples/i2i.py.")
    return I2IBundle(card=card, encoder=encoder, decoder=decoder, degradations=tuple(degradations))


def train(model: I2IBundle, images: torch.Tensor, epochs: int = 5, batch_size: int = 32, lr: float = 2e-3,
          seed: int = 0) -> I2IBundle:
    """Restore `images` (N x C x H x W in [0, 1]) from each of the model's degradations (MSE)."""
    gen = torch.Generator().manual_seed(seed)
    params = [*model.encoder.parameters(), *model.decoder.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    model.encoder.train()
    model.decoder.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(order), batch_size):
            x = images[order[start:start + batch_size]]
            for kind in model.degradations:
                degraded, _ = degrade(x, kind, generator=gen)
                loss = F.mse_loss(model.restore(degraded), x)
                opt.zero_grad()
                loss.backward()
                opt.step()
    return model.eval()
