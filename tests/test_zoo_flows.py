"""Zoo flows: every recipe runs end to end in smoke mode, and the shipped weights are invertible on real data and
meet their floors (measured on a few hundred held-out images to keep the suite fast)."""

from __future__ import annotations

import pytest
import torch

from core.data import load
from core.errors import Cancelled
from core.models import FlowBundle, load_model
from core.progress import CancelToken
from core.zoo.flows import _lr_factor, evaluate_mnist_flow, evaluate_synthfaces_flow, evaluate_toy_flow, train_toy_flow
from core.zoo.registry import ZOO

FLOWS = ("toy-flow", "mnist-flow", "synthfaces-flow")
DATASETS = {"toy-flow": "ring5", "mnist-flow": "mnist", "synthfaces-flow": "synthfaces"}
FAST_EVAL = {"toy-flow": lambda b: evaluate_toy_flow(b),
             "mnist-flow": lambda b: evaluate_mnist_flow(b, limit=300),
             "synthfaces-flow": lambda b: evaluate_synthfaces_flow(b, limit=300)}


def test_learning_rate_warms_up_linearly_then_decays_to_zero():
    assert _lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert _lr_factor(9, 100, 10) == pytest.approx(1.0)
    assert _lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert _lr_factor(55, 100, 10) == pytest.approx(0.5)
    assert _lr_factor(100, 100, 10) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("name", FLOWS)
def test_recipe_smoke_run_returns_a_documented_flow(name):
    events = []
    bundle = ZOO[name].train(seed=0, smoke=True, progress=events.append)
    assert isinstance(bundle, FlowBundle)
    card = bundle.card
    assert card.name == name and card.training["smoke"] is True and card.training["seconds"] > 0
    assert card.training["storage_dtype"] in ("float16", "float32")
    assert set(ZOO[name].floors) <= set(card.metrics)
    assert {k: tuple(v) for k, v in card.floors.items()} == ZOO[name].floors
    assert events and events[-1].step == events[-1].total and "train_nll" in events[-1].metrics


def test_recipe_stops_when_cancelled():
    cancel = CancelToken()
    cancel.set()
    with pytest.raises(Cancelled):
        train_toy_flow(smoke=True, cancel=cancel)


@pytest.mark.parametrize("name", FLOWS)
def test_shipped_flow_meets_its_floors(name):
    bundle = load_model(name, device="cpu")
    measured = FAST_EVAL[name](bundle)
    assert bundle.card.floor_failures(measured) == []


@pytest.mark.parametrize("name", FLOWS)
def test_shipped_flow_inverts_real_data_and_its_own_samples(name):
    bundle = load_model(name, device="cpu")
    x = load(DATASETS[name], "test").x[:16]
    x = bundle.dequantize(x, torch.Generator().manual_seed(0))
    with torch.no_grad():
        z, _ = bundle.forward(x)
        assert (bundle.inverse(z) - x).abs().max() < 1e-4
        z = torch.randn(8, *bundle.flow.latent_shape, generator=torch.Generator().manual_seed(0)) * 0.7
        assert torch.isfinite(bundle.log_prob(bundle.inverse(z))).all()


@pytest.mark.parametrize("name", ("mnist-flow", "synthfaces-flow"))
def test_colder_samples_are_more_likely(name):
    bundle = load_model(name, device="cpu")
    with torch.no_grad():
        cold = bundle.log_prob(bundle.sample(16, seed=0, temperature=0.5)).mean()
        warm = bundle.log_prob(bundle.sample(16, seed=0, temperature=1.0)).mean()
    assert cold > warm
