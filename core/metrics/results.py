"""Result types returned by the metrics.

Each behaves like a number where that is unambiguous (`float(result)` is the headline value), and like a tuple
for unpacking, so `mean, std = inception_score(logits)` and `float(inception_score(logits))` both read naturally.
"""

from __future__ import annotations

from typing import NamedTuple


class Estimate(NamedTuple):
    """A proportion-like estimate from `n` samples with its standard error, e.g. invalidity or accuracy."""

    value: float
    stderr: float
    n: int
    name: str = ""

    def __float__(self) -> float:
        return float(self.value)


class SplitScore(NamedTuple):
    """A score computed on several splits of the samples: mean and standard deviation across splits."""

    mean: float
    std: float

    def __float__(self) -> float:
        return float(self.mean)


class NamedScore(NamedTuple):
    """A score tied to the classifier that judged it, e.g. name "FID[mnist-lenet]".

    `std` is the spread across splits where the metric has one (Inception Score), else None.
    """

    name: str
    value: float
    n: int
    std: float | None = None

    def __float__(self) -> float:
        return float(self.value)

    def as_dict(self) -> dict[str, float]:
        """{name: value}, ready to merge into a model card's or run's metrics."""
        return {self.name: float(self.value)}
