"""Input checks shared by every metric: a metric fed nothing, NaNs or the wrong shape fails with a message that
names the metric and says what to pass, instead of returning a silent NaN."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from core.errors import EmptySelection, NonFiniteError, ShapeMismatch


def as_array(values: Any, metric: str, what: str, ndim: int | None = None, min_len: int = 1) -> np.ndarray:
    """`values` (tensor, array, sequence or scalar) as a finite float64 array with at least `min_len` rows."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(values, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ShapeMismatch(
            f"{metric}: {what} must have {ndim} dimension(s), got shape {arr.shape}.",
            "Pass one row per sample" + (" and one column per feature." if ndim == 2 else "."),
        )
    if arr.ndim > 0 and len(arr) < min_len:
        raise EmptySelection(
            f"{metric}: {what} has {len(arr)} row(s), at least {min_len} needed.",
            "Check the selection or sample count that produced it.",
        )
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise NonFiniteError(
            f"{metric}: {what} contains {bad} NaN or infinite value(s).",
            "The model or its inputs diverged; inspect the samples or log-probabilities that produced them.",
        )
    return arr


def as_flags(values: Any, metric: str, what: str) -> np.ndarray:
    """`values` as a non-empty 1-D boolean array; accepts booleans or 0/1 numbers."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.dtype != np.bool_:
        arr = as_array(arr, metric, what)
        if not np.isin(arr, (0.0, 1.0)).all():
            raise ShapeMismatch(
                f"{metric}: {what} must be booleans (or 0/1), got other values.",
                "Pass a boolean mask, one entry per sample.",
            )
        arr = arr.astype(bool)
    arr = arr.reshape(-1) if arr.ndim == 0 else arr
    if arr.ndim != 1:
        raise ShapeMismatch(f"{metric}: {what} must be 1-D, got shape {arr.shape}.", "Pass one flag per sample.")
    if len(arr) == 0:
        raise EmptySelection(f"{metric}: {what} is empty.", "Pass at least one sample.")
    return arr


def check_same_length(a: np.ndarray, b: np.ndarray, metric: str, names: str) -> None:
    """Raise ShapeMismatch unless `a` and `b` have the same number of rows."""
    if len(a) != len(b):
        raise ShapeMismatch(
            f"{metric}: {names} have different lengths ({len(a)} and {len(b)}).",
            "Pass one value per sample in both, in the same order.",
        )
