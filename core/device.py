"""Device selection: every verb and page takes `auto|cpu|cuda`, every tensor op stays device-agnostic."""

from __future__ import annotations

import torch

from core.errors import LetheError


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Turn `auto|cpu|cuda[:i]` into a torch device; `auto` picks CUDA when available."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LetheError("CUDA was requested but no GPU is visible to torch.", "Use --device cpu or auto.")
    if name != "cpu" and not name.startswith("cuda"):
        raise LetheError(f"Unknown device {name!r}.", "Use auto, cpu or cuda.")
    return torch.device(name)
