"""Datasets (bundled, torchvision roots, synthetic) and forget/retain selection.

`load(name, split)` is the one entry point: it returns an `ImageData` with images in [0, 1].
"""

from __future__ import annotations

from core.data.base import ImageData
from core.data.mnist_bundled import load_mnist_bundled
from core.data.synthfaces import load_synthfaces
from core.data.toy import TOY_DATASETS, load_toy
from core.errors import LetheError


def load(name: str, split: str = "train", root: str | None = None) -> ImageData:
    """Load dataset `name` (`mnist`, `synthfaces`, the toys, ...) split `train`, `test` or `all`."""
    if name == "mnist":
        return load_mnist_bundled(split)
    if name == "synthfaces":
        return load_synthfaces(split)
    if name == "synthfaces-64":
        return load_synthfaces(split, size=64)
    if name in TOY_DATASETS:
        return load_toy(name, split)
    raise LetheError(f"unknown dataset {name!r}.", "Known datasets: mnist, synthfaces, synthfaces-64, "
                     + ", ".join(TOY_DATASETS) + ".")


__all__ = ["ImageData", "load"]
