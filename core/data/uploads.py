"""Uploaded data files kept on the server: a zip of images or an .npz, stored once under
`<LETHE_HOME>/uploads/data/` and named by a hash of its content, so the same upload is the same data spec (and
forget sets saved on it keep naming the same images) after a restart. The file is only stored here; it is read as
data by `core.data.user` (images decoded with bounds, npz with allow_pickle=False), never executed."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from core.data.home import lethe_home
from core.data.user import max_data_bytes
from core.errors import LetheError


def save_data_upload(filename: str, payload: bytes) -> Path:
    """Store an uploaded .zip / .npz and return its path (a data spec)."""
    suffix = Path(filename).suffix.lower()
    if suffix not in (".zip", ".npz"):
        raise LetheError(f"{filename} is not a .zip or .npz.", "Upload a zip of your images, or an .npz array file.")
    if len(payload) > max_data_bytes():
        raise LetheError(f"{filename} is larger than {max_data_bytes() / 2**30:.1f} GB.",
                         "Upload a subset, or give the folder's path on the server instead.")
    folder = lethe_home() / "uploads" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(payload).hexdigest()[:16]}{suffix}"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    return path
