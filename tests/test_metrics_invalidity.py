"""Invalidity is the fraction of generated samples in the forget region, reported with its binomial SE."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import EmptySelection, LetheError, NonFiniteError, ShapeMismatch
from core.metrics import Estimate, binomial_stderr, gan_invalidity, invalidity, wilson_interval
from core.models.bundles import GANBundle
from core.models.card import ModelCard


def test_invalidity_is_the_fraction_of_invalid_flags_with_binomial_stderr():
    est = invalidity(torch.tensor([True, False, False, False]))
    assert est.value == 0.25
    assert est.stderr == pytest.approx(math.sqrt(0.25 * 0.75 / 4))
    assert est.n == 4 and est.name == "invalidity"
    assert float(est) == 0.25


def test_valid_mask_counts_the_complement():
    assert invalidity(valid_mask=np.array([1, 1, 0, 1, 1])).value == pytest.approx(0.2)


def test_all_valid_gives_zero_with_zero_stderr():
    assert invalidity([False] * 10) == Estimate(0.0, 0.0, 10, "invalidity")


def test_binomial_stderr_known_value():
    assert binomial_stderr(0.5, 100) == pytest.approx(0.05)


def test_wilson_interval_of_zero_invalid_samples_has_a_positive_upper_end():
    # 0 of N: the standard error is 0, but the Wilson upper end is z^2 / (N + z^2), about 3.84 / N at 95%
    z2 = 1.959963984540054**2
    assert wilson_interval(0, 2000) == (0.0, pytest.approx(z2 / (2000 + z2)))
    assert wilson_interval(2000, 2000) == (pytest.approx(2000 / (2000 + z2)), 1.0)
    assert wilson_interval(0, 10_000)[1] < wilson_interval(0, 2000)[1]  # more samples, a tighter bound


def test_wilson_interval_known_values():
    low, high = wilson_interval(5, 10)  # symmetric around one half
    assert low + high == pytest.approx(1.0) and high == pytest.approx(0.7634, abs=1e-4)
    low, high = wilson_interval(81, 1000)
    assert (low, high) == (pytest.approx(0.06565, abs=1e-5), pytest.approx(0.09956, abs=1e-5))
    assert wilson_interval(81, 1000, confidence=0.99)[1] > high


def test_wilson_interval_rejects_impossible_counts():
    for k, n in ((1, 0), (-1, 10), (11, 10)):
        with pytest.raises(LetheError, match="binomial interval"):
            wilson_interval(k, n)
    with pytest.raises(LetheError, match="confidence"):
        wilson_interval(1, 10, confidence=1.0)


def test_bad_inputs_raise_actionable_errors():
    with pytest.raises(EmptySelection):
        invalidity(torch.zeros(0, dtype=torch.bool))
    with pytest.raises(NonFiniteError, match="invalidity"):
        invalidity(np.array([0.0, np.nan]))
    with pytest.raises(ShapeMismatch):
        invalidity(np.array([0.0, 0.5]))
    with pytest.raises(LetheError):
        invalidity([True], valid_mask=[False])


class _Identity(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.scale


def _toy_gan() -> GANBundle:
    card = ModelCard(name="toy-identity", family="gan", architecture="test", data_shape=[1])
    return GANBundle(card=card, generator=_Identity(), latent_dim=1, pixel_range=None)


def test_gan_invalidity_of_a_half_space_under_a_standard_normal_is_one_half():
    gan = _toy_gan()
    est = gan_invalidity(gan, lambda x: x[:, 0] > 0, n=4000, seed=3, batch_size=512)
    assert est.n == 4000
    assert abs(est.value - 0.5) < 3 * est.stderr
    # The batches judge exactly the samples gan.sample(n, seed) returns.
    x, _ = gan.sample(4000, seed=3)
    assert est.value == invalidity(x[:, 0] > 0).value


def test_gan_invalidity_rejects_a_judge_returning_the_wrong_number_of_flags():
    with pytest.raises(ShapeMismatch, match="flags"):
        gan_invalidity(_toy_gan(), lambda x: torch.ones(3, dtype=torch.bool), n=10, batch_size=5)
