"""synthfaces: deterministic from a seed, every identity in both splits, attributes frequent and visible."""

from __future__ import annotations

import pytest
import torch

from core.data import load
from core.data.home import cache_dir
from core.data.synthfaces import (ATTRIBUTES, IDENTITY_LEVEL, IMAGE_LEVEL, FaceConfig, _disk_path, _render_or_read,
                                  load_synthfaces, render)
from core.errors import LetheError

SMALL = dict(n_identities=12, per_identity=6, n_test=2)


def test_same_seed_same_images_and_other_seed_differs():
    a = render(FaceConfig(seed=3, **SMALL))
    b = render(FaceConfig(seed=3, **SMALL))
    c = render(FaceConfig(seed=4, **SMALL))
    assert torch.equal(a.x, b.x) and torch.equal(a.attributes, b.attributes)
    assert not torch.equal(a.x, c.x)


def test_default_dataset_has_500_identities_with_20_train_and_4_test_images_each():
    train, test = load("synthfaces", "train"), load("synthfaces", "test")
    assert (len(train), len(test)) == (10_000, 2_000)
    assert train.shape == test.shape == (3, 32, 32)
    assert torch.equal(torch.bincount(train.identities), torch.full((500,), 20))
    assert torch.equal(torch.bincount(test.identities), torch.full((500,), 4))
    assert not set(train.ids.tolist()) & set(test.ids.tolist())
    assert train.labels is None and train.attribute_names == ATTRIBUTES and train.attributes.dtype == torch.bool


def test_pixels_are_8bit_values_in_unit_range():
    x = load("synthfaces", "test").x
    assert x.min() >= 0 and x.max() <= 1
    assert torch.allclose(x * 255, (x * 255).round(), atol=1e-4)


def test_at_least_six_attributes_each_between_15_and_55_percent():
    data = load("synthfaces", "all")
    freq = data.attributes.float().mean(0)
    assert len(ATTRIBUTES) >= 6
    for name, f in zip(ATTRIBUTES, freq.tolist()):
        assert 0.15 <= f <= 0.55, f"{name} frequency {f:.3f}"


def test_identity_level_attributes_are_constant_within_an_identity_and_image_level_ones_vary():
    data = load("synthfaces", "all")
    per_id = data.attributes.reshape(500, 24, -1)
    for name in IDENTITY_LEVEL:
        col = per_id[:, :, ATTRIBUTES.index(name)]
        assert (col == col[:, :1]).all(), name
    for name in IMAGE_LEVEL:
        col = per_id[:, :, ATTRIBUTES.index(name)]
        assert (col != col[:, :1]).any(dim=1).float().mean() > 0.2, name


def test_images_of_one_identity_differ_but_less_than_images_of_different_identities():
    data = load("synthfaces", "all")
    x = data.x.reshape(500, 24, -1)
    within = (x[:, 0] - x[:, 1]).pow(2).mean()
    between = (x[:-1, 0] - x[1:, 0]).pow(2).mean()
    assert within > 0
    assert within < between


def test_every_attribute_visibly_changes_the_average_face():
    data = load("synthfaces", "all")
    for i, name in enumerate(ATTRIBUTES):
        on = data.attributes[:, i]
        change = (data.x[on].mean(0) - data.x[~on].mean(0)).abs().mean(0).max()
        assert change > 0.025, f"{name}: largest change of the mean image {change:.3f}"


def test_size_64_renders_the_same_attributes():
    small = render(FaceConfig(seed=1, **SMALL))
    big = render(FaceConfig(size=64, seed=1, **SMALL))
    assert big.x.shape[1:] == (3, 64, 64) and big.name == "synthfaces-64"
    assert torch.equal(small.attributes, big.attributes)


def test_bad_arguments_raise_lethe_errors():
    with pytest.raises(LetheError, match="split"):
        load_synthfaces("validation")
    with pytest.raises(LetheError, match="n_test"):
        load_synthfaces("train", n_identities=2, per_identity=3, n_test=3)


def test_disk_cache_round_trip_is_exact():
    cfg = FaceConfig(seed=5, **SMALL)
    rendered = render(cfg)
    first = _render_or_read(cfg, disk_cache=True)  # renders, writes the cache
    again = _render_or_read(cfg, disk_cache=True)  # reads it back
    assert list((cache_dir() / "synthfaces").iterdir()) == [_disk_path(cfg)]
    assert torch.equal(rendered.x, first.x) and torch.equal(first.x, again.x)
    assert torch.equal(first.attributes, again.attributes) and torch.equal(first.identities, again.identities)
