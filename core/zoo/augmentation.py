"""Photometric degradations for training and testing the zoo judges on images that look generated.

A judge (the classifier behind invalidity, IS/FID and attribute shares) reads *generated* images, and generated
images are not clean renders: a GAN's samples carry pixel noise and colour blotches, a flow's samples at
temperature < 1 are blurred and washed out, and both place the face a pixel or two off. A judge trained on clean
renders only misreads them (the first synthfaces attribute judge called about 23 of 32 DCGAN faces "glasses" where
about 10 have them). Training on renders degraded the same ways, and reporting accuracy on degraded held-out renders
next to the clean accuracy, makes every number measured on samples trustworthy.

`Degradations` draws, per image and independently: a small integer shift (zero padded), a Gaussian blur, a
colour change (brightness offset, contrast and saturation factors, a gain per channel) and additive Gaussian
noise, then clamps to [0, 1]. With probability `p_clean` an image is left as it is (only shifted), so the judge
stays as accurate on clean renders. These are photometric changes of the whole image, unlike the masks of
`core.models.degradations`, which remove regions for image-to-image restoration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

BLUR_RADIUS = 2  # kernel side 5: enough for sigma <= 1.2 (the 5-tap kernel keeps > 90% of its mass)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by an integer offset in [-max_shift, max_shift]^2, repeating the border pixels into
    the uncovered rows and columns (a generator's off-centre face has background there, not a black bar; on MNIST's
    black border this is the same as filling with zeros)."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None]).to(x.device)  # n x h
    cols = (dx[:, None] + torch.arange(w)[None]).to(x.device)  # n x w
    idx = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur image i of x (N x C x H x W) with an isotropic Gaussian of std `sigma[i]` pixels (0 keeps it as is);
    separable 5-tap kernels, reflect padding so the border does not darken."""
    n, c, h, w = x.shape
    taps = torch.arange(-BLUR_RADIUS, BLUR_RADIUS + 1, dtype=x.dtype, device=x.device)
    s = sigma.to(x.device, x.dtype).clamp_min(1e-3)[:, None]
    kernel = torch.exp(-0.5 * (taps[None] / s) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (N*C) x 5
    flat = F.pad(x.reshape(1, n * c, h, w), (BLUR_RADIUS,) * 4, mode="reflect")
    flat = F.conv2d(flat, kernel[:, None, None, :], groups=n * c)
    flat = F.conv2d(flat, kernel[:, None, :, None], groups=n * c)
    return flat.reshape(n, c, h, w)


def colour_shift(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, saturation: torch.Tensor,
                 gain: torch.Tensor) -> torch.Tensor:
    """Per image i: scale the deviation from the image's mean grey by `contrast[i]`, blend each pixel with its
    grey value by `saturation[i]` (1 keeps the colours, 0 is grey), multiply channel c by `gain[i, c]` and add
    `brightness[i]`. Greyscale images (C = 1) have no saturation to change."""
    view = (-1, 1, 1, 1)
    grey = x.mean(1, keepdim=True)
    out = grey + saturation.view(view) * (x - grey) if x.shape[1] > 1 else x
    mean = out.mean((1, 2, 3), keepdim=True)
    out = mean + contrast.view(view) * (out - mean)
    return out * gain[:, :, None, None] + brightness.view(view)


@dataclass(frozen=True)
class Degradations:
    """Ranges of the per-image degradations (each drawn uniformly from [0, max] or [lo, hi]).

    Set from looking at samples of the zoo's generators: the synthfaces DCGAN's pixel noise is of order 0.02-0.05
    and its colours drift; synthfaces-flow at T=0.7 looks blurred by about one pixel and has roughly 0.6 of the
    renders' contrast and saturation."""

    p_clean: float = 0.25
    max_shift: int = 2
    max_blur_sigma: float = 1.2
    max_noise_std: float = 0.06
    brightness: float = 0.08
    contrast: tuple[float, float] = (0.55, 1.1)
    saturation: tuple[float, float] = (0.4, 1.2)
    channel_gain: float = 0.1

    def describe(self) -> dict:
        """The ranges as a plain dict, for a model card."""
        return asdict(self)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """x (N x C x H x W in [0, 1]) shifted, and degraded except for a `p_clean` share of the images."""
        n, c = x.shape[:2]
        x = random_shift(x, self.max_shift, generator)
        if self.p_clean >= 1.0:
            return x

        def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
            return (lo + (hi - lo) * torch.rand(*shape, generator=generator)).to(x.device)

        degraded = colour_shift(
            gaussian_blur(x, uniform(0.0, self.max_blur_sigma, n)),
            brightness=uniform(-self.brightness, self.brightness, n), contrast=uniform(*self.contrast, n),
            saturation=uniform(*self.saturation, n), gain=uniform(1 - self.channel_gain, 1 + self.channel_gain, n, c),
        )
        degraded = (degraded + uniform(0.0, self.max_noise_std, n).view(-1, 1, 1, 1)
                    * torch.randn(x.shape, generator=generator).to(x.device)).clamp(0, 1)
        keep = (torch.rand(n, generator=generator) < self.p_clean).to(x.device).view(-1, 1, 1, 1)
        return torch.where(keep, x, degraded)


SHIFT_ONLY = Degradations(p_clean=1.0)
"""Only the random shifts (the augmentation of the first zoo judges)."""

GENERATED_LOOK = Degradations()
"""The training augmentation of the synthfaces judges."""

HELD_OUT = Degradations(p_clean=0.0)
"""The degraded test set: every image degraded, drawn from `HELD_OUT_SEED` so every judge is tested on the same
images."""

HELD_OUT_SEED = 12345


@torch.no_grad()
def degraded_test_images(x: torch.Tensor) -> torch.Tensor:
    """The degraded copy of held-out images x that every judge's `...[degraded]` metrics are measured on."""
    return HELD_OUT(x, torch.Generator().manual_seed(HELD_OUT_SEED))
