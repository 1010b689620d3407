"""Generated samples in batches, for metrics over tens of thousands of samples (the redaction paper uses 50K)
that should not hold every image in memory at once."""

from __future__ import annotations

from typing import Iterator

import torch

from core.errors import LetheError
from core.models.bundles import GANBundle


@torch.no_grad()
def iter_gan_samples(
    gan: GANBundle, n: int, seed: int = 0, batch_size: int = 500
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield (x in [0, 1] on the CPU, labels or None) batches of exactly the samples `gan.sample(n, seed)`
    returns: the same latents and labels, drawn up front from one seeded generator."""
    if n < 1:
        raise LetheError(f"Need n >= 1 generated samples, got {n}.", "Ask for more samples.")
    gen = torch.Generator().manual_seed(seed)
    z = gan.sample_latent(n, gen)
    y = gan.sample_labels(n, gen)
    gan.eval()
    for start in range(0, n, batch_size):
        y_batch = None if y is None else y[start : start + batch_size]
        x = gan.generate(z[start : start + batch_size], y_batch).cpu()
        yield x, None if y_batch is None else y_batch.cpu()
