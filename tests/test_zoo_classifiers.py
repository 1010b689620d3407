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
GLASSES_GAP = 0.2  # measured 0.10 on 2,000 samples (37.7% read vs 27.2% true); the first judge: 0.43


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


@pytest.mark.parametrize("name", ["synthfaces-attributes", "synthfaces-identity", "fashion-lenet"])
def test_judges_trained_on_degraded_images_keep_most_of_their_accuracy_on_them(name):
    """Generated images are noisy, blurred and off-colour; a judge of samples must read them nearly as well as the
    data (trained on clean renders only, synthfaces-attributes fell from 0.994 to 0.726 on the degraded test copy
    and synthfaces-identity from 0.98 to 0.17)."""
    card = load_model(name, device="cpu").card
    assert "augmentation" in card.training and isinstance(card.training["augmentation"], dict)
    degraded = {k: v for k, v in card.floors.items() if k.endswith("[degraded]")}
    assert degraded, "a floor on the degraded test copy"
    for metric in degraded:
        assert card.metrics[metric] >= card.metrics[metric.removesuffix("[degraded]")] - 0.1


@torch.no_grad()
def test_attribute_judge_reads_generated_faces_about_as_often_as_the_data_has_them():
    """The first judge, trained on clean renders, read 70% of synthfaces-dcgan samples as wearing glasses (27% of
    the training faces; about a third of the samples by eye): a judge of samples must not invent attributes."""
    from core.data import load

    judge, gan = load_model("synthfaces-attributes", device="cpu"), load_model("synthfaces-dcgan", device="cpu")
    x, _ = gan.sample(500, seed=1)
    read = dict(zip(judge.class_names, (judge.logits(x) > 0).float().mean(0).tolist()))
    train = load("synthfaces", "train")
    true = dict(zip(train.attribute_names, train.attributes.float().mean(0).tolist()))
    assert abs(read["glasses"] - true["glasses"]) <= GLASSES_GAP
