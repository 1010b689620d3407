"""Inception Score and FID on a domain classifier, with known answers."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import EmptySelection, NonFiniteError, ShapeMismatch
from core.metrics import (
    class_shares,
    classifier_fid,
    classifier_inception_score,
    fid_from_features,
    frechet_distance,
    gan_fid,
    gan_inception_score,
    inception_score,
    metric_name,
)
from core.models.bundles import ClassifierBundle, GANBundle
from core.models.card import ModelCard


def test_inception_score_of_uniform_predictions_is_one():
    mean, std = inception_score(torch.zeros(100, 10), splits=10)
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0)


def test_inception_score_of_confident_balanced_predictions_is_the_number_of_classes():
    logits = 200.0 * torch.eye(10).repeat(50, 1)  # one-hot, every split holds each class equally often
    score = inception_score(logits, splits=5)
    assert score.mean == pytest.approx(10.0, rel=1e-9)
    assert float(score) == score.mean


def test_inception_score_of_a_collapsed_generator_is_one():
    logits = torch.zeros(60, 10)
    logits[:, 3] = 100.0
    assert inception_score(logits, splits=3).mean == pytest.approx(1.0)


def test_inception_score_bad_inputs():
    with pytest.raises(NonFiniteError, match="inception_score"):
        inception_score(torch.tensor([[0.0, float("nan")]] * 20), splits=2)
    with pytest.raises(EmptySelection):
        inception_score(torch.zeros(0, 10))
    with pytest.raises(ShapeMismatch):
        inception_score(torch.zeros(5, 10), splits=10)


def test_frechet_distance_of_identical_gaussians_is_zero():
    a = np.random.default_rng(0).normal(size=(6, 6))
    sigma = a @ a.T + np.eye(6)
    mu = np.arange(6.0)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_shifted_unit_gaussians_is_the_squared_shift():
    m = np.array([1.0, -2.0, 0.5])
    assert frechet_distance(np.zeros(3), np.eye(3), m, np.eye(3)) == pytest.approx(float(m @ m))


def test_frechet_distance_of_diagonal_gaussians_matches_the_closed_form():
    a, b = np.array([1.0, 4.0]), np.array([9.0, 1.0])
    expected = float(((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    assert frechet_distance(np.zeros(2), np.diag(a), np.zeros(2), np.diag(b)) == pytest.approx(expected)


def test_frechet_distance_survives_singular_covariances_without_warnings():
    rng = np.random.default_rng(1)
    f1, f2 = rng.normal(size=(5, 20)), rng.normal(size=(5, 20))  # fewer samples than dimensions
    dead = rng.normal(size=(300, 4))
    dead[:, 0] = 0.0  # a dead ReLU unit: zero variance
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = fid_from_features(f1, f2)
        assert fid_from_features(dead, dead) == pytest.approx(0.0, abs=1e-6)
    assert np.isfinite(value) and value > 0


def test_fid_from_features_of_large_samples_approaches_the_population_value():
    rng = np.random.default_rng(2)
    m = np.array([2.0, 0.0])
    value = fid_from_features(rng.normal(size=(20000, 2)), rng.normal(size=(20000, 2)) + m)
    assert value == pytest.approx(4.0, abs=0.1)


def test_fid_rejects_mismatched_or_tiny_feature_sets():
    with pytest.raises(ShapeMismatch):
        fid_from_features(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(EmptySelection):
        fid_from_features(np.zeros((1, 3)), np.zeros((10, 3)))


def test_class_shares_from_labels_and_logits():
    labels = torch.tensor([0, 0, 1, 2])
    assert class_shares(labels, 4).tolist() == [0.5, 0.25, 0.25, 0.0]
    assert class_shares(torch.eye(4)[labels], 4).tolist() == [0.5, 0.25, 0.25, 0.0]


class _MeanJudge(nn.Module):
    """Logits say "class 1" for bright images; features are the mean pixel."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3)).unsqueeze(1) * self.w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return torch.cat([-100 * (f - 0.5), 100 * (f - 0.5)], dim=1)


def _judge() -> ClassifierBundle:
    card = ModelCard(name="toy-judge", family="classifier", architecture="test", data_shape=[1, 4, 4])
    return ClassifierBundle(card=card, net=_MeanJudge(), class_names=("dark", "bright"))


def test_classifier_scores_are_named_after_their_judge():
    judge = _judge()
    assert metric_name("FID", judge) == "FID[toy-judge]" == metric_name("FID", "toy-judge")
    x = torch.cat([torch.zeros(50, 1, 4, 4), torch.ones(50, 1, 4, 4)])[torch.randperm(100)]
    score = classifier_inception_score(x, judge, splits=1)
    assert score.name == "IS[toy-judge]" and score.value == pytest.approx(2.0, rel=1e-3)
    assert score.as_dict() == {"IS[toy-judge]": score.value}


def test_classifier_fid_of_a_set_with_itself_is_zero_and_of_a_shift_is_its_square():
    judge = _judge()
    ref = torch.rand(200, 1, 4, 4) * 0.5
    assert classifier_fid(ref, ref, judge).value == pytest.approx(0.0, abs=1e-9)
    fid = classifier_fid(ref + 0.25, ref, judge)
    assert fid.name == "FID[toy-judge]" and fid.value == pytest.approx(0.0625, rel=1e-6)


class _SignPainter(nn.Module):
    """Bright images for z > 0, dark for z < 0 (pixel range [-1, 1])."""

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sign(z[:, :1]).view(-1, 1, 1, 1).expand(-1, 1, 4, 4) * 0.9 + 0 * self.p


def _sign_gan() -> GANBundle:
    card = ModelCard(name="sign-gan", family="gan", architecture="test", data_shape=[1, 4, 4])
    return GANBundle(card=card, generator=_SignPainter(), latent_dim=2)


def test_gan_scores_judge_exactly_the_samples_gan_sample_returns():
    gan, judge = _sign_gan(), _judge()
    score = gan_inception_score(gan, judge, n=1000, seed=2, splits=1, batch_size=128)
    assert score.name == "IS[toy-judge]" and score.value == pytest.approx(2.0, abs=0.01)
    x, _ = gan.sample(1000, seed=2)
    assert score.value == pytest.approx(classifier_inception_score(x, judge, splits=1).value)
    assert gan_fid(gan, x, judge, n=1000, seed=2, batch_size=128).value == pytest.approx(0.0, abs=1e-9)
