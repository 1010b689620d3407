"""Zoo classifiers: every recipe runs end to end in smoke mode, and the shipped weights meet their floors."""

from __future__ import annotations

import pytest
import torch

from core.errors import Cancelled
from core.models import ClassifierBundle, load_model
from core.progress import CancelToken
from core.zoo.classifiers import train_mnist_lenet
from core.zoo.registry import ZOO

CLASSIFIERS = ("mnist-lenet", "fashion-lenet", "synthfaces-attributes", "synthfaces-identity")


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_recipe_smoke_run_returns_a_documented_bundle(name):
    events = []
    bundle = ZOO[name].train(seed=0, smoke=True, progress=events.append)
    assert isinstance(bundle, ClassifierBundle)
    card = bundle.card
    assert card.name == name and card.training["smoke"] is True and card.training["seconds"] > 0
    assert set(ZOO[name].floors) <= set(card.metrics)
    assert {k: tuple(v) for k, v in card.floors.items()} == ZOO[name].floors
    assert events and events[-1].step == events[-1].total


def test_recipe_stops_when_cancelled():
    cancel = CancelToken()
    cancel.set()
    with pytest.raises(Cancelled):
        train_mnist_lenet(smoke=True, cancel=cancel)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_shipped_weights_meet_their_floors_and_their_card(name):
    bundle = load_model(name, device="cpu")
    measured = ZOO[name].evaluate(bundle, "cpu")
    assert bundle.card.floor_failures(measured) == []
    for metric in ZOO[name].floors:
        assert measured[metric] == pytest.approx(bundle.card.metrics[metric], abs=0.01), "card states another value"


def test_mnist_lenet_default_keeps_the_no_argument_architecture():
    bundle = load_model("mnist-lenet", device="cpu")
    assert bundle.kind == "labels" and bundle.class_names == tuple(str(d) for d in range(10))
    assert bundle.features(torch.rand(2, 1, 28, 28)).shape == (2, 84)
