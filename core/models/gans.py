"""GAN architectures: the papers' generators and discriminators, registered by name for model cards.

Every discriminator is `features` followed by a linear head named `logit` that returns raw logits (no sigmoid),
so methods choose their own loss (label-smoothed BCE for redaction, the influence paper's non-saturating loss,
GOLD's `logit + log softmax`). A conditional discriminator adds a `classifier` head and returns
`(logit, class_logits)`. Image generators end in tanh (pixel range (-1, 1)); toy generators are linear
in their last layer (pixel range None) because the 2-D data are not bounded.

Registered architectures (card `hparams` in brackets, defaults in the builders):
- `dcgan28`   DCGAN for 28x28 images (redaction paper, App. D) [latent_dim, width, channels, d_norm,
              fc_width]
- `dcgan32`   DCGAN for 32x32 images (redaction paper, App. D, at the resolution of synthfaces) [latent_dim, width,
              channels, d_norm, fc_width]
- `fcgan`     one-hidden-layer fully connected GAN (influence paper, Table 3) [latent_dim, g_hidden, d_hidden, dim]
- `acgan28`   conditional GAN with an auxiliary classifier head and spectral-norm D, MNIST nets of the GOLD
              paper [latent_dim, num_classes, fc_width, width, channels]
- `fc-acgan`  fully connected ACGAN for the 2-D clusters (GOLD paper's synthetic set) [latent_dim, num_classes,
              hidden, dim]
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from core.models.bundles import GANBundle
from core.models.card import ModelCard
from core.models.registry import register


def _init_dcgan(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al. 2015): conv weights N(0, 0.02), batch-norm scale N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _maybe_sn(layer: nn.Module, use: bool) -> nn.Module:
    return spectral_norm(layer) if use else layer


class DCGANGenerator28(nn.Module):
    """z (N, latent_dim) -> image (N, channels, 28, 28) in [-1, 1].

    Linear to 4w x 7 x 7 (through a hidden FC layer of `fc_width` units when it is > 0, as in the GOLD paper's
    MNIST generator), then two stride-2 transposed convolutions (7 -> 14 -> 28) with batch norm and ReLU, tanh
    output: the DCGAN recipe at MNIST resolution."""

    def __init__(self, latent_dim: int = 128, width: int = 64, channels: int = 1, fc_width: int = 0) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        hidden: list[nn.Module] = []
        if fc_width:
            hidden = [nn.Linear(latent_dim, fc_width, bias=False), nn.BatchNorm1d(fc_width), nn.ReLU(True)]
        self.project = nn.Sequential(
            *hidden,
            nn.Linear(fc_width or latent_dim, 4 * width * 7 * 7, bias=False),
            nn.BatchNorm1d(4 * width * 7 * 7),
            nn.ReLU(True),
        )
        self.width = width
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(True),
            nn.ConvTranspose2d(2 * width, channels, 4, 2, 1),
            nn.Tanh(),
        )
        _init_dcgan(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(-1, 4 * self.width, 7, 7)
        return self.deconv(h)


def _build_discriminator(d: nn.Module, channels: int, width: int, norm: str, fc_width: int, convs: int,
                         side: int) -> None:
    """Give `d` DCGAN's discriminator: `convs` stride-2 convolutions (widths w, 2w, 4w, ...) with LeakyReLU(0.2),
    batch norm after all but the first (or spectral norm on every layer), an optional FC layer, a linear logit
    (`d.features`, `d.logit`). Layers are appended in one fixed order, so state-dict keys do not change."""
    if norm not in ("batch", "spectral"):
        raise ValueError(f"norm must be 'batch' or 'spectral', got {norm!r}")
    sn = norm == "spectral"
    layers: list[nn.Module] = [_maybe_sn(nn.Conv2d(channels, width, 4, 2, 1), sn), nn.LeakyReLU(0.2, True)]
    for k in range(1, convs):
        c_in, c_out = width * 2 ** (k - 1), width * 2**k
        layers += [_maybe_sn(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=sn), sn),
                   nn.Identity() if sn else nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
    d.features = nn.Sequential(*layers, nn.Flatten())
    flat = width * 2 ** (convs - 1) * side * side
    if fc_width:
        d.features.extend([_maybe_sn(nn.Linear(flat, fc_width), sn), nn.LeakyReLU(0.2, True)])
    d.logit = _maybe_sn(nn.Linear(fc_width or flat, 1), sn)
    if not sn:
        _init_dcgan(d)


class DCGANDiscriminator28(nn.Module):
    """image (N, channels, 28, 28) in [-1, 1] -> real/fake logit (N, 1).

    Two stride-2 convolutions (28 -> 14 -> 7) with LeakyReLU(0.2), then a linear logit; no sigmoid, the loss
    applies it. `norm="batch"` is DCGAN's batch norm on the second convolution; `norm="spectral"` replaces it by
    spectral normalisation of every layer (Miyato et al. 2018). `fc_width > 0` adds a hidden FC layer before
    the logit, as in the GOLD paper's MNIST discriminator."""

    def __init__(self, width: int = 64, channels: int = 1, norm: str = "batch", fc_width: int = 0) -> None:
        super().__init__()
        _build_discriminator(self, channels, width, norm, fc_width, convs=2, side=7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x))


class DCGANGenerator32(nn.Module):
    """z (N, latent_dim) -> image (N, channels, 32, 32) in [-1, 1].

    Linear to 4w x 4 x 4 (through a hidden FC layer of `fc_width` units when it is > 0), then three stride-2
    transposed convolutions (4 -> 8 -> 16 -> 32), batch norm and ReLU after all but the last, tanh output:
    the DCGAN recipe (Radford et al. 2015) at 32x32."""

    def __init__(self, latent_dim: int = 128, width: int = 64, channels: int = 3, fc_width: int = 0) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.width = width
        hidden: list[nn.Module] = []
        if fc_width:
            hidden = [nn.Linear(latent_dim, fc_width, bias=False), nn.BatchNorm1d(fc_width), nn.ReLU(True)]
        self.project = nn.Sequential(
            *hidden,
            nn.Linear(fc_width or latent_dim, 4 * width * 4 * 4, bias=False),
            nn.BatchNorm1d(4 * width * 4 * 4),
            nn.ReLU(True),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(True),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            nn.ConvTranspose2d(width, channels, 4, 2, 1),
            nn.Tanh(),
        )
        _init_dcgan(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(-1, 4 * self.width, 4, 4)
        return self.deconv(h)


class DCGANDiscriminator32(nn.Module):
    """image (N, channels, 32, 32) in [-1, 1] -> real/fake logit (N, 1).

    Three stride-2 convolutions (32 -> 16 -> 8 -> 4; widths w, 2w, 4w) with LeakyReLU(0.2), then a linear
    logit; no sigmoid. `norm="batch"` is DCGAN's batch norm after the second and third convolutions,
    `norm="spectral"` spectral normalisation of every layer instead. `fc_width > 0` adds a hidden FC layer
    before the logit."""

    def __init__(self, width: int = 64, channels: int = 3, norm: str = "batch", fc_width: int = 0) -> None:
        super().__init__()
        _build_discriminator(self, channels, width, norm, fc_width, convs=3, side=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x))


class ACGenerator28(nn.Module):
    """(z, y) -> image in [-1, 1]: the GOLD paper's MNIST generator.

    [z, one-hot y] -> FC 1024 -> FC 128 x 7 x 7 (both BN + ReLU) -> deconv 64 (BN, ReLU) -> deconv channels,
    tanh. (The authors' 32x32 version starts from 8 x 8; Lethe's MNIST is 28x28, hence 7 x 7.)"""

    def __init__(self, latent_dim: int = 100, num_classes: int = 10, fc_width: int = 1024, width: int = 64,
                 channels: int = 1) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.width = width
        self.fc = nn.Sequential(
            nn.Linear(latent_dim + num_classes, fc_width, bias=False),
            nn.BatchNorm1d(fc_width),
            nn.ReLU(True),
            nn.Linear(fc_width, 2 * width * 7 * 7, bias=False),
            nn.BatchNorm1d(2 * width * 7 * 7),
            nn.ReLU(True),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            nn.ConvTranspose2d(width, channels, 4, 2, 1),
            nn.Tanh(),
        )
        _init_dcgan(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(y.long(), self.num_classes).to(z.dtype)
        h = self.fc(torch.cat([z, onehot], 1)).view(-1, 2 * self.width, 7, 7)
        return self.deconv(h)


class ACDiscriminator28(nn.Module):
    """image in [-1, 1] -> (real/fake logit (N, 1), class logits (N, num_classes)).

    Two spectral-norm convolutions (width, 2 width; stride 2, LeakyReLU 0.2), a spectral-norm FC 1024, then two
    heads: the adversarial logit and the auxiliary classifier (GOLD paper's MNIST discriminator)."""

    def __init__(self, num_classes: int = 10, fc_width: int = 1024, width: int = 64, channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            spectral_norm(nn.Conv2d(channels, width, 4, 2, 1)),
            nn.LeakyReLU(0.2, True),
            spectral_norm(nn.Conv2d(width, 2 * width, 4, 2, 1)),
            nn.LeakyReLU(0.2, True),
            nn.Flatten(),
            spectral_norm(nn.Linear(2 * width * 7 * 7, fc_width)),
            nn.LeakyReLU(0.2, True),
        )
        self.logit = spectral_norm(nn.Linear(fc_width, 1))
        self.classifier = spectral_norm(nn.Linear(fc_width, num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.logit(h), self.classifier(h)


class FCGenerator(nn.Module):
    """z -> x in R^dim with one hidden ReLU layer (influence paper, Table 3); linear output for unbounded data."""

    def __init__(self, latent_dim: int = 10, hidden: int = 32, dim: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class FCDiscriminator(nn.Module):
    """x in R^dim -> logit (N, 1) with one hidden ReLU layer (influence paper, Table 3, without the sigmoid)."""

    def __init__(self, hidden: int = 64, dim: int = 2) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.logit = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x))


class FCACGenerator(nn.Module):
    """(z, y) -> x in R^dim: [z, one-hot y] through two hidden ReLU layers, linear output."""

    def __init__(self, latent_dim: int = 2, num_classes: int = 2, hidden: int = 128, dim: int = 2) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.net = nn.Sequential(
            nn.Linear(latent_dim + num_classes, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, dim),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(y.long(), self.num_classes).to(z.dtype)
        return self.net(torch.cat([z, onehot], 1))


class FCACDiscriminator(nn.Module):
    """x -> (logit (N, 1), class logits (N, num_classes)): two spectral-norm hidden layers shared by both heads."""

    def __init__(self, num_classes: int = 2, hidden: int = 128, dim: int = 2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            spectral_norm(nn.Linear(dim, hidden)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Linear(hidden, hidden)), nn.LeakyReLU(0.2),
        )
        self.logit = spectral_norm(nn.Linear(hidden, 1))
        self.classifier = spectral_norm(nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.logit(h), self.classifier(h)


def _hp(card: ModelCard, defaults: dict) -> dict:
    """The card's hyperparameters over `defaults`, written back so a saved card is complete."""
    hp = {**defaults, **{k: v for k, v in card.hparams.items() if k in defaults}}
    card.hparams.update(hp)
    return hp


def _dcgan_bundle(card: ModelCard, size: int, channels: int, generator: type, discriminator: type) -> GANBundle:
    """A DCGAN bundle of `size` x `size` images from the card's hyperparameters (defaults filled in)."""
    hp = _hp(card, {"latent_dim": 128, "width": 64, "channels": channels, "d_norm": "batch", "fc_width": 0})
    card.data_shape = [hp["channels"], size, size]
    return GANBundle(
        card=card,
        generator=generator(hp["latent_dim"], hp["width"], hp["channels"], hp["fc_width"]),
        discriminator=discriminator(hp["width"], hp["channels"], hp["d_norm"], hp["fc_width"]),
        latent_dim=hp["latent_dim"],
        pixel_range=(-1.0, 1.0),
    )


@register("dcgan28")
def build_dcgan28(card: ModelCard) -> GANBundle:
    return _dcgan_bundle(card, 28, 1, DCGANGenerator28, DCGANDiscriminator28)


@register("dcgan32")
def build_dcgan32(card: ModelCard) -> GANBundle:
    return _dcgan_bundle(card, 32, 3, DCGANGenerator32, DCGANDiscriminator32)


@register("fcgan")
def build_fcgan(card: ModelCard) -> GANBundle:
    hp = _hp(card, {"latent_dim": 10, "g_hidden": 32, "d_hidden": 64, "dim": 2})
    card.data_shape = [hp["dim"]]
    return GANBundle(
        card=card,
        generator=FCGenerator(hp["latent_dim"], hp["g_hidden"], hp["dim"]),
        discriminator=FCDiscriminator(hp["d_hidden"], hp["dim"]),
        latent_dim=hp["latent_dim"],
        pixel_range=None,
    )


@register("acgan28")
def build_acgan28(card: ModelCard) -> GANBundle:
    hp = _hp(card, {"latent_dim": 100, "num_classes": 10, "fc_width": 1024, "width": 64, "channels": 1})
    card.data_shape = [hp["channels"], 28, 28]
    return GANBundle(
        card=card,
        generator=ACGenerator28(hp["latent_dim"], hp["num_classes"], hp["fc_width"], hp["width"], hp["channels"]),
        discriminator=ACDiscriminator28(hp["num_classes"], hp["fc_width"], hp["width"], hp["channels"]),
        latent_dim=hp["latent_dim"],
        num_classes=hp["num_classes"],
        pixel_range=(-1.0, 1.0),
    )


@register("fc-acgan")
def build_fc_acgan(card: ModelCard) -> GANBundle:
    hp = _hp(card, {"latent_dim": 2, "num_classes": 2, "hidden": 128, "dim": 2})
    card.data_shape = [hp["dim"]]
    return GANBundle(
        card=card,
        generator=FCACGenerator(hp["latent_dim"], hp["num_classes"], hp["hidden"], hp["dim"]),
        discriminator=FCACDiscriminator(hp["num_classes"], hp["hidden"], hp["dim"]),
        latent_dim=hp["latent_dim"],
        num_classes=hp["num_classes"],
        pixel_range=None,
    )
