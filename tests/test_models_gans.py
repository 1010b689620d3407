"""The GAN architectures: shapes, output ranges, logits without sigmoid, conditioning, and the card round trip."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils import parametrize

from core.models import GANBundle, ModelCard, load_bundle, save_bundle
from core.models.registry import build

SMALL = {
    "dcgan28": {"width": 8},
    "dcgan32": {"width": 8},
    "fcgan": {},
    "acgan28": {"fc_width": 32, "width": 8},
    "fc-acgan": {"hidden": 16},
}


def _gan(arch: str, **hparams) -> GANBundle:
    return build(ModelCard(name=f"test-{arch}", family="gan", architecture=arch, hparams={**SMALL[arch], **hparams}))


@pytest.mark.parametrize("arch,shape,classes", [
    ("dcgan28", (1, 28, 28), 0), ("dcgan32", (3, 32, 32), 0), ("fcgan", (2,), 0), ("acgan28", (1, 28, 28), 10), ("fc-acgan", (2,), 2),
])
def test_builder_sets_shape_classes_and_complete_hparams(arch, shape, classes):
    gan = _gan(arch)
    assert gan.data_shape == shape
    assert gan.num_classes == classes
    assert gan.card.hparams["latent_dim"] == gan.latent_dim  # defaults are written back into the card
    x, y = gan.sample(6, seed=0)
    assert x.shape == (6, *shape)
    assert (y is None) == (classes == 0)


@pytest.mark.parametrize("arch", ["dcgan28", "dcgan32", "acgan28"])
def test_image_generators_end_in_tanh_so_samples_lie_in_unit_range(arch):
    gan = _gan(arch)
    assert gan.pixel_range == (-1.0, 1.0)
    with torch.no_grad():
        gan.generator.deconv[-2].bias.fill_(10.0)  # saturate the last layer: tanh clips, nothing escapes
    x, _ = gan.sample(4, seed=0)
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.99


@pytest.mark.parametrize("arch", ["fcgan", "fc-acgan"])
def test_toy_generators_are_unbounded_with_no_pixel_range(arch):
    gan = _gan(arch)
    assert gan.pixel_range is None
    with torch.no_grad():
        gan.generator.net[-1].bias.fill_(5.0)
    x, _ = gan.sample(4, seed=0)
    assert x.min() > 3.0  # raw values pass through: a tanh or a [0, 1] mapping would cap them


@pytest.mark.parametrize("arch", ["dcgan28", "dcgan32", "fcgan", "acgan28", "fc-acgan"])
def test_discriminators_return_logits_not_probabilities(arch):
    gan = _gan(arch)
    with torch.no_grad():
        gan.discriminator.logit.bias.fill_(6.0)
    x, _ = gan.sample(5, seed=0)
    logit, class_logits = gan.discriminate(x)
    assert logit.shape == (5,)
    assert (logit > 1.0).all()  # a sigmoid would keep it below 1
    assert (class_logits is None) == (gan.num_classes == 0)
    if class_logits is not None:
        assert class_logits.shape == (5, gan.num_classes)


@pytest.mark.parametrize("arch", ["acgan28", "fc-acgan"])
def test_conditional_generator_depends_on_the_label(arch):
    gan = _gan(arch).eval()
    z = torch.randn(3, gan.latent_dim)
    a = gan.generate(z, torch.zeros(3, dtype=torch.long))
    b = gan.generate(z, torch.ones(3, dtype=torch.long))
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("arch", ["acgan28", "fc-acgan"])
def test_conditional_discriminators_use_spectral_norm(arch):
    gan = _gan(arch)
    parametrized = [m for m in gan.discriminator.modules() if parametrize.is_parametrized(m, "weight")]
    assert len(parametrized) >= 3


@pytest.mark.parametrize("arch,layers", [("dcgan28", 3), ("dcgan32", 4)])
def test_dcgan_discriminator_normalisation_is_a_card_choice(arch, layers):
    batch, spectral = _gan(arch), _gan(arch, d_norm="spectral")
    assert batch.card.hparams["d_norm"] == "batch"  # DCGAN's default
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in batch.discriminator.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in spectral.discriminator.modules())
    assert sum(parametrize.is_parametrized(m, "weight") for m in spectral.discriminator.modules()) == layers


def test_dcgan32_hidden_fc_layer_and_registry_build():
    gan = _gan("dcgan32", fc_width=16, d_norm="spectral", latent_dim=32)
    assert gan.card.hparams == {"latent_dim": 32, "width": 8, "channels": 3, "d_norm": "spectral", "fc_width": 16}
    assert isinstance(gan.generator.project[0], torch.nn.Linear) and gan.generator.project[0].out_features == 16
    x, _ = gan.sample(3, seed=1)
    assert x.shape == (3, 3, 32, 32) and x.min() >= 0 and x.max() <= 1
    logit, _ = gan.discriminate(x)
    assert logit.shape == (3,)


def test_width_hyperparameter_changes_the_modules():
    narrow, wide = _gan("dcgan28", width=8), _gan("dcgan28", width=16)
    count = lambda g: sum(p.numel() for p in g.generator.parameters())  # noqa: E731
    assert count(wide) > count(narrow)


@pytest.mark.parametrize("arch,extra", [
    ("dcgan28", {}), ("dcgan28", {"d_norm": "spectral"}), ("dcgan32", {}),
    ("dcgan32", {"d_norm": "spectral", "fc_width": 16}), ("fcgan", {}), ("acgan28", {}), ("fc-acgan", {}),
])
def test_every_architecture_round_trips_through_safetensors(arch, extra, tmp_path):
    gan = _gan(arch, **extra).eval()
    gan.sample(8, seed=0)  # spectral-norm power-iteration buffers are part of the saved state
    save_bundle(gan, tmp_path / arch, dtype=torch.float16)
    loaded = load_bundle(tmp_path / arch)
    z = torch.randn(4, gan.latent_dim)
    y = torch.arange(4) % gan.num_classes if gan.conditional else None
    assert loaded.card.hparams == gan.card.hparams
    torch.testing.assert_close(loaded.generate(z, y), gan.generate(z, y), atol=2e-2, rtol=0)
    torch.testing.assert_close(loaded.discriminate(gan.generate(z, y))[0], gan.discriminate(gan.generate(z, y))[0],
                               atol=2e-2, rtol=0)
