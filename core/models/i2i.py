"""An encoder-decoder image-to-image model for the degradations of `core.models.degradations`.

Li et al. (ICLR 2024, Sec. 3.1) write an I2I model as h = D_phi(E_theta(T(x))) and unlearn by moving only the
encoder: on the retain set E_theta(T(x_r)) is pulled to E_theta0(T(x_r)), on the forget set E_theta(T(x_f)) is
pulled to E_theta0(noise) (their Eq. 10). That argument needs the encoder output to be *everything* the decoder
sees. This model therefore has no skip connections: the encoder maps an image to a spatial code of shape
`latent_channels x H/4 x W/4`, the decoder maps that code alone back to an image. A method that compares
embeddings flattens the code (`I2IBundle.encode(x).flatten(1)`).

Encoder: 3x3 conv, two stride-2 4x4 convs (H -> H/4), two 3x3 context convs at the bottleneck (so a missing
centre or side sees the whole image), a 1x1 projection to the code. Decoder: the mirror image, ending in a
sigmoid so outputs are in [0, 1] (`ConvDecoder.logits` gives the values before it). Inputs are centred (x - 0.5) inside the encoder.
"""

from __future__ import annotations

import torch
from torch import nn

from core.errors import ShapeMismatch
from core.models.bundles import I2IBundle
from core.models.card import ModelCard
from core.models.degradations import KINDS
from core.models.registry import register


class ConvEncoder(nn.Module):
    """[0, 1] images C x H x W -> code `latent_channels` x H/4 x W/4 (H and W divisible by 4)."""

    def __init__(self, in_channels: int = 1, width: int = 32, latent_channels: int = 32) -> None:
        super().__init__()
        self.in_channels = in_channels
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 4 * w, 3, padding=2, dilation=2), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 4 * w, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, latent_channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[2] % 4 or x.shape[3] % 4:
            raise ShapeMismatch(
                f"The I2I encoder expects N x {self.in_channels} x H x W images with H, W divisible by 4, "
                f"got {tuple(x.shape)}.",
                "Pass degraded images of the model's own size (see its card's data_shape).",
            )
        return self.net(x - 0.5)


class ConvDecoder(nn.Module):
    """Code `latent_channels` x h x w -> [0, 1] images C x 4h x 4w."""

    def __init__(self, out_channels: int = 1, width: int = 32, latent_channels: int = 32) -> None:
        super().__init__()
        self.latent_channels = latent_channels
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(latent_channels, 4 * w, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 4 * w, 3, padding=2, dilation=2), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, out_channels, 3, padding=1),
        )

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid outputs; training uses binary cross-entropy on these, which (unlike MSE through a
        sigmoid) never stalls on saturated pixels such as MNIST's all-black background."""
        if h.dim() != 4 or h.shape[1] != self.latent_channels:
            raise ShapeMismatch(
                f"The I2I decoder expects codes N x {self.latent_channels} x h x w, got {tuple(h.shape)}.",
                "Decode what this model's encoder produced.",
            )
        return self.net(h)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(h))


@register("conv-i2i")
def build_conv_i2i(card: ModelCard) -> I2IBundle:
    """Encoder-decoder from hparams `in_channels`, `width`, `latent_channels` and `degradations`."""
    hp = card.hparams
    c, width, latent = hp.get("in_channels", 1), hp.get("width", 32), hp.get("latent_channels", 32)
    return I2IBundle(card=card, encoder=ConvEncoder(c, width, latent), decoder=ConvDecoder(c, width, latent),
                     degradations=tuple(hp.get("degradations", KINDS)))
