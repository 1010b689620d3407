"""The paper's Fig. 1: data deletion is not data redaction, on a 1-D Gaussian.

p_data = N(0, 1), Omega = (-inf, -1.5] ∪ [1.5, inf), n = 80 samples, and the learner A is the maximum-likelihood
Gaussian (sample mean and standard deviation). Deleting the samples in Omega and refitting, A(X minus X'), still
puts mass on Omega (a narrower Gaussian, but a Gaussian); redaction's target is p_data restricted to the
complement of Omega, the truncated normal, which puts none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class DeletionVersusRedaction:
    """Everything Fig. 1 draws, plus the mass each density puts on Omega."""

    samples: np.ndarray
    in_omega: np.ndarray  # bool per sample
    grid: np.ndarray
    densities: dict[str, np.ndarray]  # name -> density on grid
    omega_mass: dict[str, float]  # name -> integral of the density over Omega
    bound: float


def gaussian_mle(x: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood mean and standard deviation (divide by n)."""
    return float(np.mean(x)), float(np.std(x))


def deletion_versus_redaction(n: int = 80, bound: float = 1.5, seed: int = 0) -> DeletionVersusRedaction:
    """Fit A(X), A(X minus X') and the restricted density p_data|complement(Omega) for Omega = {|x| >= bound}."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    in_omega = np.abs(x) >= bound
    if in_omega.all() or not in_omega.any():
        raise ValueError("the draw has no samples on one side of the bound; use another seed")
    grid = np.linspace(-4, 4, 801)
    fits = {"pre-trained A(X)": gaussian_mle(x), "re-trained A(X minus X')": gaussian_mle(x[~in_omega])}
    densities = {name: stats.norm.pdf(grid, mu, sd) for name, (mu, sd) in fits.items()}
    omega_mass = {name: float(stats.norm.cdf(-bound, mu, sd) + stats.norm.sf(bound, mu, sd))
                  for name, (mu, sd) in fits.items()}
    inside = 1.0 - 2.0 * stats.norm.sf(bound)
    densities = {"p_data": stats.norm.pdf(grid), **densities,
                 "redaction target p_data restricted": np.where(np.abs(grid) < bound, stats.norm.pdf(grid) / inside, 0.0)}
    omega_mass = {"p_data": float(2.0 * stats.norm.sf(bound)), **omega_mass, "redaction target p_data restricted": 0.0}
    return DeletionVersusRedaction(x, in_omega, grid, densities, omega_mass, bound)
