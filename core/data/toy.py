"""The papers' low-dimensional distributions, sampled deterministically from a seed.

- `gaussian2d`: correlated Gaussian, mean (1, 1), covariance [[1, .8], [.8, 1]] (influence paper, 2-D setting).
- `ring5`: a ring of five Gaussians (taming paper, Fig. 2; mode 0 is the centre).
- `clusters6`: six Gaussian clusters (std 0.5) with binary labels = cluster index mod 2 (GOLD paper's toy).
- `normal1d`: N(0, 1) in one dimension (redaction paper, Fig. 1).

Train and test splits are independent draws (seeds differ), sizes fixed per split.
"""

from __future__ import annotations

import math

import torch

from core.data.base import ImageData

SIZES = {"train": 10_000, "test": 2_000}


def _stable_seed(name: str, split: str) -> int:
    # Python's hash() is salted per process; a sum of code points is stable and good enough for a seed.
    return sum(ord(c) * 31**i for i, c in enumerate(f"{name}/{split}")) % 2**31


def gaussian2d(n: int, gen: torch.Generator) -> torch.Tensor:
    """N((1, 1), [[1, .8], [.8, 1]]) via the Cholesky factor of the covariance."""
    chol = torch.linalg.cholesky(torch.tensor([[1.0, 0.8], [0.8, 1.0]]))
    return torch.randn(n, 2, generator=gen) @ chol.T + 1.0


def ring5(n: int, gen: torch.Generator, radius: float = 2.0, std: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Five Gaussians: four on a ring of `radius` and one at the centre; labels are the mode index (0 = centre).

    The taming paper's toy forgets the centre mode of a ring of Gaussians; keeping the centre as its own labelled
    mode lets "forget label 0" express exactly that."""
    modes = torch.tensor(
        [[0.0, 0.0]] + [[radius * math.cos(a), radius * math.sin(a)] for a in (k * math.pi / 2 for k in range(4))]
    )
    labels = torch.randint(0, 5, (n,), generator=gen)
    return modes[labels] + std * torch.randn(n, 2, generator=gen), labels


def clusters6(n: int, gen: torch.Generator, radius: float = 3.0, std: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Six Gaussian clusters (std 0.5) evenly spaced on a circle; label = cluster index mod 2."""
    angles = torch.arange(6) * (2 * math.pi / 6)
    centres = torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], 1)
    cluster = torch.randint(0, 6, (n,), generator=gen)
    return centres[cluster] + std * torch.randn(n, 2, generator=gen), cluster % 2, cluster


def load_toy(name: str, split: str = "train") -> ImageData:
    """A toy dataset split as `ImageData` (x of shape N x D, ids 0..N-1 within the split's draw)."""
    n = SIZES["train"] if split == "all" else SIZES[split]
    gen = torch.Generator().manual_seed(_stable_seed(name, split))
    if name == "gaussian2d":
        return ImageData(name, split, gaussian2d(n, gen), torch.arange(n))
    if name == "ring5":
        x, y = ring5(n, gen)
        return ImageData(name, split, x, torch.arange(n), y, ("centre", "east", "north", "west", "south"))
    if name == "clusters6":
        x, y, cluster = clusters6(n, gen)
        return ImageData(name, split, x, torch.arange(n), y, ("even", "odd"), meta={"cluster": cluster})
    if name == "normal1d":
        return ImageData(name, split, torch.randn(n, 1, generator=gen), torch.arange(n))
    raise KeyError(name)


TOY_DATASETS = ("gaussian2d", "ring5", "clusters6", "normal1d")
