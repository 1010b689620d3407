"""Device selection: every verb and page takes `auto|cpu|cuda[:i]`, every tensor op stays device-agnostic.

Under torchrun (one process per GPU) `auto` and `cuda` mean this process's GPU, `cuda:LOCAL_RANK`, so the same
command line runs on one GPU and on eight."""

from __future__ import annotations

import os
import sys
from collections import Counter
from contextlib import contextmanager
from typing import Iterator

import torch

from core.errors import LetheError


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Turn `auto|cpu|cuda[:i]` into a torch device; `auto` picks CUDA when available."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LetheError("CUDA was requested but no GPU is visible to torch.", "Use --device cpu or auto.")
    if name != "cpu" and not name.startswith("cuda"):
        raise LetheError(f"Unknown device {name!r}.", "Use auto, cpu or cuda.")
    if name == "cuda":
        return torch.device("cuda", local_gpu())
    index = name.partition(":")[2]
    if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
        raise LetheError(f"Unknown device {name!r}: torch sees {torch.cuda.device_count()} GPU(s).",
                         f"Use cuda:0 to cuda:{torch.cuda.device_count() - 1}, or cuda.")
    return torch.device(name)


def local_gpu() -> int:
    """The GPU of this process: LOCAL_RANK under torchrun (one process per GPU), else the first GPU."""
    return int(os.environ.get("LOCAL_RANK", "0")) % max(1, torch.cuda.device_count())


HOST_READS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__")
"""Tensor methods that copy a value to the host: on a GPU each one waits for every queued kernel (a sync)."""


@contextmanager
def counting_host_reads(package: str = "core") -> Iterator[Counter]:
    """Count, by method name, the host reads (`HOST_READS`) that code under `package` makes while the block runs.

    A diagnostic for tests and benchmarks of inner loops: reads divided by steps is the number of device
    synchronisations a step costs on a GPU (on the CPU they are free, so they are counted, not timed). Reads made
    by torch itself (e.g. Adam reading its step counter, kept on the host) are not counted."""
    counts: Counter = Counter()
    marker = f"{os.sep}{package}{os.sep}"
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def counted(name: str, original):
        def read(self, *args, **kwargs):
            if marker in sys._getframe(1).f_code.co_filename:
                counts[name] += 1
            return original(self, *args, **kwargs)
        return read

    for name, original in originals.items():
        setattr(torch.Tensor, name, counted(name, original))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
