"""Classifier architectures: shapes, feature layers, the cosine identity head and the save/load round trip."""

from __future__ import annotations

import pytest
import torch

from core.errors import ShapeMismatch
from core.models import ClassifierBundle, ModelCard, load_bundle, save_bundle
from core.models.classifiers import LeNet5, SmallCNN, build_lenet5, build_small_cnn


def test_lenet5_defaults_to_mnist_digits_with_84_dimensional_features():
    net = LeNet5()
    x = torch.rand(5, 1, 28, 28)
    assert net(x).shape == (5, 10)
    assert net.features(x).shape == (5, 84)


def test_lenet5_takes_32x32_colour_images():
    net = LeNet5(in_channels=3, num_classes=4, image_size=32)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 4)


def test_lenet5_rejects_images_of_the_wrong_shape_with_a_clear_error():
    with pytest.raises(ShapeMismatch, match="1 x 28 x 28"):
        LeNet5()(torch.rand(2, 3, 28, 28))


def test_small_cnn_embedding_head_is_a_cosine_softmax_bounded_by_its_scale():
    net = SmallCNN(num_outputs=7, normalized_head=True, scale=16.0).eval()
    logits = net(torch.rand(4, 3, 32, 32))
    assert logits.shape == (4, 7)
    assert logits.abs().max() <= 16.0 + 1e-4
    assert net.features(torch.rand(4, 3, 32, 32)).shape == (4, 128)


def _attribute_card() -> ModelCard:
    return ModelCard(name="attrs", family="classifier", architecture="small-cnn", data_shape=[3, 32, 32],
                     hparams={"num_outputs": 3, "width": 8, "feature_dim": 16, "kind": "attributes",
                              "class_names": ["glasses", "smile", "hat"]})


def test_attribute_classifier_predicts_a_boolean_matrix():
    bundle = build_small_cnn(_attribute_card())
    pred = bundle.predict(torch.rand(6, 3, 32, 32))
    assert pred.dtype == torch.bool and pred.shape == (6, 3)
    assert bundle.class_names == ("glasses", "smile", "hat")


def test_save_and_load_round_trip_keeps_predictions_names_and_kind(tmp_path):
    card = ModelCard(name="digits", family="classifier", architecture="lenet5", data_shape=[1, 28, 28],
                     hparams={"class_names": [str(d) for d in range(10)]})
    bundle = build_lenet5(card)
    x = torch.rand(8, 1, 28, 28)
    save_bundle(bundle, tmp_path / "lenet")
    loaded = load_bundle(tmp_path / "lenet")
    assert isinstance(loaded, ClassifierBundle)
    assert torch.equal(loaded.logits(x), bundle.logits(x))
    assert loaded.class_names == tuple(str(d) for d in range(10)) and loaded.kind == "labels"

    attrs = build_small_cnn(_attribute_card())
    save_bundle(attrs, tmp_path / "attrs", dtype=torch.float16)
    reloaded = load_bundle(tmp_path / "attrs")
    assert reloaded.kind == "attributes"
    y = torch.rand(3, 3, 32, 32)
    assert torch.allclose(reloaded.logits(y), attrs.logits(y), atol=2e-2)


@pytest.mark.parametrize("card", [
    ModelCard(name="digits", family="classifier", architecture="lenet5", data_shape=[1, 28, 28], hparams={}),
    _attribute_card(),
    ModelCard(name="ids", family="classifier", architecture="small-cnn", data_shape=[3, 32, 32],
              hparams={"num_outputs": 5, "width": 8, "feature_dim": 16, "normalized_head": True, "kind": "embedding"}),
], ids=["lenet5", "small-cnn", "small-cnn-cosine"])
def test_one_pass_gives_the_same_logits_and_features_as_two(card):
    bundle = (build_lenet5 if card.architecture == "lenet5" else build_small_cnn)(card)
    x = torch.rand(7, *card.data_shape)
    logits, features = bundle.logits_and_features(x, batch_size=3)
    assert torch.allclose(logits, bundle.logits(x), atol=1e-6)
    assert torch.allclose(features, bundle.features(x), atol=1e-6)
