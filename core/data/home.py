"""Where Lethe keeps its own files: `LETHE_HOME` (default `<repo>/.lethe`, ignored by git).

Selections live in `<home>/selections/`, prepared dataset copies and render caches in `<home>/data/` and
`<home>/cache/`. The folder is read from the environment on every call, so tests can point it elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def lethe_home() -> Path:
    """The Lethe home folder (not created here)."""
    return Path(os.environ.get("LETHE_HOME") or REPO / ".lethe").expanduser()


def cache_dir() -> Path:
    """Caches that can be rebuilt from code (rendered datasets)."""
    return lethe_home() / "cache"


def data_dir() -> Path:
    """Prepared copies of datasets (for example Debian's gzipped IDX files, unpacked for torchvision)."""
    return lethe_home() / "data"
