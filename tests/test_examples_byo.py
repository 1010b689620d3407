"""The bring-your-own examples, one per family (examples/README.md): each loads through its factory spec, keeps
Lethe's conventions, survives save / load, learns from data in a few seconds, and `show` says what it can do."""

from __future__ import annotations

import pytest
import torch

from core.data import load
from core.models import ClassifierBundle, FlowBundle, GANBundle, I2IBundle, load_bundle, load_model, save_bundle
from core.models.degradations import degrade
from core.overview import model_overview
from examples import classifier, dcgan, flow, i2i

TRUST = "examples.dcgan,examples.flow,examples.i2i,examples.classifier"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny nets run several times faster on one thread than on two threads of a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _applies(bundle, spec: str) -> dict[str, bool]:
    return {v["verb"]: v["applies"] for v in model_overview(bundle, spec)["verbs"]}


def test_dcgan_generator_takes_z_as_n_nz_1_1_and_lethe_reshapes_its_latents():
    gan = load_model("examples.dcgan:build", "cpu")
    assert isinstance(gan, GANBundle) and gan.latent_shape == (32, 1, 1)
    z = gan.sample_latent(3)
    assert z.shape == (3, 32)  # Lethe's own latents stay N x nz ...
    assert torch.equal(gan.generate(z), (gan.generator(z.view(3, 32, 1, 1)) + 1) / 2)  # ... G sees N x nz x 1 x 1
    logit, _ = gan.discriminate(gan.generate(z))
    assert logit.shape == (3,)


def test_dcgan_round_trips_and_is_redactable_when_its_card_names_data(tmp_path, monkeypatch):
    monkeypatch.setenv("LETHE_TRUST_FACTORIES", TRUST)
    gan = dcgan.build(nz=8, ngf=8, ndf=8, data="mnist", image_size=16)
    save_bundle(gan, tmp_path / "g")
    again = load_bundle(tmp_path / "g")
    z = gan.sample_latent(2)
    assert torch.equal(again.eval().generate(z), gan.eval().generate(z))
    assert _applies(gan, str(tmp_path / "g"))["redact"]


def test_zuko_flow_learns_the_gaussian_toy_and_keeps_the_flow_contract(tmp_path, monkeypatch):
    monkeypatch.setenv("LETHE_TRUST_FACTORIES", TRUST)
    bundle = load_model("examples.flow:build", "cpu")
    assert isinstance(bundle, FlowBundle) and bundle.n_bits == 0
    x = load("gaussian2d", "train").x
    before = -bundle.log_prob(x[:500]).mean().item()
    flow.train(bundle, x, steps=60, batch_size=128, lr=1e-2)
    after = -bundle.log_prob(x[:500]).mean().item()
    assert after < before - 0.2 and after < 2.8  # the true density's entropy is 2.33 nats
    z, logdet = bundle.forward(x[:5])
    assert torch.allclose(bundle.inverse(z), x[:5], atol=1e-4) and logdet.shape == (5,)
    assert bundle.sample(7, seed=0).shape == (7, 2)
    save_bundle(bundle, tmp_path / "f")
    assert torch.allclose(load_bundle(tmp_path / "f").log_prob(x[:5]), bundle.log_prob(x[:5]))
    assert _applies(bundle, "examples.flow:build")["tame"]


def test_i2i_example_restores_degraded_images_better_after_training():
    model = load_model("examples.i2i:build", "cpu")
    assert isinstance(model, I2IBundle)
    images = torch.nn.functional.interpolate(load("mnist", "train").x[:128], size=(16, 16), mode="bilinear",
                                             antialias=True)
    degraded, _ = degrade(images, "center", generator=torch.Generator().manual_seed(0))
    error = lambda: torch.nn.functional.mse_loss(model.restore(degraded), images).item()  # noqa: E731
    before = error()
    i2i.train(model, images, epochs=3, batch_size=64, lr=5e-3)
    with torch.no_grad():
        assert error() < 0.7 * before
        assert model.encode(degraded).shape == (128, 8, 4, 4)
    assert not _applies(model, "examples.i2i:build")["sample"]


def test_classifier_example_is_a_judge_with_a_feature_layer():
    judge = load_model("examples.classifier:build", "cpu")
    assert isinstance(judge, ClassifierBundle) and judge.kind == "labels"
    logits, feats = judge.logits_and_features(torch.rand(4, 1, 16, 16))
    assert logits.shape == (4, 2) and feats.shape == (4, 32)
    assert _applies(judge, "examples.classifier:build")["--judge"]
