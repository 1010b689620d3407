"""2-D projections of a dataset for the embedding view, cached on disk because UMAP is slow to start.

PCA is the default (exact, a fraction of a second). UMAP is offered on request: umap-learn compiles with numba on
first use (tens of seconds), so its result is stored under `<LETHE_HOME>/cache/embeddings/` and reused by every
later session. A projection is a pure function of (features, method, seed); the cache key names all three.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from core.data.home import cache_dir
from core.errors import LetheError

METHODS = ("pca", "umap")


def features_of(x: torch.Tensor) -> np.ndarray:
    """Flattened float32 pixels (or the raw coordinates of toy data), one row per sample."""
    return x.reshape(len(x), -1).float().cpu().numpy()


def _pca(features: np.ndarray, seed: int) -> np.ndarray:
    x = torch.as_tensor(features, dtype=torch.float32)
    x = x - x.mean(0, keepdim=True)
    torch.manual_seed(seed)
    _, _, v = torch.pca_lowrank(x, q=min(6, *x.shape), center=False, niter=4)
    out = (x @ v[:, :2]).numpy()
    # Fix the sign of each axis (the largest-magnitude coordinate is positive) so the picture is reproducible.
    signs = np.sign(out[np.abs(out).argmax(0), [0, 1]])
    return (out * np.where(signs == 0, 1, signs)).astype(np.float32)


def _umap(features: np.ndarray, seed: int) -> np.ndarray:
    import umap  # imported lazily: numba compilation costs tens of seconds

    reducer = umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.1, random_state=seed, n_jobs=1)
    return reducer.fit_transform(features).astype(np.float32)


def cache_path(key: str, method: str, features: np.ndarray, seed: int) -> Path:
    """Where the projection of `features` is cached; the content hash keeps stale caches from being reused."""
    digest = hashlib.sha1(np.ascontiguousarray(features[:: max(1, len(features) // 512)]).tobytes())
    digest.update(f"{features.shape}/{seed}".encode())
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
    return cache_dir() / "embeddings" / f"{safe}-{method}-{digest.hexdigest()[:12]}.npy"


def project(features: np.ndarray, method: str = "pca", key: str = "data", seed: int = 0) -> np.ndarray:
    """N x 2 coordinates of `features` (N x D) by PCA or UMAP, read from / written to the disk cache.

    Data that is already 2-D is returned as it is (the toys need no projection)."""
    if method not in METHODS:
        raise LetheError(f"Unknown projection {method!r}.", f"Choose one of {', '.join(METHODS)}.")
    features = np.asarray(features, np.float32)
    if features.ndim != 2 or len(features) < 3:
        raise LetheError(f"Need at least 3 samples with flat features to project, got shape {features.shape}.",
                         "Pick a larger split or fewer filters.")
    if features.shape[1] <= 2:
        return np.pad(features, ((0, 0), (0, 2 - features.shape[1])))
    path = cache_path(key, method, features, seed)
    if path.is_file():
        cached = np.load(path)
        if cached.shape == (len(features), 2):
            return cached
    coords = _pca(features, seed) if method == "pca" else _umap(features, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, coords)
    tmp.replace(path)
    return coords
