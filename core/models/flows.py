"""Normalizing flows with exact log-likelihoods: a multiscale Glow-style image flow and a 2-D RealNVP.

Both are bijections f: x -> z onto a standard-normal latent, so by the change of variables (taming paper eq. 1-2;
RealNVP, Dinh et al. 2017, eq. 3)

    log p(x) = log N(f(x); 0, I) + log |det df/dx|.

Every module here returns `(output, logdet)` from `forward` with logdet of shape (N,), and has an exact `inverse`.

Image flow (`MultiscaleFlow`, architecture "glow"), after Glow (Kingma & Dhariwal 2018, Sec. 3 and Table 1):

    x in [0, 1]^D --logit--> y --[squeeze, K x (actnorm, invertible 1x1 conv, affine coupling), split]--> ...

- The logit preprocessing of RealNVP (Sec. 4.1), y = logit(alpha + (1 - 2 alpha) x), maps the unit cube onto R^D.
  Its log-Jacobian is part of `forward`, so `log_prob(x)` is the density of x on [0, 1]^D in nats, which is
  Lethe's one dequantization convention (`FlowBundle`): bits/dim = (NLL + D ln 256) / (D ln 2).
- Each level squeezes 2x2 spatial blocks into channels, runs K steps, and (except the last level) factors out
  half of the channels (RealNVP's multiscale architecture, Sec. 3.6). Optionally (`split_prior`) the factored
  half h gets Glow's learned conditional prior N(mu(y), sigma(y)^2) given the kept half y (Glow Sec. 3.4 and its
  released code); it is written as the affine bijection eps = (h - mu(y)) / sigma(y), so the factored latent is
  still standard normal and the coarse levels must carry the image structure instead of leaving it to noise.
  Either way the whole latent is one flat N(0, I) vector of D numbers: `latent_shape` is (D,), sampling at
  temperature T is simply z ~ N(0, T^2 I) (for the split prior, the same as Glow's h ~ N(mu, (T sigma)^2)), and
  "the same latent through two models" (taming paper, Fig. 5) is one tensor.

Toy flow (`RealNVP2D`, architecture "realnvp2d"): alternating masked affine couplings with MLP conditioners on
R^D (RealNVP eq. 6-9), no preprocessing; used for the taming paper's 2-D example (Fig. 2).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from core.errors import LetheError, ShapeMismatch
from core.models.bundles import FlowBundle
from core.models.card import ModelCard
from core.models.registry import register

_LOG_2PI = math.log(2 * math.pi)
INVERSE_BOUND = 1e4  # see AffineCoupling.inverse


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over all non-batch dimensions, shape (N,)."""
    return -0.5 * (z.flatten(1).square().sum(1) + z[0].numel() * _LOG_2PI)


def squeeze2x2(x: torch.Tensor) -> torch.Tensor:
    """N x C x H x W -> N x 4C x H/2 x W/2, each 2x2 block becoming 4 channels (RealNVP Fig. 3); volume-preserving."""
    n, c, h, w = x.shape
    x = x.view(n, c, h // 2, 2, w // 2, 2)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(n, c * 4, h // 2, w // 2)


def unsqueeze2x2(x: torch.Tensor) -> torch.Tensor:
    """Inverse of `squeeze2x2`."""
    n, c, h, w = x.shape
    x = x.view(n, c // 4, 2, 2, h, w)
    return x.permute(0, 1, 4, 2, 5, 3).reshape(n, c // 4, h * 2, w * 2)


class LogitTransform(nn.Module):
    """x in [0, 1] -> logit(alpha + (1 - 2 alpha) x) (RealNVP Sec. 4.1), with its exact log-Jacobian.

    alpha keeps the logit finite at the cube's faces; dy/dx = (1 - 2 alpha) / (s (1 - s)) with s = alpha + (1 - 2
    alpha) x. The bijection is really onto the slightly larger cube (-a, 1 + a)^D, a = alpha / (1 - 2 alpha), so
    the density restricted to [0, 1]^D carries a little less than unit mass: reported bits/dim are, if anything,
    slightly pessimistic. Samples can leave [0, 1] by at most a; `FlowBundle.sample` clamps."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.alpha + (1 - 2 * self.alpha) * x
        y = torch.log(s) - torch.log1p(-s)
        logdet = (math.log(1 - 2 * self.alpha) - torch.log(s) - torch.log1p(-s)).flatten(1).sum(1)
        return y, logdet

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)


class ActNorm(nn.Module):
    """Per-channel affine y = (x + b) * exp(log_s) (Glow Sec. 3.1), initialised from the first training batch so
    that every channel starts with zero mean and unit variance. `initialized` is a buffer, so a loaded model is
    never re-initialised."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True)
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not self.initialized and len(x) > 1:
            self.initialize(x)
        y = (x + self.bias) * torch.exp(self.log_scale)
        logdet = self.log_scale.sum() * x.shape[2] * x.shape[3]
        return y, logdet.expand(len(x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(-self.log_scale) - self.bias


class InvertibleConv1x1(nn.Module):
    """Invertible 1x1 convolution in the LU parameterisation of Glow (Sec. 3.2, eq. 10): W = P L (U + diag(s)).

    P is a fixed permutation, L unit lower-triangular, U strictly upper-triangular; log|det W| = sum log|s|, so
    the log-determinant costs O(C) and W stays invertible while |s| > 0. Starts from a random rotation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(channels, channels))
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(s.abs()))

    def weight(self) -> torch.Tensor:
        eye = torch.eye(len(self.log_s), device=self.log_s.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.perm @ lower @ upper

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weight()
        y = F.conv2d(x, w[:, :, None, None])
        logdet = self.log_s.sum() * x.shape[2] * x.shape[3]
        return y, logdet.expand(len(x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        w_inv = torch.linalg.inv(self.weight())
        return F.conv2d(y, w_inv[:, :, None, None])


class AffineCoupling(nn.Module):
    """Glow's affine coupling (Sec. 3.3, Table 1): x_a passes unchanged; x_b -> (x_b + t(x_a)) * sigmoid(h(x_a) + 2).

    The conditioner is conv3x3 -> ReLU -> conv1x1 -> ReLU -> conv3x3 with a zero-initialised last layer, so each
    coupling starts close to a fixed scaling. The sigmoid bounds the scale in (0, 1), which keeps training stable
    (Glow's released code); expansion comes from actnorm."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.n_a = channels // 2
        n_b = channels - self.n_a
        self.net = nn.Sequential(
            nn.Conv2d(self.n_a, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
            nn.Conv2d(hidden, 2 * n_b, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def _shift_scale(self, x_a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(x_a)
        shift, raw = h[:, 0::2], h[:, 1::2]
        return shift, raw + 2.0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_a, x_b = x[:, : self.n_a], x[:, self.n_a :]
        shift, pre = self._shift_scale(x_a)
        y_b = (x_b + shift) * torch.sigmoid(pre)
        return torch.cat([x_a, y_b], 1), F.logsigmoid(pre).flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Exact inverse, with the result bounded by +-INVERSE_BOUND: a latent far outside what the data map to
        (e.g. temperature-1 samples of an MNIST flow) is divided by small scales in layer after layer and would
        overflow float32 to inf/NaN. On the image of [0, 1]^D activations stay orders of magnitude smaller (about
        15 for the zoo flows), so the bound never touches data and only saturates such off-manifold samples."""
        y_a, y_b = y[:, : self.n_a], y[:, self.n_a :]
        shift, pre = self._shift_scale(y_a)
        x_b = (y_b / torch.sigmoid(pre) - shift).clamp(-INVERSE_BOUND, INVERSE_BOUND)
        return torch.cat([y_a, x_b], 1)


class SplitPrior(nn.Module):
    """Glow's learned prior for a factored-out half h given the kept half y (Glow Sec. 3.4, `split2d` in its
    released code): (mu, log sigma) = conv3x3(y), zero-initialised so it starts as the standard normal. Used as
    the bijection h -> eps = (h - mu) * exp(-log sigma) with log-determinant -sum(log sigma); log sigma is
    bounded by tanh to +-`LOG_SCALE_BOUND` for stability."""

    LOG_SCALE_BOUND = 3.0

    def __init__(self, kept: int, factored: int) -> None:
        super().__init__()
        self.net = nn.Conv2d(kept, 2 * factored, 3, padding=1)
        nn.init.zeros_(self.net.weight)
        nn.init.zeros_(self.net.bias)

    def _mean_log_scale(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(y)
        return h[:, 0::2], self.LOG_SCALE_BOUND * torch.tanh(h[:, 1::2] / self.LOG_SCALE_BOUND)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_scale = self._mean_log_scale(y)
        return (h - mean) * torch.exp(-log_scale), -log_scale.flatten(1).sum(1)

    def inverse(self, eps: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mean, log_scale = self._mean_log_scale(y)
        return eps * torch.exp(log_scale) + mean


class FlowStep(nn.Module):
    """One step of flow (Glow Fig. 2a): actnorm, invertible 1x1 convolution, affine coupling."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([ActNorm(channels), InvertibleConv1x1(channels), AffineCoupling(channels, hidden)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = x.new_zeros(len(x))
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y


class MultiscaleFlow(nn.Module):
    """Multiscale Glow-style flow on images in [0, 1] (module docstring). The latent is a flat vector of D
    numbers: each level's factored-out half, flattened, in level order, then the last level's output."""

    def __init__(self, in_shape: tuple[int, int, int], levels: int, steps: int, hidden: int, alpha: float,
                 split_prior: bool = False) -> None:
        super().__init__()
        c, h, w = in_shape
        if levels < 1 or steps < 1 or h % 2**levels or w % 2**levels:
            raise ShapeMismatch(
                f"A {levels}-level flow cannot squeeze images of size {h}x{w} (needs sides divisible by "
                f"{2**levels}, at least one level and one step).", "Use fewer levels or pad the images.")
        self.in_shape = (c, h, w)
        self.preprocess = LogitTransform(alpha)
        self.levels = nn.ModuleList()
        self.split_shapes: list[tuple[int, int, int]] = []  # shapes factored out after each level but the last
        self.priors = nn.ModuleList()  # one SplitPrior per split when split_prior, else empty
        for level in range(levels):
            c, h, w = c * 4, h // 2, w // 2
            self.levels.append(nn.ModuleList([FlowStep(c, hidden) for _ in range(steps)]))
            if level < levels - 1:
                self.split_shapes.append((c // 2, h, w))
                if split_prior:
                    self.priors.append(SplitPrior(c - c // 2, c // 2))
                c = c - c // 2
        self.final_shape = (c, h, w)
        self.latent_shape = (math.prod(in_shape),)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x in [0, 1] -> (z of shape N x D, log|det dz/dx| of shape (N,))."""
        if tuple(x.shape[1:]) != self.in_shape:
            raise ShapeMismatch(f"This flow models images of shape {self.in_shape}, got {tuple(x.shape[1:])}.",
                                "Pass N x C x H x W images from the dataset the flow was trained on.")
        y, logdet = self.preprocess(x)
        parts = []
        for i, steps in enumerate(self.levels):
            y = squeeze2x2(y)
            for step in steps:
                y, ld = step(y)
                logdet = logdet + ld
            if i < len(self.split_shapes):
                k = self.split_shapes[i][0]
                h, y = y[:, :k], y[:, k:]
                if self.priors:
                    h, ld = self.priors[i](h, y)
                    logdet = logdet + ld
                parts.append(h.flatten(1))
        parts.append(y.flatten(1))
        return torch.cat(parts, 1), logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """z of shape N x D -> x (in [0, 1] up to the logit margin)."""
        sizes = [math.prod(s) for s in (*self.split_shapes, self.final_shape)]
        chunks = torch.split(z.flatten(1), sizes, dim=1)
        y = chunks[-1].reshape(len(z), *self.final_shape)
        for i in reversed(range(len(self.levels))):
            if i < len(self.split_shapes):
                h = chunks[i].reshape(len(z), *self.split_shapes[i])
                if self.priors:
                    h = self.priors[i].inverse(h, y)
                y = torch.cat([h, y], 1)
            for step in reversed(self.levels[i]):
                y = step.inverse(y)
            y = unsqueeze2x2(y)
        return self.preprocess.inverse(y)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density of x on [0, 1]^D in nats, shape (N,) (change of variables, module docstring)."""
        z, logdet = self(x)
        return standard_normal_log_prob(z) + logdet


class MaskedAffineCoupling(nn.Module):
    """RealNVP's masked affine coupling (eq. 9): y = m * x + (1 - m) * (x * exp(s(m x)) + t(m x)).

    s is bounded as `scale * tanh(.)` with a learnt per-dimension `scale` (RealNVP's released code), and the last
    layer is zero-initialised so the coupling starts as the identity."""

    def __init__(self, mask: torch.Tensor, hidden: int) -> None:
        super().__init__()
        dim = len(mask)
        self.register_buffer("mask", mask.float().clone())
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * dim))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.scale = nn.Parameter(torch.ones(dim))

    def _shift_log_scale(self, x_masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift, raw = self.net(x_masked).chunk(2, dim=1)
        free = 1 - self.mask
        return shift * free, self.scale * torch.tanh(raw) * free

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift, log_s = self._shift_log_scale(x * self.mask)
        return x * torch.exp(log_s) + shift, log_s.sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        shift, log_s = self._shift_log_scale(y * self.mask)
        return (y - shift) * torch.exp(-log_s)


class RealNVP2D(nn.Module):
    """RealNVP on R^D (D >= 2) for the papers' toy distributions: `couplings` masked affine couplings whose masks
    alternate between the even and the odd coordinates. The density is on R^D itself (no preprocessing)."""

    def __init__(self, dim: int, couplings: int, hidden: int) -> None:
        super().__init__()
        if dim < 2 or couplings < 2:
            raise ShapeMismatch(f"RealNVP needs dim >= 2 and >= 2 couplings (got {dim}, {couplings}).",
                                "A coupling leaves half of the coordinates unchanged, so it needs at least two.")
        even = (torch.arange(dim) % 2 == 0).float()
        self.couplings = nn.ModuleList(
            [MaskedAffineCoupling(even if i % 2 == 0 else 1 - even, hidden) for i in range(couplings)])
        self.latent_shape = (dim,)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 2 or x.shape[1] != self.latent_shape[0]:
            raise ShapeMismatch(f"This flow models {self.latent_shape[0]}-D points, got shape {tuple(x.shape)}.",
                                "Pass an N x D tensor.")
        logdet = x.new_zeros(len(x))
        for coupling in self.couplings:
            x, ld = coupling(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        for coupling in reversed(self.couplings):
            z = coupling.inverse(z)
        return z

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density of x on R^D in nats, shape (N,)."""
        z, logdet = self(x)
        return standard_normal_log_prob(z) + logdet


def _hparam(card: ModelCard, key: str, kind: type, default):
    value = card.hparams.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or (kind is int and value != int(value)):
        raise LetheError(f"Hyperparameter {key!r} of {card.name!r} must be a {kind.__name__}, got {value!r}.",
                         "Fix the model card (card.json) or re-save the model with Lethe.")
    return kind(value)


@register("glow")
def build_glow(card: ModelCard) -> FlowBundle:
    """Multiscale Glow-style image flow. hparams: levels (3), steps per level (8), hidden channels of the
    coupling networks (64), logit margin alpha (0.05), n_bits of the data (8), split_prior (0; 1 = Glow's learned
    conditional prior for the factored-out halves); the image shape is `card.data_shape` (C, H, W)."""
    if len(card.data_shape) != 3:
        raise ShapeMismatch(f"The glow flow {card.name!r} needs data_shape [C, H, W], got {card.data_shape}.",
                            "Set the card's data_shape to the image shape.")
    flow = MultiscaleFlow(tuple(card.data_shape), levels=_hparam(card, "levels", int, 3),
                          steps=_hparam(card, "steps", int, 8), hidden=_hparam(card, "hidden", int, 64),
                          alpha=_hparam(card, "alpha", float, 0.05),
                          split_prior=bool(_hparam(card, "split_prior", int, 0)))
    return FlowBundle(card=card, flow=flow, n_bits=_hparam(card, "n_bits", int, 8))


@register("realnvp2d")
def build_realnvp2d(card: ModelCard) -> FlowBundle:
    """RealNVP for low-dimensional continuous data. hparams: couplings (8), hidden units (64); the dimension is
    `card.data_shape` (D,). The density is continuous, so n_bits = 0."""
    if len(card.data_shape) != 1:
        raise ShapeMismatch(f"The realnvp2d flow {card.name!r} needs data_shape [D], got {card.data_shape}.",
                            "Set the card's data_shape to the point dimension, e.g. [2].")
    flow = RealNVP2D(card.data_shape[0], couplings=_hparam(card, "couplings", int, 8),
                     hidden=_hparam(card, "hidden", int, 64))
    return FlowBundle(card=card, flow=flow, n_bits=0)
