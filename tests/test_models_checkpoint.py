"""Saving and loading a model: what survives the round trip and what a bad file is told."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from core.errors import BadCheckpoint, ModelSpecError, ShapeMismatch
from core.models import GANBundle, ModelCard, load_bundle, load_model, save_bundle
from core.models.registry import register


class _TinyG(nn.Module):
    def __init__(self, latent: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent, width), nn.Tanh(), nn.Linear(width, 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class _TinyD(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, 1))
        self.register_buffer("steps", torch.tensor(3, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register("test-tiny-gan")
def _build_tiny(card: ModelCard) -> GANBundle:
    latent, width = card.hparams["latent_dim"], card.hparams["width"]
    return GANBundle(card=card, generator=_TinyG(latent, width), discriminator=_TinyD(width),
                     latent_dim=latent, pixel_range=None)


def _tiny(width: int = 8) -> GANBundle:
    card = ModelCard(name="tiny", family="gan", architecture="test-tiny-gan",
                     hparams={"latent_dim": 4, "width": width}, data_shape=[2])
    return _build_tiny(card)


def test_round_trip_keeps_weights_buffers_and_card(tmp_path):
    bundle = _tiny()
    bundle.card.metrics = {"kde_loglik": -2.5}
    save_bundle(bundle, tmp_path / "m")
    loaded = load_bundle(tmp_path / "m")
    z = torch.randn(5, 4)
    assert torch.equal(loaded.generate(z), bundle.generate(z))
    assert loaded.discriminator.steps.item() == 3
    assert loaded.card.metrics == {"kde_loglik": -2.5}
    assert load_model(str(tmp_path / "m")).card.name == "tiny"


def test_float16_storage_loads_as_float32_close_to_the_original(tmp_path):
    bundle = _tiny()
    save_bundle(bundle, tmp_path / "m", dtype=torch.float16)
    loaded = load_bundle(tmp_path / "m")
    assert loaded.card.dtype == "float16"
    assert next(loaded.generator.parameters()).dtype == torch.float32
    z = torch.randn(5, 4)
    assert torch.allclose(loaded.generate(z), bundle.generate(z), atol=1e-2)


def test_corrupt_weights_file_is_reported_with_a_fix(tmp_path):
    save_bundle(_tiny(), tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(BadCheckpoint, match="corrupt") as info:
        load_bundle(tmp_path / "m")
    assert "Save the model again" in info.value.hint


def test_weights_of_another_width_are_a_shape_mismatch(tmp_path):
    save_bundle(_tiny(width=8), tmp_path / "m")
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    card["hparams"]["width"] = 16
    (tmp_path / "m" / "card.json").write_text(json.dumps(card))
    with pytest.raises(ShapeMismatch, match="shape"):
        load_bundle(tmp_path / "m")


def test_nan_weights_are_refused(tmp_path):
    bundle = _tiny()
    with torch.no_grad():
        bundle.generator.net[0].weight[0, 0] = float("nan")
    save_bundle(bundle, tmp_path / "m")
    with pytest.raises(BadCheckpoint, match="NaN"):
        load_bundle(tmp_path / "m")


def test_broken_card_json_is_reported(tmp_path):
    save_bundle(_tiny(), tmp_path / "m")
    (tmp_path / "m" / "card.json").write_text("{ not json")
    with pytest.raises(BadCheckpoint, match="not valid JSON"):
        load_bundle(tmp_path / "m")


def test_unknown_spec_says_how_to_list_the_zoo():
    with pytest.raises(ModelSpecError) as info:
        load_model("no-such-model")
    assert "zoo list" in info.value.hint


def test_editing_a_copy_leaves_the_original_untouched():
    bundle = _tiny()
    before = bundle.generator.net[0].weight.clone()
    edited = bundle.copy()
    with torch.no_grad():
        edited.generator.net[0].weight.add_(1.0)
    assert torch.equal(bundle.generator.net[0].weight, before)


def test_card_floors_report_what_is_not_met():
    card = ModelCard(name="x", family="gan", architecture="a", metrics={"IS": 7.0, "acc": 0.99},
                     floors={"IS": [">=", 7.5], "acc": [">=", 0.97]})
    assert card.floor_failures() == ["IS = 7.0 does not satisfy >= 7.5"]
