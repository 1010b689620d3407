"""KDE average log-likelihood, NLL and bits per dimension, with known answers."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import LetheError, NonFiniteError, ShapeMismatch
from core.metrics import bits_per_dim, flow_bits_per_dim, flow_nll, kde_log_likelihood, nll_nats
from core.models.bundles import FlowBundle
from core.models.card import ModelCard


def test_kde_of_one_point_under_one_kernel_is_the_gaussian_log_density():
    s, x = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 2.0]])
    expected = -0.5 * 5.0 - math.log(2 * math.pi)
    assert kde_log_likelihood(s, x) == pytest.approx(expected)
    # bandwidth h: log N(x; s, h^2 I) in 2-D
    assert kde_log_likelihood(s, x, bandwidth=2.0) == pytest.approx(-5.0 / 8 - math.log(2 * math.pi * 4))


def test_kde_averages_over_data_and_mixes_over_samples():
    s = np.array([[-1.0], [1.0]])
    x = np.array([[0.0], [1.0]])
    gauss = lambda d: math.exp(-0.5 * d * d) / math.sqrt(2 * math.pi)  # noqa: E731
    expected = 0.5 * (math.log(0.5 * (gauss(1) + gauss(1))) + math.log(0.5 * (gauss(2) + gauss(0))))
    assert kde_log_likelihood(s, x) == pytest.approx(expected)


def test_kde_is_exact_far_from_every_kernel_and_independent_of_batching():
    s = torch.zeros(3, 1)
    far = torch.tensor([[100.0]])
    assert kde_log_likelihood(s, far) == pytest.approx(-5000.0 - 0.5 * math.log(2 * math.pi))
    rng = np.random.default_rng(0)
    s, x = rng.normal(size=(50, 3)), rng.normal(size=(37, 3))
    assert kde_log_likelihood(s, x, batch_size=5) == pytest.approx(kde_log_likelihood(s, x, batch_size=1000))


def test_kde_flattens_images_and_checks_shapes():
    s, x = torch.zeros(2, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    assert kde_log_likelihood(s, x) == pytest.approx(-2 * math.log(2 * math.pi))
    with pytest.raises(ShapeMismatch):
        kde_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(NonFiniteError, match="kde_log_likelihood"):
        kde_log_likelihood(torch.tensor([[float("inf")]]), torch.zeros(1, 1))
    with pytest.raises(LetheError):
        kde_log_likelihood(torch.zeros(1, 1), torch.zeros(1, 1), bandwidth=0)


def test_bits_per_dim_of_the_uniform_density_on_the_unit_cube_is_n_bits():
    assert bits_per_dim(0.0, 784, 8) == pytest.approx(8.0)
    assert bits_per_dim(torch.zeros(3), 12, 5).tolist() == pytest.approx([5.0] * 3)


def test_bits_per_dim_of_continuous_data_is_nll_over_d_ln2():
    assert bits_per_dim(2 * math.log(2), 2, 0) == pytest.approx(1.0)


def test_nll_is_minus_log_prob_and_rejects_nan():
    assert nll_nats(torch.tensor([-1.5, 2.0])).tolist() == [1.5, -2.0]
    with pytest.raises(NonFiniteError, match="nll_nats"):
        nll_nats(torch.tensor([0.0, float("nan")]))
    with pytest.raises(NonFiniteError):
        bits_per_dim(float("inf"), 4, 8)


class _UniformFlow(nn.Module):
    """log p(x) = 0 on [0, 1]^D (and checks every input was dequantized into it)."""

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        assert ((x >= 0) & (x < 1)).all()
        return torch.zeros(len(x)) + 0 * self.p


class _StandardNormalFlow(_UniformFlow):
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return -0.5 * (x**2).sum(1) - 0.5 * x.shape[1] * math.log(2 * math.pi)


def _flow(module: nn.Module, shape: list[int], n_bits: int) -> FlowBundle:
    card = ModelCard(name="toy-flow-test", family="flow", architecture="test", data_shape=shape)
    return FlowBundle(card=card, flow=module, n_bits=n_bits)


def test_flow_bits_per_dim_of_a_uniform_flow_is_eight():
    flow = _flow(_UniformFlow(), [1, 2, 2], 8)
    assert flow_bits_per_dim(flow, torch.rand(10, 1, 2, 2), batch_size=3) == pytest.approx(8.0)


def test_flow_nll_of_a_standard_normal_matches_the_closed_form():
    flow = _flow(_StandardNormalFlow(), [2], 0)
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    nll = flow_nll(flow, x, batch_size=1)
    assert nll.tolist() == pytest.approx([math.log(2 * math.pi), 2.5 + math.log(2 * math.pi)])


def test_flow_nll_dequantization_is_reproducible_from_the_seed_and_checks_shape():
    flow = _flow(_StandardNormalFlow(), [1, 2, 2], 8)
    x = torch.rand(6, 1, 2, 2)
    assert torch.equal(flow_nll(flow, x, seed=4), flow_nll(flow, x, seed=4))
    assert not torch.equal(flow_nll(flow, x, seed=4), flow_nll(flow, x, seed=5))
    with pytest.raises(ShapeMismatch):
        flow_nll(flow, torch.rand(2, 1, 3, 3))
