"""Degradations mask exactly the regions they promise; the I2I encoder's code is all the decoder sees."""

from __future__ import annotations

import pytest
import torch

from core.errors import LetheError, ShapeMismatch
from core.models import I2IBundle, ModelCard, load_bundle, save_bundle
from core.models.degradations import FILL, KINDS, degrade, degrade_mixed, make_mask
from core.models.i2i import build_conv_i2i


def _box(h: int, w: int, rows: slice, cols: slice) -> torch.Tensor:
    m = torch.zeros(h, w, dtype=torch.bool)
    m[rows, cols] = True
    return m


def test_center_crop_removes_exactly_the_central_half_side_square_and_fills_it_with_grey():
    x = torch.rand(3, 1, 28, 28)
    xd, mask = degrade(x, "center")
    assert torch.equal(mask[:, 0], _box(28, 28, slice(7, 21), slice(7, 21)).expand(3, 28, 28))
    assert (xd[mask.expand_as(x)] == FILL).all()
    assert torch.equal(xd[~mask.expand_as(x)], x[~mask.expand_as(x)])


def test_outpaint_keeps_only_the_centre_square():
    mask = make_mask("outpaint", 2, 32, 32)
    assert torch.equal(mask[:, 0], ~_box(32, 32, slice(8, 24), slice(8, 24)).expand(2, 32, 32))


@pytest.mark.parametrize(
    "side, rows, cols",
    [("left", slice(0, 28), slice(0, 7)), ("right", slice(0, 28), slice(21, 28)),
     ("up", slice(0, 7), slice(0, 28)), ("down", slice(21, 28), slice(0, 28))],
)
def test_directional_extension_removes_a_quarter_band_on_one_side(side, rows, cols):
    mask = make_mask(f"extend-{side}", 1, 28, 28)
    assert torch.equal(mask[0, 0], _box(28, 28, rows, cols))


def test_random_extension_picks_one_of_the_four_sides_per_image():
    bands = [make_mask(f"extend-{s}", 1, 28, 28)[0] for s in ("left", "right", "up", "down")]
    mask = make_mask("extend", 40, 28, 28, torch.Generator().manual_seed(0))
    sides = {next(i for i, b in enumerate(bands) if torch.equal(m, b)) for m in mask}
    assert sides == {0, 1, 2, 3}


def test_patch_masking_removes_a_quarter_of_the_4x4_patches_reproducibly():
    mask = make_mask("patches", 5, 28, 28, torch.Generator().manual_seed(3))
    assert (mask.flatten(1).sum(1) == 12 * 16).all()  # round(0.25 * 49) patches of 16 pixels
    cells = mask[:, 0].reshape(5, 7, 4, 7, 4)
    assert (cells.all(dim=(2, 4)) == cells.any(dim=(2, 4))).all()  # whole patches only
    assert not torch.equal(mask[0], mask[1])
    assert torch.equal(mask, make_mask("patches", 5, 28, 28, torch.Generator().manual_seed(3)))


def test_mixed_degradation_gives_each_image_one_of_the_four_masks():
    gen = torch.Generator().manual_seed(0)
    _, mask = degrade_mixed(torch.rand(64, 1, 28, 28), KINDS, gen)
    fixed = [make_mask(k, 1, 28, 28)[0] for k in ("center", "outpaint")]
    areas = mask.flatten(1).sum(1)
    assert set(areas.tolist()) <= {196, 588, 192}  # centre / band (7 x 28), outpaint, patches
    assert any(torch.equal(m, fixed[0]) for m in mask) and any(torch.equal(m, fixed[1]) for m in mask)


def test_bad_degradation_requests_raise_errors_that_say_what_to_do():
    with pytest.raises(LetheError, match="center"):
        degrade(torch.rand(1, 1, 28, 28), "blur")
    with pytest.raises(ShapeMismatch):
        degrade(torch.rand(10, 2), "center")


def _card(c: int = 1) -> ModelCard:
    return ModelCard(name="i2i", family="i2i", architecture="conv-i2i", data_shape=[c, 28, 28],
                     hparams={"in_channels": c, "width": 8, "latent_channels": 4})


def test_encoder_maps_to_a_quarter_resolution_code_and_decoder_returns_unit_images():
    bundle = build_conv_i2i(_card(3))
    x = torch.rand(2, 3, 32, 32)
    code = bundle.encode(x)
    assert code.shape == (2, 4, 8, 8)
    out = bundle.decode(code)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(bundle.restore(x), bundle.decode(bundle.encode(x)))
    assert bundle.degradations == KINDS


def test_encoder_rejects_images_it_cannot_encode():
    with pytest.raises(ShapeMismatch, match="divisible by 4"):
        build_conv_i2i(_card()).encode(torch.rand(1, 1, 30, 30))


def test_i2i_save_and_load_round_trip(tmp_path):
    bundle = build_conv_i2i(_card())
    save_bundle(bundle, tmp_path / "m")
    loaded = load_bundle(tmp_path / "m")
    assert isinstance(loaded, I2IBundle)
    xd, _ = degrade(torch.rand(3, 1, 28, 28), "center")
    assert torch.equal(loaded.restore(xd), bundle.eval().restore(xd))
