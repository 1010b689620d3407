"""Saving and loading bundles: safetensors weights plus a JSON card, validated on the way in.

A saved model is a folder with `model.safetensors` and `card.json`. Weight keys are `<module>.<state key>`
(e.g. `generator.net.0.weight`). Loading a folder, in this order:

1. reads the card and checks its fields' types, its family, and its hyperparameters' ranges (`core.models.hparams`);
   a card naming a user factory is refused unless its module is trusted (`core.models.trust`);
2. reads the safetensors header itself (`core.models.safetensors_header`), so every size it claims is backed by
   bytes in the file;
3. builds the architecture under an allocation budget derived from the header (`AllocationBudget`), so a card
   cannot make Lethe allocate more than its weights file justifies;
4. compares every tensor name and shape with the weights, checks finiteness and copies the weights in.

Safetensors cannot execute code and pickles are never read, so a malicious folder can at worst fail these checks.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch.overrides import TorchFunctionMode

import core
from core.errors import BadCheckpoint, LetheError, ShapeMismatch
from core.models.bundles import Bundle
from core.models.card import ModelCard
from core.models.hparams import check_card
from core.models.registry import build
from core.models.safetensors_header import read_header

WEIGHTS = "model.safetensors"
CARD = "card.json"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle")
# A card's architecture may allocate at most BUDGET_FACTOR x its weights (as float32) + BUDGET_SLACK bytes while it is
# built: parameters and buffers, plus the temporaries of initialisation (spectral norm, orthogonal 1x1 convolutions).
BUDGET_FACTOR = 3
BUDGET_SLACK = 64 * 1024 * 1024


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


def load_bundle(path: str | Path, device: torch.device | str = "cpu", label: str | None = None) -> Bundle:
    """Load a saved model folder (or its card / weights file) into a float32 bundle in eval mode on `device`.

    `label` names the model in messages instead of its path (an upload's temporary folder means nothing to the
    person who uploaded it)."""
    folder = _resolve_folder(path)
    where = label or str(folder)
    if not folder.is_dir():
        raise _not_a_folder(Path(path), where)
    card = ModelCard.read(folder / CARD, where)
    check_card(card, where)
    weights_path = folder / WEIGHTS
    if not weights_path.is_file():
        raise BadCheckpoint(f"{where} has a card but no {WEIGHTS}.", "Keep model.safetensors next to card.json.")
    header = read_header(weights_path, where)
    float32_bytes = 4 * sum(entry.numel for entry in header.values())
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BadCheckpoint(f"The weights file of {where} is corrupt or not a safetensors file ({exc}).",
                            "Save the model again with Lethe, or use an intact copy of the folder.") from exc
    if card.architecture.startswith("factory:"):  # trusted user code: its allocations are its own business
        bundle = _build(card, where)
    else:
        with AllocationBudget(float32_bytes, where):
            bundle = _build(card, where)
    if bundle.family != card.family:
        raise BadCheckpoint(f"The model card of {where} says family {card.family!r}, but its architecture builds a "
                            f"{bundle.family} model.", "Fix the card's family, or save the model again with Lethe.")
    load_state(bundle, state, source=f"the weights of {where}")
    return bundle.to(device).eval()


def _not_a_folder(path: Path, where: str) -> BadCheckpoint:
    if path.is_file() and path.suffix.lower() in PICKLE_SUFFIXES:
        return BadCheckpoint(
            f"{where} is a pickled PyTorch file; Lethe never unpickles a file, because unpickling can run code.",
            "Lethe loads a folder holding model.safetensors and card.json. Either save the model from Lethe, or "
            "write a factory module (pkg.module:fn, see examples/) that builds the model, loads your weights with "
            "torch.load(..., weights_only=True) and returns a bundle; then name that factory as the model.")
    if path.is_file():
        return BadCheckpoint(f"{where} is a file, not a saved model folder.",
                             "Give the folder holding model.safetensors and card.json (or a zip of both).")
    return BadCheckpoint(f"No saved model at {where}.", "Give a folder holding model.safetensors and card.json.")


def _size_of(args: tuple, kwargs: dict) -> int | None:
    """Number of elements a factory call such as `torch.empty(3, 4)`, `torch.zeros((3, 4))`, `torch.full(size,
    v)` or `torch.randint(lo, hi, size)` asks for; None if the call carries no size."""
    size = kwargs.get("size")
    if size is None:
        size = next((a for a in args if isinstance(a, (tuple, list, torch.Size))), None)
    if size is None and args and all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        size = args
    if size is None:
        return None
    return math.prod(int(d) for d in size)


class AllocationBudget(TorchFunctionMode):
    """Refuse, before it happens, any tensor allocation that would take the running total past `budget` bytes.

    Modules allocate their parameters and buffers through torch's factory functions (`torch.empty` in nn.Linear,
    nn.Conv2d, ...), so counting those calls while a card's architecture is built bounds what the card can make
    Lethe allocate, whatever its hyperparameters say, without building anything twice."""

    CREATE = frozenset({"empty", "zeros", "ones", "full", "rand", "randn", "randint", "empty_strided"})
    NEW = frozenset({"new_empty", "new_zeros", "new_ones", "new_full"})

    def __init__(self, weights_bytes: int, where: str) -> None:
        super().__init__()
        self.weights_bytes, self.where, self.used = weights_bytes, where, 0
        self.budget = BUDGET_FACTOR * weights_bytes + BUDGET_SLACK

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        numel = _size_of(args, kwargs) if name in self.CREATE else _size_of(args[1:], kwargs) if name in self.NEW \
            else None
        if numel is not None:
            dtype = kwargs.get("dtype") or torch.get_default_dtype()
            self.used += numel * (dtype.itemsize if isinstance(dtype, torch.dtype) else 8)
            if self.used > self.budget:
                raise BadCheckpoint(
                    f"The model card of {self.where} asks for more memory than its weights file justifies (building "
                    f"it would pass {self.budget >> 20} MB; the weights hold {self.weights_bytes / 2**20:.1f} MB as float32).",
                    "The card's hyperparameters do not match the weights; keep each card with its own weights, or "
                    "save the model again with Lethe.")
        return func(*args, **kwargs)


def _build(card: ModelCard, where: str) -> Bundle:
    """`build(card)`, with any failure of a built-in builder on an odd (but in-range) card as BadCheckpoint."""
    try:
        return build(card, where)
    except LetheError:
        raise
    except Exception as exc:  # noqa: BLE001 - a builder choking on a card is a bad card, not a Lethe bug
        raise BadCheckpoint(f"The model card of {where} describes a {card.architecture} Lethe cannot build "
                            f"({type(exc).__name__}: {str(exc)[:200]}).",
                            "Fix card.json, or save the model again with Lethe.") from exc


def _compare_names(expected: set[str], found: set[str], card: ModelCard, source: str) -> None:
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        raise BadCheckpoint(
            f"{source} do not match architecture {card.architecture!r}: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {[k[:80] for k in unexpected[:5]]}{'...' if len(unexpected) > 5 else ''}.",
            "The card and the weights come from different models; keep each card with its own weights.",
        )


def load_state(bundle: Bundle, state: dict[str, torch.Tensor], source: str = "weights") -> None:
    """Copy `state` into `bundle` after checking names, shapes and finiteness; the bundle is unchanged on error."""
    expected = bundle_state(bundle)
    _compare_names(set(expected), set(state), bundle.card, source)
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
