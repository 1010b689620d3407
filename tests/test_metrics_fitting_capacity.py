"""Fitting capacity: accuracy on real test data of a classifier trained on generated labelled samples."""

import pytest
import torch
from torch import nn

from core.errors import LetheError, ShapeMismatch
from core.metrics import fitting_capacity, gan_fitting_capacity
from core.models.bundles import GANBundle
from core.models.card import ModelCard


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks train ~30x faster on one thread than on two contended ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _dark_and_bright(n: int, size: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: dark images, class 1: bright images, with a little noise."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = (0.2 + 0.6 * y.float()).view(-1, 1, 1, 1) + 0.05 * torch.rand(n, 1, size, size, generator=gen)
    return x.clamp(0, 1), y


def _linear() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 2))


def test_samples_that_match_the_data_give_full_accuracy():
    x, y = _dark_and_bright(200)
    tx, ty = _dark_and_bright(100, seed=1)
    est = fitting_capacity(x, y, tx, ty, make_net=_linear, epochs=20, batch_size=32, lr=1e-1)
    assert est.value == 1.0 and est.n == 100 and est.name == "fitting_capacity"


def test_samples_with_swapped_labels_give_zero_accuracy():
    x, y = _dark_and_bright(200)
    tx, ty = _dark_and_bright(100, seed=1)
    est = fitting_capacity(x, 1 - y, tx, ty, make_net=_linear, epochs=20, batch_size=32, lr=1e-1)
    assert est.value == 0.0


def test_default_lenet_learns_an_easy_task():
    x, y = _dark_and_bright(256, size=28)
    tx, ty = _dark_and_bright(64, size=28, seed=1)
    assert fitting_capacity(x, y, tx, ty, epochs=3, batch_size=32).value >= 0.9


def test_fitting_capacity_checks_its_inputs():
    x, y = _dark_and_bright(10)
    with pytest.raises(ShapeMismatch):
        fitting_capacity(x, y[:5], x, y, make_net=_linear, epochs=1)


class _LabelPainter(nn.Module):
    """A perfect conditional generator of the dark/bright task: the image brightness encodes the label."""

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        level = 0.2 + 0.6 * y.float() + 0.05 * torch.sigmoid(z[:, 0])
        return (2 * level - 1).view(-1, 1, 1, 1).expand(-1, 1, 8, 8) + 0 * self.p


def _painter(num_classes: int) -> GANBundle:
    card = ModelCard(name="painter", family="gan", architecture="test", data_shape=[1, 8, 8])
    return GANBundle(card=card, generator=_LabelPainter(), latent_dim=2, num_classes=num_classes)


def test_a_perfect_conditional_generator_reaches_full_fitting_capacity():
    tx, ty = _dark_and_bright(100, seed=1)
    est = gan_fitting_capacity(_painter(2), tx, ty, n_per_epoch=200, epochs=10, make_net=_linear, lr=1e-1)
    assert est.value == 1.0


def test_gan_fitting_capacity_needs_a_conditional_gan():
    tx, ty = _dark_and_bright(10)
    with pytest.raises(LetheError, match="conditional"):
        gan_fitting_capacity(_painter(0), tx, ty, epochs=1)
