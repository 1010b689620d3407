"""Model specs: the one way every verb, page and notebook names a model.

A spec is a zoo name (`mnist-dcgan`), a path to a saved model folder, or `package.module:factory` for a user's
own architecture (the factory returns a bundle; see `examples/`).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from core.device import resolve_device
from core.errors import ModelSpecError
from core.models.bundles import Bundle
from core.models.checkpoint import load_bundle
from core.models.registry import import_factory


def load_model(spec: str, device: torch.device | str = "auto") -> Bundle:
    """Resolve `spec` to a bundle on `device` in eval mode. Never executes code from a weights file."""
    from core.zoo.registry import ZOO, zoo_folder

    dev = resolve_device(device)
    if spec in ZOO:
        folder = zoo_folder(spec)
        if not (folder / "model.safetensors").is_file():
            raise ModelSpecError(
                f"Zoo model {spec!r} has no shipped weights at {folder}.",
                f"Train it with: python -m core zoo train {spec}",
            )
        return load_bundle(folder, dev)
    if Path(spec).exists():
        return load_bundle(spec, dev)
    if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", spec):  # package.module:factory
        bundle = import_factory(spec)()
        if not isinstance(bundle, Bundle):
            raise ModelSpecError(
                f"Factory {spec!r} returned {type(bundle).__name__}, not a Lethe bundle.",
                "Return core.models.GANBundle(...) (or another bundle type); see examples/.",
            )
        if not bundle.card.architecture.startswith("factory:"):
            bundle.card.architecture = f"factory:{spec}"
        return bundle.to(dev).eval()
    raise ModelSpecError(
        f"{spec!r} is not a zoo model, a saved model folder, or package.module:factory.",
        "Run `python -m core zoo list` for zoo names.",
    )
