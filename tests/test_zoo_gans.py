"""The GAN zoo: every recipe runs in smoke mode and gives a bundle that saves and loads; the shipped weights
(G and D) load and meet the floors of their zoo entries, and their cards state the quality they really have."""

from __future__ import annotations

import pytest
import torch

from core.errors import Cancelled
from core.models import ModelCard, load_bundle, load_model, save_bundle
from core.models.registry import build
from core.progress import CancelToken
from core.zoo.registry import ZOO

GANS = ["mnist-dcgan", "synthfaces-dcgan", "toy-gan", "mnist-acgan", "toy-acgan", "fashion-acgan", "influence-dcgan"]


def _floors(name: str) -> dict[str, list]:
    return {metric: [op, bound] for metric, (op, bound) in ZOO[name].floors.items()}


@pytest.mark.parametrize("name", GANS)
def test_smoke_recipe_returns_a_gan_that_saves_and_loads(name, tmp_path):
    events = []
    bundle = ZOO[name].train(seed=0, smoke=True, progress=events.append)
    assert events and events[-1].metrics, "the recipe reports progress with loss curves"
    assert bundle.card.name == name and bundle.card.training["smoke"] is True
    assert bundle.card.floors == _floors(name)
    assert bundle.discriminator is not None
    save_bundle(bundle, tmp_path / name)
    loaded = load_bundle(tmp_path / name)
    x, y = bundle.sample(8, seed=3)
    x2, y2 = loaded.sample(8, seed=3)
    torch.testing.assert_close(x2, x)
    assert (y is None and y2 is None) or torch.equal(y, y2)


def test_recipe_stops_when_cancelled():
    token = CancelToken()
    token.set()
    with pytest.raises(Cancelled):
        ZOO["toy-gan"].train(seed=0, smoke=True, cancel=token)


@pytest.mark.parametrize("name", GANS)
def test_shipped_gan_meets_its_floors_and_its_card(name):
    bundle = load_model(name, device="cpu")
    assert bundle.discriminator is not None, "redaction fine-tunes G and D, so D ships too"
    assert bundle.card.floors == _floors(name)
    measured = ZOO[name].evaluate(bundle)
    assert bundle.card.floor_failures(measured) == []
    for metric, value in bundle.card.metrics.items():
        assert measured[metric] == pytest.approx(value, rel=0.02, abs=0.01), metric


def test_an_untrained_synthfaces_dcgan_fails_its_floors():
    """The floors separate a trained G from noise: a freshly initialised dcgan32 misses FID and attribute shares."""
    card = ModelCard(name="untrained", family="gan", architecture="dcgan32", hparams={"width": 8, "d_norm": "spectral"})
    measured = ZOO["synthfaces-dcgan"].evaluate(build(card), n=2000)
    card.floors = _floors("synthfaces-dcgan")
    assert {failure.split()[0] for failure in card.floor_failures(measured)} == set(card.floors)
