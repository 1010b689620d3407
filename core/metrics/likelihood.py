"""Likelihood metrics: the kernel-density average log-likelihood of the influence paper, and NLL / bits per
dimension for normalizing flows under Lethe's one dequantization convention (see `FlowBundle`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from core.errors import LetheError, NonFiniteError, ShapeMismatch
from core.metrics.checks import as_array
from core.models.bundles import FlowBundle


def kde_log_likelihood(samples: Any, data: Any, bandwidth: float = 1.0, batch_size: int = 256) -> float:
    """Average log-likelihood (ALL) of `data` under a Gaussian kernel density estimate built on `samples`.

    Influence paper, Sec. 5 and App. C.1: "ALL measures the likelihood of the true data under the distribution
    that is estimated from generated data using kernel density estimation", Gaussian kernel, bandwidth 1. So
    `samples` are the generated points (kernel centres) and `data` the real (test) points being scored:

        ALL = 1/M sum_j log( 1/N sum_i N(x_j; s_i, h^2 I) ).

    Rows are flattened (images become vectors). Computed exactly in float64 with logsumexp, `batch_size` data
    rows at a time, so no kernel value underflows to log(0).
    """
    if not bandwidth > 0:
        raise LetheError(f"kde_log_likelihood: bandwidth must be positive, got {bandwidth}.", "The paper uses 1.0.")
    s = _rows(samples, "samples")
    x = _rows(data, "data")
    if s.shape[1] != x.shape[1]:
        raise ShapeMismatch(
            f"kde_log_likelihood: samples have {s.shape[1]} dimensions, data {x.shape[1]}.",
            "Score data of the same shape as the generated samples.",
        )
    n, d = s.shape
    s_t = torch.from_numpy(s)
    log_norm = math.log(n) + 0.5 * d * math.log(2 * math.pi * bandwidth**2)
    total = 0.0
    for start in range(0, len(x), batch_size):
        sq = torch.cdist(torch.from_numpy(x[start : start + batch_size]), s_t).square()
        total += float((torch.logsumexp(-sq / (2 * bandwidth**2), dim=1) - log_norm).sum())
    return total / len(x)


def _rows(values: Any, what: str) -> np.ndarray:
    arr = as_array(values, "kde_log_likelihood", what)
    if arr.ndim == 0:
        raise ShapeMismatch(f"kde_log_likelihood: {what} is a scalar.", "Pass one row per point.")
    return arr.reshape(len(arr), -1) if arr.ndim > 1 else arr.reshape(-1, 1)


def nll_nats(log_prob: torch.Tensor) -> torch.Tensor:
    """Per-sample negative log-likelihood in nats, -log p(x); raises on NaN/inf (a diverged flow)."""
    log_prob = torch.as_tensor(log_prob)
    if log_prob.numel() == 0:
        raise LetheError("nll_nats: no log-probabilities given.", "Evaluate the flow on at least one sample.")
    if not torch.isfinite(log_prob).all():
        raise NonFiniteError(
            "nll_nats: the flow returned NaN or infinite log-probabilities.",
            "Check the inputs are in [0, 1] and dequantized; the flow may have diverged.",
        )
    return -log_prob


def bits_per_dim(nll: Any, dim: int, n_bits: int) -> Any:
    """Bits per dimension of data on an `n_bits` grid from the continuous NLL in nats on [0, 1]^dim:

        bpd = (NLL + dim * ln(2^n_bits)) / (dim * ln 2).

    This is Lethe's one dequantization convention (`FlowBundle`): a density on [0, 1]^D is rescaled to the
    [0, 2^n_bits]^D integer-level scale on which bits/dim are conventionally reported (so the uniform density,
    NLL = 0, costs exactly n_bits bits per dimension). `n_bits = 0` gives plain continuous NLL / (D ln 2).
    Works on floats, arrays and tensors alike.
    """
    if dim < 1 or n_bits < 0:
        raise LetheError(f"bits_per_dim: need dim >= 1 and n_bits >= 0, got {dim} and {n_bits}.",
                         "dim is the number of values per sample (C*H*W); n_bits is 8 for ordinary images.")
    if not torch.isfinite(torch.as_tensor(nll, dtype=torch.float64)).all():
        raise NonFiniteError("bits_per_dim: the NLL is NaN or infinite.", "The flow diverged on these inputs.")
    return (nll + dim * n_bits * math.log(2)) / (dim * math.log(2))


@torch.no_grad()
def flow_nll(
    flow: FlowBundle, x: torch.Tensor, dequantize: bool = True, seed: int = 0, batch_size: int = 256
) -> torch.Tensor:
    """Per-sample NLL in nats (CPU tensor, shape (N,)) of data `x` in [0, 1] under `flow`, in batches.

    With `dequantize=True` images are first put on the flow's `n_bits` grid plus uniform noise drawn from
    `seed` (reproducible); pass False for inputs that are already continuous (e.g. the flow's own samples).
    """
    if len(x) == 0:
        raise LetheError("flow_nll: no samples given.", "Select at least one image.")
    if tuple(x.shape[1:]) != flow.data_shape:
        raise ShapeMismatch(
            f"flow_nll: the flow models shape {flow.data_shape}, got samples of shape {tuple(x.shape[1:])}.",
            "Pass data from the dataset the flow was trained on.",
        )
    gen = torch.Generator().manual_seed(seed)
    flow.eval()
    out = []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size].cpu()
        if dequantize:
            batch = flow.dequantize(batch, generator=gen)
        out.append(nll_nats(flow.log_prob(batch.to(flow.device))).cpu())
    return torch.cat(out)


def flow_bits_per_dim(flow: FlowBundle, x: torch.Tensor, seed: int = 0, batch_size: int = 256) -> float:
    """Mean bits per dimension of dataset images `x` in [0, 1] under `flow` (dequantized with `seed`)."""
    nll = flow_nll(flow, x, dequantize=True, seed=seed, batch_size=batch_size)
    return float(bits_per_dim(nll.double().mean(), flow.dim, flow.n_bits))
