"""The four model families every method codes against (design guide, "Model families").

A bundle groups the `nn.Module`s of one model with what a method needs to use them: shapes, pixel range,
latent sampler, degradations. Images cross bundle boundaries in [0, 1], N x C x H x W; a bundle converts to and
from its own pixel range internally, so a method never has to know whether a generator ends in tanh.
Non-image data (the papers' 2-D toys) uses shape (D,) and pixel range None (values pass through unchanged).

Every bundle has a `card` (`ModelCard`) and `copy()`: methods edit a copy, never the bundle they were given.
"""

from __future__ import annotations

import copy as _copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from core.models.card import ModelCard


def to_unit(x: torch.Tensor, pixel_range: tuple[float, float] | None) -> torch.Tensor:
    """Map values from `pixel_range` to [0, 1]; identity when the range is None (non-image data)."""
    if pixel_range is None:
        return x
    lo, hi = pixel_range
    return (x - lo) / (hi - lo)


def from_unit(x: torch.Tensor, pixel_range: tuple[float, float] | None) -> torch.Tensor:
    """Map values from [0, 1] to `pixel_range`; identity when the range is None."""
    if pixel_range is None:
        return x
    lo, hi = pixel_range
    return x * (hi - lo) + lo


@dataclass
class Bundle(ABC):
    """Common behaviour: named modules, device moves, eval mode, deep copies."""

    card: ModelCard
    family: ClassVar[str] = ""

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """The bundle's trainable modules by name; these names prefix the keys in the weights file."""

    def copy(self) -> "Bundle":
        """A deep copy whose weights can be edited without touching this bundle."""
        return _copy.deepcopy(self)

    def to(self, device: torch.device | str) -> "Bundle":
        for module in self.modules().values():
            module.to(device)
        return self

    def eval(self) -> "Bundle":
        for module in self.modules().values():
            module.eval()
        return self

    @property
    def device(self) -> torch.device:
        for module in self.modules().values():
            for p in module.parameters():
                return p.device
        return torch.device("cpu")

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.card.data_shape)


@dataclass
class GANBundle(Bundle):
    """Generator `G(z[, y]) -> x` in `pixel_range`, discriminator `D(x) -> logit` (or `(logit, class_logits)`
    for a conditional GAN with an auxiliary classifier), a standard-normal latent of `latent_dim`.

    Lethe draws and stores latents as (N, latent_dim); `latent_shape` is the shape G takes per sample when it
    differs, e.g. (nz, 1, 1) for the usual DCGAN, and `generate` reshapes z to (N, *latent_shape) before G."""

    generator: nn.Module = None  # type: ignore[assignment]
    discriminator: nn.Module | None = None
    latent_dim: int = 128
    num_classes: int = 0
    pixel_range: tuple[float, float] | None = (-1.0, 1.0)
    latent_shape: tuple[int, ...] | None = None
    family: ClassVar[str] = "gan"

    def modules(self) -> dict[str, nn.Module]:
        mods = {"generator": self.generator}
        if self.discriminator is not None:
            mods["discriminator"] = self.discriminator
        return mods

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ N(0, I) of shape (n, latent_dim) on the bundle's device (drawn on CPU for reproducibility)."""
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Uniform class labels for a conditional GAN, None otherwise."""
        if not self.conditional:
            return None
        return torch.randint(0, self.num_classes, (n,), generator=generator).to(self.device)

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Samples in [0, 1] (or raw values for non-image data) from latents `z` and, if conditional, labels `y`."""
        if self.latent_shape is not None:
            z = z.reshape(len(z), *self.latent_shape)
        out = self.generator(z, y) if self.conditional else self.generator(z)
        return to_unit(out, self.pixel_range)

    def discriminate(self, x_unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(real/fake logit of shape (N,), class logits or None) for inputs in [0, 1]."""
        if self.discriminator is None:
            from core.errors import LetheError

            raise LetheError(
                f"Model {self.card.name!r} has no discriminator.",
                "Methods that fine-tune a GAN need both G and D; load a model saved with its discriminator.",
            )
        out = self.discriminator(from_unit(x_unit, self.pixel_range))
        if isinstance(out, tuple):
            return out[0].reshape(-1), out[1]
        return out.reshape(-1), None

    @torch.no_grad()
    def sample(
        self, n: int, seed: int = 0, labels: torch.Tensor | None = None, batch_size: int = 500
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """n samples in [0, 1] on the CPU and their labels (conditional GANs), reproducible from `seed`."""
        gen = torch.Generator().manual_seed(seed)
        z = self.sample_latent(n, gen)
        y = labels.to(self.device) if labels is not None else self.sample_labels(n, gen)
        self.eval()
        chunks = [
            self.generate(z[i : i + batch_size], None if y is None else y[i : i + batch_size]).cpu()
            for i in range(0, n, batch_size)
        ]
        return torch.cat(chunks), None if y is None else y.cpu()


@dataclass
class FlowBundle(Bundle):
    """A normalizing flow with an exact `log_prob`.

    Dequantization convention (one for every flow, so bits/dim compare): data are `n_bits` integer levels
    k in {0..2^n_bits-1} per dimension, mapped to the continuous value x = (k + u) / 2^n_bits with u ~ U[0, 1).
    `log_prob(x)` is the log-density of x on [0, 1]^D in nats per sample; bits per dimension on the discrete data
    are `core.metrics.bits_per_dim(-log_prob(x), D, n_bits)` = (NLL + D ln 2^n_bits) / (D ln 2).
    Non-image flows (the 2-D toy) use `n_bits = 0`: plain continuous densities, no offset.

    The wrapped module implements `forward(x) -> (z, logdet)`, `inverse(z) -> x` and `log_prob(x)`, all on the
    flow's own input scale; this bundle handles [0, 1] <-> that scale.
    """

    flow: nn.Module = None  # type: ignore[assignment]
    n_bits: int = 8
    family: ClassVar[str] = "flow"

    def modules(self) -> dict[str, nn.Module]:
        return {"flow": self.flow}

    @property
    def dim(self) -> int:
        d = 1
        for s in self.data_shape:
            d *= s
        return d

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) in nats per sample, shape (N,), for x in [0, 1] (images) or raw values (toy data)."""
        return self.flow.log_prob(x)

    def dequantize(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Uniform dequantization of [0, 1] images stored on the `n_bits` grid (no-op for continuous data)."""
        if self.n_bits == 0:
            return x
        levels = 2**self.n_bits
        k = torch.floor(x.clamp(0, 1) * (levels - 1) + 0.5)
        u = torch.rand(x.shape, generator=generator).to(x.device)
        return (k + u) / levels

    def dequantize_antithetic(self, x: torch.Tensor, pairs: int,
                              generator: torch.Generator | None = None) -> torch.Tensor:
        """`pairs` antithetic pairs of dequantizations of every image: (k + u) / L and (k + 1 - u) / L.

        Returns 2 * pairs * len(x) rows, ordered draw by draw (reshape to (2 * pairs, len(x), ...) and average
        over the first axis). An image's NLL is the expectation over u; the pair's two errors are strongly
        negatively correlated (whatever part of the NLL varies linearly with u cancels), so the mean of one pair
        estimates it about as well as ~6 independent draws (measured on a tamed synthfaces-flow: 16 draws as 8 pairs
        have a standard deviation of 0.0036 bits/dim, 16 independent draws 0.011). Continuous data is repeated."""
        if self.n_bits == 0:
            return x.repeat(2 * pairs, *[1] * (x.dim() - 1))
        levels = 2**self.n_bits
        k = torch.floor(x.clamp(0, 1) * (levels - 1) + 0.5)
        out = []
        for _ in range(pairs):
            u = torch.rand(x.shape, generator=generator).to(x.device)
            out += [(k + u) / levels, (k + 1 - u) / levels]
        return torch.cat(out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x -> (z, log|det dz/dx|)."""
        return self.flow(x)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """z -> x."""
        return self.flow.inverse(z)

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, temperature: float = 1.0, batch_size: int = 500) -> torch.Tensor:
        """n samples (clamped to [0, 1] for images) from z ~ N(0, temperature^2 I), on the CPU."""
        gen = torch.Generator().manual_seed(seed)
        self.eval()
        z = torch.randn((n, *self.flow.latent_shape), generator=gen) * temperature
        chunks = [self.inverse(z[i : i + batch_size].to(self.device)).cpu() for i in range(0, n, batch_size)]
        x = torch.cat(chunks)
        return x.clamp(0, 1) if self.n_bits else x


@dataclass
class I2IBundle(Bundle):
    """An encoder-decoder image-to-image model: `decoder(encoder(T(x)))` restores x from a degradation T.

    Degradations are data (`core.models.degradations`), so a method can run `E(T(x))` and `D(E(T(x)))` itself.
    Encoder and decoder take and return images in [0, 1]; the encoder's output is the embedding the
    unlearning loss compares."""

    encoder: nn.Module = None  # type: ignore[assignment]
    decoder: nn.Module = None  # type: ignore[assignment]
    degradations: tuple[str, ...] = ("center", "extend", "outpaint", "patches")
    family: ClassVar[str] = "i2i"

    def modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder}

    def encode(self, x_degraded: torch.Tensor) -> torch.Tensor:
        return self.encoder(x_degraded)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(h)

    def restore(self, x_degraded: torch.Tensor) -> torch.Tensor:
        """D(E(T(x))) given T(x): the decoder repaints the whole image, the pixels it was shown included."""
        return self.decoder(self.encoder(x_degraded))

    def inpaint(self, x_degraded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The completion a user gets: D(E(T(x))) on the removed pixels (`mask` True, N x 1 x H x W), T(x) kept
        everywhere else. The paper's models work this way (MAGE decodes the visible tokens as given, Palette
        resets the known pixels at every step), so a change to the encoder can only show in the hole."""
        return torch.where(mask, self.restore(x_degraded), x_degraded)


@dataclass
class ClassifierBundle(Bundle):
    """A classifier with `net(x) -> logits` and `net.features(x) -> feature vectors` for x in [0, 1].

    `kind` is "labels" (softmax over `class_names`), "attributes" (independent sigmoids, one per name) or
    "embedding" (features are an identity embedding; logits classify the training identities)."""

    net: nn.Module = None  # type: ignore[assignment]
    class_names: tuple[str, ...] = ()
    kind: str = "labels"
    family: ClassVar[str] = "classifier"

    def modules(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    @torch.no_grad()
    def logits(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Logits for x in [0, 1], computed in batches, returned on the CPU."""
        self.eval()
        return torch.cat([self.net(x[i : i + batch_size].to(self.device)).cpu() for i in range(0, len(x), batch_size)])

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Feature-layer activations (used as FID features and as embeddings), on the CPU."""
        self.eval()
        return torch.cat(
            [self.net.features(x[i : i + batch_size].to(self.device)).cpu() for i in range(0, len(x), batch_size)]
        )

    @torch.no_grad()
    def logits_and_features(self, x: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, features) of x from one pass through the network (IS and FID of the same samples), on the CPU."""
        self.eval()
        logits, feats = [], []
        for i in range(0, len(x), batch_size):
            h = self.net.features(x[i : i + batch_size].to(self.device))
            logits.append(self.net.head_logits(h).cpu())
            feats.append(h.cpu())
        return torch.cat(logits), torch.cat(feats)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class indices ("labels"/"embedding") or a boolean N x A attribute matrix ("attributes")."""
        logits = self.logits(x)
        return logits > 0 if self.kind == "attributes" else logits.argmax(1)

