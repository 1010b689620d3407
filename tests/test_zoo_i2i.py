"""Zoo image-to-image models: PSNR as documented, smoke recipes, and shipped weights meeting their floors."""

from __future__ import annotations

import math

import pytest
import torch

from core.models import I2IBundle, ModelCard, load_model
from core.models.degradations import KINDS
from core.models.i2i import build_conv_i2i
from core.zoo.i2i import psnr_report
from core.zoo.registry import ZOO

MODELS = ("mnist-i2i", "synthfaces-i2i")


class _Oracle(torch.nn.Module):
    """A 'decoder' that always outputs the same fixed image, to give PSNR a known answer."""

    def __init__(self, image: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("image", image)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.image.expand(len(h), *self.image.shape)


def test_psnr_report_has_a_known_answer_for_a_constant_error():
    card = ModelCard(name="t", family="i2i", architecture="conv-i2i", hparams={"width": 4, "latent_channels": 2})
    bundle = build_conv_i2i(card)
    x = torch.full((6, 1, 8, 8), 0.5)
    bundle.decoder = _Oracle(torch.full((1, 8, 8), 0.6))  # error 0.1 everywhere: PSNR = 10 log10(1/0.01) = 20 dB
    report = psnr_report(bundle, x)
    for kind in KINDS:
        assert report[f"psnr[{kind}]"] == pytest.approx(20.0, abs=1e-3)
        assert report[f"psnr_masked[{kind}]"] == pytest.approx(20.0, abs=1e-3)
    assert report["psnr"] == pytest.approx(20.0, abs=1e-3)


@pytest.mark.parametrize("name", MODELS)
def test_recipe_smoke_run_returns_a_documented_bundle(name):
    events = []
    bundle = ZOO[name].train(seed=0, smoke=True, progress=events.append)
    assert isinstance(bundle, I2IBundle) and bundle.degradations == KINDS
    assert bundle.card.training["smoke"] is True and bundle.card.training["seconds"] > 0
    assert math.isfinite(bundle.card.metrics["psnr"])
    assert {f"psnr[{k}]" for k in KINDS} <= set(bundle.card.metrics)
    assert events and events[-1].step == events[-1].total


@pytest.mark.parametrize("name", MODELS)
def test_shipped_weights_meet_their_psnr_floor_and_their_card(name):
    bundle = load_model(name, device="cpu")
    measured = ZOO[name].evaluate(bundle, "cpu")
    assert bundle.card.floor_failures(measured) == []
    assert measured["psnr"] == pytest.approx(bundle.card.metrics["psnr"], abs=0.1)
    # Restoring is better than leaving the hole grey: the model learned something about every task.
    for kind in KINDS:
        assert measured[f"psnr_masked[{kind}]"] > 10.0
