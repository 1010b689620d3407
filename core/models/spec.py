"""Model specs: the one way every verb, page and notebook names a model.

A spec is a zoo name (`mnist-dcgan`), a path to a saved model folder (a run's edited model may also be named
`runs/<run id>/model` or by its run id: both resolve against the run store), or `package.module:factory` for a
user's own architecture (the factory returns a bundle; see `examples/`). A factory that a person names in a spec
runs; a factory named inside a saved card runs only when trusted (`core.models.trust`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import torch

from core.device import resolve_device
from core.errors import ModelSpecError
from core.models.bundles import Bundle
from core.models.checkpoint import load_bundle
from core.models.probe import probe
from core.models.registry import call_factory
from core.models.trust import trusting

FACTORY_SPEC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")  # package.module:factory


def saved_model_path(spec: str) -> Path | None:
    """The folder `spec` names: an existing path, else `runs/<id>/model` / `<id>/model` / `<id>` in the run
    store (`$LETHE_RUNS`, else `<repo>/runs`); None if it names none of these."""
    try:
        path = Path(spec).expanduser()
        if path.exists():
            return path
    except (OSError, ValueError, RuntimeError):  # too long, NUL byte, unknown ~user: not a path
        return None
    from core.runs.store import default_root

    parts = Path(spec).parts
    if parts and parts[0] == "runs":
        parts = parts[1:]
    if parts and parts[-1] == "model":
        parts = parts[:-1]
    if len(parts) == 1 and re.fullmatch(r"[\w.-]+", parts[0]) and parts[0] not in (".", ".."):
        candidate = Path(default_root()) / parts[0] / "model"
        if candidate.is_dir():
            return candidate
    return None


def load_model(spec: str, device: torch.device | str = "auto", trust: Iterable[str] = ()) -> Bundle:
    """Resolve `spec` to a bundle on `device` in eval mode. Never executes code from a weights file; a saved card
    naming a factory loads only if its module is in `trust` or otherwise trusted (`core.models.trust`)."""
    from core.zoo.registry import ZOO, zoo_folder

    dev = resolve_device(device)
    with trusting(trust):
        if spec in ZOO:
            folder = zoo_folder(spec)
            if not (folder / "model.safetensors").is_file():
                raise ModelSpecError(f"Zoo model {spec!r} has no shipped weights at {folder}.",
                                     f"Train it with: python -m core zoo train {spec}")
            return load_bundle(folder, dev)
        saved = saved_model_path(spec)
        if saved is not None:
            return load_bundle(saved, dev)
        if FACTORY_SPEC.fullmatch(spec):
            bundle = call_factory(spec).to(dev).eval()
            if not bundle.card.architecture.startswith("factory:"):
                bundle.card.architecture = f"factory:{spec}"
            probe(bundle, f"The factory {spec!r}")
            return bundle
    shown = spec if len(spec) <= 120 else spec[:117] + "..."
    raise ModelSpecError(f"{shown!r} is not a zoo model, a saved model folder, or package.module:factory.",
                         "Run `python -m core zoo list` for zoo names.")
