"""The photometric degradations the zoo judges are trained and tested on (core.zoo.augmentation)."""

from __future__ import annotations

import pytest
import torch

from core.zoo.augmentation import (
    GENERATED_LOOK, HELD_OUT, Degradations, colour_shift, degraded_test_images, gaussian_blur, random_shift,
)


def test_random_shift_moves_a_single_pixel_by_at_most_the_allowed_offset():
    x = torch.zeros(50, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    shifted = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert (shifted.flatten(1).sum(1) == 1).all()
    where = shifted[:, 0].flatten(1).argmax(1)
    rows, cols = where // 9, where % 9
    assert ((rows - 4).abs() <= 2).all() and ((cols - 4).abs() <= 2).all()
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 5


def test_random_shift_repeats_the_border_instead_of_drawing_a_black_bar():
    x = torch.full((20, 3, 8, 8), 0.7)
    assert torch.equal(random_shift(x, 2, torch.Generator().manual_seed(0)), x)


def test_blur_of_zero_width_keeps_the_image_and_a_wider_blur_spreads_a_dot_by_its_sigma():
    x = torch.zeros(3, 1, 15, 15)
    x[:, :, 7, 7] = 1.0
    out = gaussian_blur(x, torch.tensor([0.0, 0.6, 1.2]))
    assert torch.allclose(out[0], x[0], atol=1e-6)
    assert torch.allclose(out.sum((1, 2, 3)), torch.ones(3), atol=1e-5)  # mass is kept
    offsets = (torch.arange(15) - 7.0) ** 2
    spread = [(out[i, 0].sum(0) * offsets).sum().sqrt().item() for i in (1, 2)]
    assert spread[0] == pytest.approx(0.6, abs=0.05) and spread[1] == pytest.approx(1.2, abs=0.15)


def test_blur_keeps_a_flat_image_flat_up_to_the_border():
    x = torch.full((2, 3, 10, 10), 0.3)
    assert torch.allclose(gaussian_blur(x, torch.tensor([1.0, 1.2])), x, atol=1e-6)


def test_colour_shift_is_the_identity_at_neutral_settings_and_greys_out_at_zero_saturation():
    x = torch.rand(4, 3, 6, 6)
    ones, zeros = torch.ones(4), torch.zeros(4)
    assert torch.allclose(colour_shift(x, zeros, ones, ones, torch.ones(4, 3)), x, atol=1e-6)
    grey = colour_shift(x, zeros, ones, zeros, torch.ones(4, 3))
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])
    flat = colour_shift(x, zeros, zeros, ones, torch.ones(4, 3))  # contrast 0: every pixel at the image mean
    assert torch.allclose(flat, x.mean((1, 2, 3), keepdim=True).expand_as(x), atol=1e-6)


def test_shift_only_settings_draw_exactly_the_shifts():
    x = torch.rand(16, 3, 12, 12)
    a = Degradations(p_clean=1.0)(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, random_shift(x, 2, torch.Generator().manual_seed(3)))


def test_training_augmentation_leaves_about_p_clean_of_the_images_only_shifted_and_stays_in_range():
    x = torch.rand(400, 3, 12, 12)
    out = GENERATED_LOOK(x, torch.Generator().manual_seed(0))
    shifted = random_shift(x, GENERATED_LOOK.max_shift, torch.Generator().manual_seed(0))
    untouched = (out == shifted).flatten(1).all(1).float().mean().item()
    assert untouched == pytest.approx(GENERATED_LOOK.p_clean, abs=0.07)
    assert out.min() >= 0 and out.max() <= 1


def test_held_out_copy_degrades_every_image_and_is_the_same_every_time():
    x = torch.rand(50, 1, 10, 10)
    a, b = degraded_test_images(x), degraded_test_images(x)
    assert torch.equal(a, b) and HELD_OUT.p_clean == 0
    assert ((a - x).abs().flatten(1).mean(1) > 0.01).all()
