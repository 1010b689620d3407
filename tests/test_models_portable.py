"""A result or job holding a bundle crosses a process boundary (pickle) as (card, state): spectral-norm GANs too."""

from __future__ import annotations

import pickle

import pytest
import torch

from core.methods.redaction.algorithm import RedactionResult
from core.models import load_model


def test_a_spectral_norm_gan_cannot_be_pickled_as_a_module_but_its_result_can():
    gan = load_model("mnist-dcgan")
    with pytest.raises(RuntimeError, match="state_dict"):
        pickle.dumps(gan.discriminator)  # PyTorch's own refusal, which PortableBundles works around

    copy = pickle.loads(pickle.dumps(RedactionResult(bundle=gan, metrics={"invalidity_after": 0.1})))

    assert copy.metrics == {"invalidity_after": 0.1} and copy.bundle is not gan
    z = gan.sample_latent(8, torch.Generator().manual_seed(0))
    x = torch.rand(8, *gan.data_shape)
    with torch.no_grad():
        assert torch.equal(copy.bundle.generator.eval()(z), gan.generator.eval()(z))
        assert torch.equal(copy.bundle.discriminator.eval()(x), gan.discriminator.eval()(x))
