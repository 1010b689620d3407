"""Saving and loading bundles: safetensors weights plus a JSON card, validated on the way in.

A saved model is a folder with `model.safetensors` and `card.json`. Weight keys are `<module>.<state key>`
(e.g. `generator.net.0.weight`). Loading rebuilds the architecture from the card, then checks that every
expected tensor is present with the right shape and finite values before copying it in; safetensors cannot
execute code, so a malicious weights file can at worst fail these checks.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import core
from core.errors import BadCheckpoint, ShapeMismatch
from core.models.bundles import Bundle
from core.models.card import ModelCard
from core.models.registry import build

WEIGHTS = "model.safetensors"
CARD = "card.json"


def bundle_state(bundle: Bundle) -> dict[str, torch.Tensor]:
    """All modules' state (parameters and buffers) flattened to `<module>.<key>` -> tensor."""
    return {
        f"{name}.{key}": value
        for name, module in bundle.modules().items()
        for key, value in module.state_dict().items()
    }


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_bundle(bundle: Bundle, folder: str | Path, dtype: torch.dtype = torch.float32) -> Path:
    """Write `folder/model.safetensors` and `folder/card.json` atomically; return the folder.

    `dtype=torch.float16` halves the file (used for shipped zoo weights); integer buffers keep their dtype.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).cpu().contiguous()
        for k, v in bundle_state(bundle).items()
    }
    bundle.card.dtype = str(dtype).removeprefix("torch.")
    bundle.card.lethe_version = core.__version__
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".weights.")
    os.close(fd)
    save_file(state, tmp, metadata={"lethe_card_name": bundle.card.name})
    os.replace(tmp, folder / WEIGHTS)
    _atomic_write_bytes(folder / CARD, bundle.card.to_json().encode())
    return folder


def _resolve_folder(path: str | Path) -> Path:
    path = Path(path)
    if path.is_file() and path.name in (WEIGHTS, CARD):
        return path.parent
    return path


def load_bundle(path: str | Path, device: torch.device | str = "cpu") -> Bundle:
    """Load a saved model folder (or its card / weights file) into a float32 bundle in eval mode on `device`."""
    folder = _resolve_folder(path)
    if not folder.is_dir():
        raise BadCheckpoint(f"No saved model at {folder}.", "Give a folder holding model.safetensors and card.json.")
    card = ModelCard.read(folder / CARD)
    weights_path = folder / WEIGHTS
    if not weights_path.is_file():
        raise BadCheckpoint(f"{folder} has a card but no {WEIGHTS}.", "Copy the weights file next to card.json.")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BadCheckpoint(
            f"The weights file {weights_path} is corrupt or not a safetensors file ({exc}).",
            "Restore it from the run or zoo folder, or retrain the model.",
        ) from exc
    bundle = build(card)
    load_state(bundle, state, source=str(weights_path))
    return bundle.to(device).eval()


def load_state(bundle: Bundle, state: dict[str, torch.Tensor], source: str = "weights") -> None:
    """Copy `state` into `bundle` after checking names, shapes and finiteness; the bundle is unchanged on error."""
    expected = bundle_state(bundle)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise BadCheckpoint(
            f"{source} does not match architecture {bundle.card.architecture!r}: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}.",
            "The card and the weights come from different models; keep each card with its own weights.",
        )
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ShapeMismatch(
                f"{source}: tensor {key} has shape {tuple(tensor.shape)}, the architecture expects "
                f"{tuple(expected[key].shape)}.",
                "The card's hyperparameters do not match the weights; re-save the model with Lethe.",
            )
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise BadCheckpoint(
                f"{source}: tensor {key} contains NaN or infinite values.",
                "The model diverged before it was saved; use an earlier checkpoint or retrain.",
            )
    for name, module in bundle.modules().items():
        prefix = f"{name}."
        sub = {k[len(prefix) :]: v.float() if v.is_floating_point() else v for k, v in state.items() if k.startswith(prefix)}
        module.load_state_dict(sub)
