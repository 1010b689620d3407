"""The dataset contract: one in-memory tensor dataset type that every model, metric and method reads.

Images are float32 N x C x H x W in [0, 1]; the 2-D toys are float32 N x D. Every sample has a stable integer
`ids` entry (its row in the full, unsplit dataset) so a forget set saved today names the same samples tomorrow.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch


@dataclass
class ImageData:
    """A dataset split held in memory. Optional columns are None when the dataset does not have them."""

    name: str
    split: str
    x: torch.Tensor
    ids: torch.Tensor
    labels: torch.Tensor | None = None
    class_names: tuple[str, ...] = ()
    attributes: torch.Tensor | None = None  # bool, N x A
    attribute_names: tuple[str, ...] = ()
    identities: torch.Tensor | None = None  # long, N
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. (1, 28, 28) or (2,)."""
        return tuple(self.x.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x.dim() == 4

    def subset(self, mask_or_index: torch.Tensor) -> "ImageData":
        """The rows selected by a boolean mask or an index tensor (every column follows)."""
        idx = mask_or_index
        pick = lambda t: None if t is None else t[idx]  # noqa: E731 - tiny local helper
        return replace(
            self,
            x=self.x[idx],
            ids=self.ids[idx],
            labels=pick(self.labels),
            attributes=pick(self.attributes),
            identities=pick(self.identities),
        )


def stratified_split(labels: torch.Tensor, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices (train, test) with the same class proportions in both, fixed by `seed`."""
    gen = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in torch.unique(labels):
        rows = torch.nonzero(labels == c).flatten()
        rows = rows[torch.randperm(len(rows), generator=gen)]
        n_test = round(len(rows) * test_fraction)
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return torch.sort(torch.cat(train)).values, torch.sort(torch.cat(test)).values
