"""A user's own GAN (examples/my_gan.py) loads through a `package.module:factory` spec with no change to Lethe,
samples in Lethe's [0, 1] image convention, and survives Lethe's save / load round trip."""

from __future__ import annotations

import torch

import pytest

from core.models import GANBundle, load_bundle, load_model, save_bundle
from core.models.trust import UntrustedFactory, trusting


def test_factory_spec_loads_a_gan_bundle_named_after_the_factory():
    bundle = load_model("examples.my_gan:build", device="cpu")
    assert isinstance(bundle, GANBundle)
    assert bundle.card.architecture == "factory:examples.my_gan:build"
    assert bundle.data_shape == (1, 28, 28)


def test_factory_gan_samples_images_in_unit_range_and_discriminates_them():
    bundle = load_model("examples.my_gan:build", device="cpu")
    x, labels = bundle.sample(16, seed=0)
    assert labels is None
    assert x.shape == (16, 1, 28, 28)
    assert x.min() >= 0 and x.max() <= 1
    logit, class_logits = bundle.discriminate(x)
    assert logit.shape == (16,) and class_logits is None


def test_factory_gan_round_trips_through_save_bundle_once_its_module_is_trusted(tmp_path):
    bundle = load_model("examples.my_gan:build", device="cpu")
    save_bundle(bundle, tmp_path / "mine")
    with pytest.raises(UntrustedFactory, match="--trust-factory examples.my_gan"):
        load_bundle(tmp_path / "mine")  # a saved card naming a factory is data: refused until trusted
    with trusting(["examples.my_gan"]):
        loaded = load_bundle(tmp_path / "mine")
    z = torch.randn(4, bundle.latent_dim)
    assert torch.equal(loaded.generate(z), bundle.generate(z))
    assert loaded.card.hparams == {"latent_dim": 64, "hidden": 256}
    assert torch.equal(loaded.discriminate(loaded.generate(z))[0], bundle.discriminate(bundle.generate(z))[0])


def test_factory_reads_the_users_own_state_dict_file(tmp_path):
    from examples.my_gan import build

    trained = build()
    torch.save({"generator": trained.generator.state_dict(), "discriminator": trained.discriminator.state_dict()},
               tmp_path / "mine.pt")
    reloaded = build(weights=str(tmp_path / "mine.pt"))
    z = torch.randn(3, 64)
    assert torch.equal(reloaded.generate(z), trained.generate(z))
