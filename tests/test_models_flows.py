"""Flow architectures: exact invertibility, log_prob equals the change-of-variables formula (checked against a
brute-force Jacobian), temperature sampling, gradients for fine-tuning, and a save/load round trip."""

from __future__ import annotations

import math

import pytest
import torch

from core.errors import LetheError, ShapeMismatch
from core.models.bundles import FlowBundle
from core.models.card import ModelCard
from core.models.checkpoint import load_bundle, save_bundle
from core.models.flows import ActNorm, InvertibleConv1x1, LogitTransform, squeeze2x2, unsqueeze2x2
from core.models.registry import build


def _glow(shape=(1, 4, 4), levels=2, steps=2, hidden=8, split_prior=0) -> FlowBundle:
    card = ModelCard(name="tiny-glow", family="flow", architecture="glow", data_shape=list(shape),
                     hparams={"levels": levels, "steps": steps, "hidden": hidden, "alpha": 0.05, "n_bits": 8,
                              "split_prior": split_prior})
    return build(card)


def _realnvp(couplings=4, hidden=16) -> FlowBundle:
    card = ModelCard(name="tiny-realnvp", family="flow", architecture="realnvp2d", data_shape=[2],
                     hparams={"couplings": couplings, "hidden": hidden})
    return build(card)


def _perturb(module: torch.nn.Module, scale: float = 0.1) -> None:
    """Move every parameter off its initial value (zero-initialised layers would hide bugs)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


def _initialised_glow(**kw) -> FlowBundle:
    bundle = _glow(**kw)
    bundle.flow.train()
    bundle.flow.log_prob(torch.rand(32, *bundle.data_shape))  # data-dependent actnorm initialisation
    _perturb(bundle.flow, 0.05)
    return bundle.eval()


def test_squeeze_is_a_permutation_and_unsqueeze_undoes_it():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    y = squeeze2x2(x)
    assert y.shape == (2, 12, 2, 3)
    assert torch.equal(y.flatten().sort().values, x.flatten().sort().values)
    assert torch.equal(y[0, :4, 0, 0], torch.tensor([0.0, 1.0, 6.0, 7.0]))  # one 2x2 block becomes 4 channels
    assert torch.equal(unsqueeze2x2(y), x)


@pytest.mark.parametrize("split_prior", [0, 1])
@pytest.mark.parametrize("shape,levels", [((1, 4, 4), 2), ((3, 8, 8), 3)])
def test_glow_inverts_exactly(shape, levels, split_prior):
    bundle = _initialised_glow(shape=shape, levels=levels, split_prior=split_prior)
    assert len(bundle.flow.priors) == split_prior * (levels - 1)
    x = torch.rand(5, *shape)
    z, logdet = bundle.forward(x)
    assert z.shape == (5, math.prod(shape)) and bundle.flow.latent_shape == (math.prod(shape),)
    assert logdet.shape == (5,)
    assert (bundle.inverse(z) - x).abs().max() < 1e-4
    # latent -> image -> latent in float64: random latents land near the cube's faces, where a float32 sigmoid and
    # logit lose digits that no bijection can recover
    flow = bundle.flow.double()
    z2 = torch.randn(5, math.prod(shape), dtype=torch.float64)
    assert (flow(flow.inverse(z2))[0] - z2).abs().max() < 1e-4


def test_realnvp_inverts_exactly():
    bundle = _realnvp()
    _perturb(bundle.flow, 0.5)
    x = 3 * torch.randn(100, 2)
    z, _ = bundle.forward(x)
    assert (bundle.inverse(z) - x).abs().max() < 1e-4


def _brute_force_log_prob(flow: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """log N(f(x)) + log|det J_f(x)| with the Jacobian computed by autograd, one sample at a time."""
    out = []
    for xi in x:
        f = lambda v: flow(v.reshape(1, *xi.shape))[0].reshape(-1)  # noqa: E731
        jac = torch.autograd.functional.jacobian(f, xi).reshape(xi.numel(), xi.numel())
        z = f(xi)
        log_det = torch.linalg.slogdet(jac.double())[1]
        out.append(-0.5 * (z.double().square().sum() + z.numel() * math.log(2 * math.pi)) + log_det)
    return torch.stack(out)


@pytest.mark.parametrize("split_prior", [0, 1])
def test_glow_log_prob_matches_change_of_variables_with_a_brute_force_jacobian(split_prior):
    # with split_prior the learned prior N(mu(y), sigma(y)^2) of the factored half is the bijection
    # (h - mu) / sigma onto a standard-normal latent, so the same formula must hold
    bundle = _initialised_glow(shape=(1, 4, 4), levels=2, steps=2, split_prior=split_prior)
    x = torch.rand(3, 1, 4, 4)
    expected = _brute_force_log_prob(bundle.flow, x)
    assert torch.allclose(bundle.log_prob(x).double(), expected, atol=2e-3)


def test_realnvp_log_prob_matches_change_of_variables_with_a_brute_force_jacobian():
    bundle = _realnvp()
    _perturb(bundle.flow, 0.5)
    x = torch.randn(4, 2)
    assert torch.allclose(bundle.log_prob(x).double(), _brute_force_log_prob(bundle.flow, x), atol=1e-4)


def test_identity_initialised_realnvp_is_the_standard_normal():
    bundle = _realnvp()  # zero-initialised last layers: every coupling is the identity
    x = torch.randn(10, 2)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(x).sum(1)
    assert torch.allclose(bundle.log_prob(x), expected, atol=1e-5)


def test_logit_preprocessing_carries_the_density_onto_the_unit_interval():
    # N(logit(.)) times the logit's Jacobian is a density on [0, 1] whose mass (midpoint rule) is exactly the
    # normal mass between logit(alpha) and logit(1 - alpha): the Jacobian term is right, and the sliver beyond
    # is the documented price of the margin alpha.
    logit = LogitTransform(0.05)
    u = (torch.arange(200000, dtype=torch.float64) + 0.5) / 200000
    y, logdet = logit(u.reshape(-1, 1))
    density = torch.exp(-0.5 * y.reshape(-1) ** 2 - 0.5 * math.log(2 * math.pi) + logdet)
    edge = math.log(0.95 / 0.05)
    assert density.mean().item() == pytest.approx(math.erf(edge / math.sqrt(2)), abs=1e-5)
    assert torch.allclose(logit.inverse(y).reshape(-1), u)


def test_actnorm_initialises_from_the_first_training_batch_only():
    norm = ActNorm(3)
    x = 5 + 2 * torch.randn(64, 3, 4, 4)
    y, logdet = norm(x)
    assert y.mean().abs() < 1e-4 and (y.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3
    expected = -16 * torch.log(x.std(dim=(0, 2, 3))).sum()  # H * W * sum of per-channel log-scales
    assert torch.allclose(logdet, expected.expand(64), atol=1e-3)
    before = norm.bias.clone()
    norm(torch.randn(64, 3, 4, 4))
    assert torch.equal(norm.bias, before), "a second batch must not re-initialise"


def test_invertible_conv_log_determinant_is_that_of_its_weight():
    conv = InvertibleConv1x1(6)
    _perturb(conv)
    x = torch.randn(2, 6, 3, 5)
    _, logdet = conv(x)
    expected = torch.linalg.slogdet(conv.weight())[1] * 15
    assert torch.allclose(logdet, expected.expand(2), atol=1e-4)
    assert torch.allclose(conv.inverse(conv(x)[0]), x, atol=1e-5)


def test_sampling_temperature_scales_the_latent():
    bundle = _realnvp()
    _perturb(bundle.flow, 0.5)
    cold, warm = bundle.sample(500, seed=3, temperature=0.5), bundle.sample(500, seed=3, temperature=1.0)
    z_cold, z_warm = bundle.forward(cold)[0], bundle.forward(warm)[0]
    assert torch.allclose(z_cold, 0.5 * z_warm, atol=1e-4)
    assert torch.equal(bundle.sample(10, seed=3), bundle.sample(10, seed=3))


def test_image_samples_are_clamped_images_and_zero_temperature_is_deterministic():
    bundle = _initialised_glow(shape=(3, 8, 8), levels=2)
    samples = bundle.sample(6, seed=0, temperature=0.7)
    assert samples.shape == (6, 3, 8, 8) and samples.min() >= 0 and samples.max() <= 1
    still = bundle.sample(2, seed=0, temperature=0.0)
    assert torch.allclose(still[0], still[1])


def test_log_prob_is_differentiable_with_respect_to_every_parameter():
    bundle = _initialised_glow(shape=(3, 8, 8), levels=2)
    bundle.flow.train()
    (-bundle.log_prob(torch.rand(4, 3, 8, 8)).mean()).backward()
    missing = [n for n, p in bundle.flow.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    assert any(p.grad.abs().sum() > 0 for p in bundle.flow.parameters())


def test_save_and_load_round_trip_keeps_log_prob_and_samples(tmp_path):
    bundle = _initialised_glow(shape=(3, 8, 8), levels=2)
    x = torch.rand(4, 3, 8, 8)
    save_bundle(bundle, tmp_path / "flow")
    loaded = load_bundle(tmp_path / "flow")
    assert isinstance(loaded, FlowBundle)
    assert torch.allclose(loaded.log_prob(x), bundle.log_prob(x), atol=1e-4)
    assert torch.allclose(loaded.sample(3, seed=1), bundle.sample(3, seed=1), atol=1e-5)
    loaded.flow.train()
    loaded.log_prob(torch.rand(8, 3, 8, 8))  # training mode must not re-initialise a loaded actnorm
    assert torch.allclose(loaded.log_prob(x), bundle.log_prob(x), atol=1e-4)


def test_realnvp_round_trip(tmp_path):
    bundle = _realnvp()
    _perturb(bundle.flow, 0.5)
    save_bundle(bundle, tmp_path / "toy")
    x = torch.randn(5, 2)
    assert torch.allclose(load_bundle(tmp_path / "toy").log_prob(x), bundle.log_prob(x), atol=1e-5)


def test_bad_shapes_and_hyperparameters_raise_clear_errors():
    with pytest.raises(ShapeMismatch, match="divisible by 8"):
        _glow(shape=(1, 28, 28), levels=3)
    with pytest.raises(ShapeMismatch, match="models images of shape"):
        _glow().log_prob(torch.rand(2, 1, 8, 8))
    with pytest.raises(ShapeMismatch, match="2-D points"):
        _realnvp().log_prob(torch.rand(2, 3))
    card = ModelCard(name="bad", family="flow", architecture="glow", data_shape=[1, 4, 4], hparams={"steps": "many"})
    with pytest.raises(LetheError, match="steps"):
        build(card)
