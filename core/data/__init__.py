"""Datasets (bundled, torchvision roots, synthetic) and forget/retain selection.

`load(name, split)` is the one entry point: it returns an `ImageData` with images in [0, 1].
"""

from __future__ import annotations

from core.data.base import ImageData
from core.data.mnist_bundled import load_mnist_bundled
from core.data.toy import TOY_DATASETS, load_toy


def load(name: str, split: str = "train", root: str | None = None) -> ImageData:
    """Load dataset `name` (`mnist`, the toys, ...) split `train`, `test` or `all`."""
    if name == "mnist":
        return load_mnist_bundled(split)
    if name in TOY_DATASETS:
        return load_toy(name, split)
    raise KeyError(f"unknown dataset {name!r}")


__all__ = ["ImageData", "load"]
