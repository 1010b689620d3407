"""Data redaction (Kong & Chaudhuri 2023): the equations on known values, the algorithms on a 2-D toy where the
right outcome is obvious (the shipped toy-gan on the correlated Gaussian, redacting the half-plane x0 > 2, about
16% of its mass), the redaction sets on MNIST, the deletion baseline, the redaction scores and Fig. 1."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from core.data import load
from core.errors import Cancelled, EmptySelection, LetheError, NonFiniteError
from core.methods.redaction import RedactionConfig, RedactionSet, deletion_job, redact, redaction_context
from core.methods.redaction.algorithm import guide, guided_bce
from core.methods.redaction.averaging import GeneratorAverage, short_horizon_decay
from core.methods.redaction.deletion import correlated_with, deleted_rows, retrain_without
from core.metrics import wilson_interval
from core.methods.redaction.scores import extremes, label_difficulty, linear_fit, redaction_scores
from core.methods.redaction.sets import (ambiguity_set, attribute_set, boundary_set, fuzzy_expression, label_set,
                                         parse_redaction_spec, union)
from core.methods.redaction.toy1d import deletion_versus_redaction
from core.models import ClassifierBundle, ModelCard, load_model
from core.models.checkpoint import bundle_state
from core.progress import CancelToken

# ---------------------------------------------------------------------------------------------- the equations


def test_guide_is_eq_6():
    d = torch.tensor([0.9, 0.9, 0.9, 0.2])
    f = torch.tensor([0.8, 0.5, 0.0, 0.25])
    out = guide(d, f, tau=0.5, alpha_neg=0.05)
    # f >= tau keeps D; f < tau gives alpha- + (D - alpha-) f, which is alpha- itself where f = 0
    assert torch.allclose(out, torch.tensor([0.9, 0.9, 0.05, 0.05 + 0.15 * 0.25]))


def test_guided_loss_is_eq_3s_term_on_eq_6s_discriminator():
    logit = torch.tensor([-2.0, 0.3, 2.5, 1.0, -0.7])
    f = torch.tensor([0.9, 0.5, 0.2, 0.0, 0.45])
    for target in (0.95, 0.05, 1.0):
        expected = F.binary_cross_entropy(guide(torch.sigmoid(logit), f, 0.5, 0.05), torch.full_like(f, target))
        assert torch.isclose(guided_bce(logit, f, target, tau=0.5, alpha_neg=0.05), expected, rtol=1e-5)


@pytest.mark.parametrize("f_value", [0.9, 1.0, 0.3, 0.0])
def test_guided_loss_keeps_a_finite_non_zero_gradient_where_d_is_sure_a_sample_is_fake(f_value):
    # G's loss -log D'(G(z)) at D's logit -50: a probability clamped at 1e-6 had no gradient there at all.
    logit = torch.tensor([-50.0], requires_grad=True)
    f = torch.tensor([f_value], requires_grad=True)
    loss = guided_bce(logit, f, 1.0, tau=0.5, alpha_neg=0.05)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logit.grad).all() and torch.isfinite(f.grad).all()
    if f_value >= 0.5:  # outside Omega D' = D: the gradient of -logsigmoid(-50) is -(1 - sigmoid(-50)) = -1
        assert float(logit.grad) == pytest.approx(-1.0)
        assert float(loss.detach()) == pytest.approx(50.0, rel=1e-4)
    elif f_value > 0:  # inside Omega D' = alpha- (1 - f) + f D: D's pull f D (1 - D) / D' is tiny but not zero
        assert float(logit.grad) < 0 and float(f.grad) != 0
    else:  # at f = 0 eq. 6 gives D' = alpha- whatever D says; G is moved through f alone
        assert float(logit.grad) == 0 and float(f.grad) != 0


def test_the_classifier_based_algorithm_needs_a_positive_alpha_minus():
    with pytest.raises(LetheError, match="alpha- > 0"):
        RedactionConfig(algorithm="classifier", alpha_neg=0.0).validate()
    RedactionConfig(algorithm="data", alpha_neg=0.0).validate()


def test_fuzzy_expression_matches_the_hard_expression_at_one_half():
    probs = torch.tensor([[0.9, 0.2], [0.9, 0.7], [0.3, 0.1]])
    from core.data.selection import parse_expression

    truth = fuzzy_expression(parse_expression("a & ~b"), probs, ("a", "b"))
    assert torch.allclose(truth, torch.tensor([0.8, 0.3, 0.3]))
    assert ((truth > 0.5) == torch.tensor([True, False, False])).all()


class _FixedLogits(nn.Module):
    """A 'classifier' whose logits are the first `classes` input values: lets a test choose p(y | x)."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes = classes
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, : self.classes] + 0 * self.dummy

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def head_logits(self, h: torch.Tensor) -> torch.Tensor:
        return h[:, : self.classes] + 0 * self.dummy


def _judge(classes: int = 4) -> ClassifierBundle:
    card = ModelCard("fixed", "classifier", "test")
    return ClassifierBundle(card=card, net=_FixedLogits(classes), class_names=tuple(str(i) for i in range(classes)))


def test_ambiguity_is_one_minus_normalised_entropy():
    s = ambiguity_set(_judge(4), tau=0.5)
    confident = torch.tensor([[50.0, 0.0, 0.0, 0.0]])
    uniform = torch.zeros(1, 4)
    assert s.classifier(confident).item() == pytest.approx(1.0, abs=1e-6)
    assert s.classifier(uniform).item() == pytest.approx(0.0, abs=1e-6)
    assert s.invalid(torch.cat([confident, uniform])).tolist() == [False, True]


def test_label_set_rules():
    s = label_set(2, _judge(4))
    x = torch.tensor([[0.0, 0.0, 5.0, 0.0], [5.0, 0.0, 0.0, 0.0]])
    assert s.invalid(x).tolist() == [True, False]
    p2 = torch.softmax(x, 1)[:, 2]
    assert torch.allclose(s.classifier(x), 1 - p2)


def test_union_takes_the_minimum_of_validity_and_classifier():
    a = RedactionSet("a", validity=lambda x: x[:, 0] < 0.5, classifier=lambda x: x[:, 0])
    b = RedactionSet("b", validity=lambda x: x[:, 1] < 0.5, classifier=lambda x: x[:, 1])
    u = union([a, b])
    x = torch.tensor([[0.1, 0.9], [0.7, 0.2], [0.1, 0.1]])
    assert u.invalid(x).tolist() == [True, True, False]
    assert torch.allclose(u.classifier(x), torch.tensor([0.1, 0.2, 0.1]))
    assert u.members is None  # neither part names training samples


def test_boundary_set_leaves_every_training_image_valid_and_catches_a_white_frame():
    train = load("mnist", "train")
    s = boundary_set(train, margin=1)
    assert not s.invalid(train.x).any()
    framed = train.x[:3].clone()
    framed[:, :, 0, :] = 1.0  # a white top row: 28 boundary pixels at full intensity
    assert s.invalid(framed).all()
    with pytest.raises(LetheError, match="makes training images invalid"):
        boundary_set(train, margin=1, threshold=0.5)


def test_label_and_attribute_sets_on_the_zoo_judges():
    mnist = load("mnist", "train")
    s = label_set(0, load_model("mnist-lenet", "cpu"))
    assert int(s.members(mnist).sum()) == int((mnist.labels == 0).sum())
    assert s.invalid(mnist.x[mnist.labels == 0]).float().mean() > 0.95  # the judge sees real zeros as zeros
    faces = load("synthfaces", "test")
    attr = attribute_set("glasses & ~smile", load_model("synthfaces-attributes", "cpu"))
    truth = attr.members(faces)
    agreement = (attr.invalid(faces.x) == truth).float().mean()
    assert agreement > 0.9
    with pytest.raises(LetheError):
        attribute_set("wings", load_model("synthfaces-attributes", "cpu"))


# ------------------------------------------------------------------------------------ the algorithms on a toy


def _half_plane() -> RedactionSet:
    """Omega = {x : x0 > 2}: about 16% of the correlated Gaussian N((1, 1), ...) toy-gan learned."""
    return RedactionSet("x0 > 2", validity=lambda x: x[:, 0] <= 2.0,
                        classifier=lambda x: torch.sigmoid(4.0 * (2.0 - x[:, 0])),
                        members=lambda d: d.x[:, 0] > 2.0)


@pytest.fixture(scope="module")
def toy():
    return load_model("toy-gan", "cpu"), load("gaussian2d", "train")


FAST = dict(epochs=2, eval_samples=4000, batch_size=100)


@pytest.mark.parametrize("algorithm", ["data", "validity", "classifier"])
def test_each_algorithm_redacts_the_half_plane_and_leaves_the_base_untouched(toy, algorithm):
    gan, data = toy
    before = {k: v.clone() for k, v in bundle_state(gan).items()}
    events = []
    result = redact(gan, _half_plane(), data, RedactionConfig(algorithm=algorithm, **FAST), seed=0,
                    progress=events.append)
    m = result.metrics
    assert 0.08 < m["invalidity_before"] < 0.3
    assert m["invalidity_after"] < m["invalidity_before"] / 3
    assert all(torch.equal(before[k], v) for k, v in bundle_state(gan).items())  # the original is never modified
    assert result.bundle.card.parent == gan.card.name
    epochs = [e.metrics["epoch"] for e in events]
    assert epochs[0] == 0 and epochs[-1] == 2 and sum(0 < e < 1 for e in epochs) == 3  # finer in epoch 1
    assert all("invalidity_se" in e.metrics for e in events)
    if algorithm == "validity":
        assert m["validity_queries"] == len(data) + 2 * 1000  # |X| + T R
    # the rest of the distribution survives: samples stay near the data's mean on the valid side
    kept, _ = result.bundle.sample(2000, seed=3)
    assert abs(float(kept[:, 1].mean()) - float(data.x[data.x[:, 0] <= 2, 1].mean())) < 0.4


def test_redaction_reports_the_moving_average_of_g_when_the_pre_trained_g_is_one(toy):
    gan, data = toy
    live = redact(gan, _half_plane(), data, RedactionConfig(**{**FAST, "epochs": 1}), seed=0)
    assert live.metrics["generator_ema"] == 0 and "live G" in live.metrics["generator"]  # toy-gan keeps no average
    averaged_gan = gan.copy()
    averaged_gan.card.training = {**gan.card.training, "generator_ema": 0.995}
    short = redact(averaged_gan, _half_plane(), data, RedactionConfig(**{**FAST, "epochs": 1}), seed=0)
    steps = (len(data) - int((data.x[:, 0] > 2).sum())) // FAST["batch_size"]
    assert short.metrics["generator_ema"] == pytest.approx(1 - 10 / steps)  # the horizon fits a tenth of the run
    assert short.bundle.card.training["generator_ema"] == short.metrics["generator_ema"]
    # An average that barely moves (decay -> 1) reports the pre-trained G: invalidity stays where it started.
    frozen = redact(averaged_gan, _half_plane(), data, RedactionConfig(**{**FAST, "epochs": 1}, ema=0.999999), seed=0)
    g0, g1 = gan.generator.state_dict(), frozen.bundle.generator.state_dict()
    assert all(torch.allclose(g0[k].float(), g1[k].float(), atol=1e-3) for k in g0)
    assert frozen.metrics["invalidity_after"] == pytest.approx(frozen.metrics["invalidity_before"], abs=0.01)
    assert live.metrics["invalidity_after"] < live.metrics["invalidity_before"] / 2


def test_the_moving_average_follows_the_zoo_update_rule():
    live = nn.Linear(2, 1)
    average = GeneratorAverage(live, decay=0.9)
    start = live.weight.detach().clone()
    with torch.no_grad():
        live.weight.add_(1.0)
    average.update()
    assert torch.allclose(average.module.weight, 0.9 * start + 0.1 * (start + 1.0))
    assert short_horizon_decay(0.995, 56) == pytest.approx(1 - 10 / 56) and short_horizon_decay(0.995, 10_000) == 0.995
    assert short_horizon_decay(0.0, 56) == 0.0 and short_horizon_decay(0.995, 5) == 0.0


def test_every_algorithm_measures_quality_against_the_same_valid_training_samples(toy):
    # Members (x0 > 1.5) differ from the validity rule (x0 > 2), so the data- and validity-based algorithms train
    # on different real data; their FID must still compare with one reference, the valid training samples.
    gan, data = toy
    wide = RedactionSet("x0 > 2", validity=lambda x: x[:, 0] <= 2.0,
                        classifier=lambda x: torch.sigmoid(4.0 * (2.0 - x[:, 0])), members=lambda d: d.x[:, 0] > 1.5)
    config = dict(epochs=1, eval_samples=1000, batch_size=100, first_epoch_checks=1)
    runs = {a: redact(gan, wide, data, RedactionConfig(algorithm=a, **config), seed=0, judge=_judge(2)).metrics
            for a in ("data", "validity")}
    assert runs["data"]["real_size"] != runs["validity"]["real_size"]
    for m in runs.values():
        assert m["fid_reference_size"] == int((data.x[:, 0] <= 2).sum())
    assert runs["data"]["fid_before"] == pytest.approx(runs["validity"]["fid_before"], rel=1e-9)


def test_invalidity_comes_with_its_wilson_interval(toy):
    gan, data = toy
    m = redact(gan, _half_plane(), data, RedactionConfig(**{**FAST, "epochs": 1}), seed=0).metrics
    for when in ("before", "after"):
        n_invalid = round(m[f"invalidity_{when}"] * FAST["eval_samples"])
        assert (m[f"invalidity_{when}_lower"], m[f"invalidity_{when}_upper"]) == wilson_interval(n_invalid, 4000)
        assert m[f"invalidity_{when}_lower"] <= m[f"invalidity_{when}"] <= m[f"invalidity_{when}_upper"]


def test_fixed_discriminator_updates_only_g(toy):
    gan, data = toy
    result = redact(gan, _half_plane(), data, RedactionConfig(algorithm="classifier", fixed_discriminator=True,
                                                              epochs=1, eval_samples=1000, batch_size=100))
    d0, d1 = gan.discriminator.state_dict(), result.bundle.discriminator.state_dict()
    assert all(torch.equal(d0[k], d1[k]) for k in d0)
    g0, g1 = gan.generator.state_dict(), result.bundle.generator.state_dict()
    assert any(not torch.equal(g0[k], g1[k]) for k in g0)


def test_bad_inputs_fail_clearly(toy):
    gan, data = toy
    nowhere = RedactionSet("x0 > 100", validity=lambda x: x[:, 0] <= 100, members=lambda d: d.x[:, 0] > 100)
    with pytest.raises(EmptySelection, match="Alg. 1 has nothing to redact"):
        redact(gan, nowhere, data, RedactionConfig(**FAST))
    with pytest.raises(LetheError, match="has no classifier"):
        redact(gan, nowhere, data, RedactionConfig(algorithm="classifier", **FAST))
    with pytest.raises(LetheError, match="lambda"):
        redact(gan, _half_plane(), data, RedactionConfig(lam=0.0))
    nan_f = RedactionSet("nan", validity=lambda x: x[:, 0] <= 2, classifier=lambda x: x[:, 0] * float("nan"),
                         members=lambda d: d.x[:, 0] > 2)
    with pytest.raises(NonFiniteError, match="pre-trained model is unchanged"):
        redact(gan, nan_f, data, RedactionConfig(algorithm="classifier", **FAST))
    with pytest.raises(LetheError, match="generates"):  # MNIST images for a GAN of 2-D points
        redact(gan, _half_plane(), load("mnist", "train"), RedactionConfig(**FAST))
    with pytest.raises(LetheError, match="conditional"):
        redact(load_model("toy-acgan", "cpu"), _half_plane(), load("clusters6", "train"), RedactionConfig())
    cancel = CancelToken()
    cancel.set()
    with pytest.raises(Cancelled):
        redact(gan, _half_plane(), data, RedactionConfig(**FAST), cancel=cancel)


def test_deletion_baseline_retrains_from_scratch_without_the_set(toy):
    gan, data = toy
    x_retain = data.x[data.x[:, 0] <= 2]
    model, seconds = retrain_without(gan, x_retain, seed=0, epochs=2)
    assert seconds > 0 and model.card.training["epochs"] == 2 and model.card.training["size"] == len(x_retain)
    assert model.card.training["generator_ema"] is None  # toy-gan's recipe keeps no average
    assert model.card.architecture == gan.card.architecture
    assert not torch.equal(model.generator.state_dict()["net.0.weight"], gan.generator.state_dict()["net.0.weight"])
    ctx = redaction_context(gan, _half_plane(), data=data)
    result = deletion_job(gan, ctx, "data", epochs=1, eval_samples=2000)(lambda e: None, CancelToken())
    assert result.metrics["deleted"] == int((data.x[:, 0] > 2).sum()) and result.metrics["deleted_correlated"] == 0
    assert 0 <= result.metrics["invalidity_after"] <= result.metrics["invalidity_after_upper"] <= 1
    assert result.metrics["deletion_variant"] == "exact" and "live G" in result.metrics["generator"]
    with pytest.raises(LetheError, match="images"):  # correlation between 2-D points says nothing
        deletion_job(gan, ctx, "data", variant="correlated")
    with pytest.raises(LetheError, match="variant"):
        deletion_job(gan, ctx, "data", variant="nearby")


def test_correlated_deletion_adds_the_samples_that_correlate_with_a_member():
    # Table III's variant: a member's copy with other brightness and contrast correlates perfectly with it, a
    # noisy copy strongly; an unrelated image and the member's negative do not.
    gen = torch.Generator().manual_seed(0)
    member, unrelated = torch.rand(2, 1, 8, 8, generator=gen)
    noisy = member + 0.1 * torch.randn(1, 8, 8, generator=gen)
    x = torch.stack([member, 0.5 * member + 0.2, noisy, unrelated, 1.0 - member])
    members = torch.tensor([True, False, False, False, False])
    assert deleted_rows(x, members, "exact").tolist() == [True, False, False, False, False]
    assert deleted_rows(x, members, "correlated").tolist() == [True, True, True, False, False]
    assert deleted_rows(x, members, "correlated", max_distance=0.0).tolist() == [True, True, False, False, False]
    with pytest.raises(LetheError, match="cosine distance"):
        correlated_with(x, members, max_distance=1.5)
    mnist = load("mnist", "train")
    zeros = mnist.labels == 0
    wider = deleted_rows(mnist.x, zeros, "correlated")
    assert bool(wider[zeros].all()) and int(zeros.sum()) < int(wider.sum()) < int(zeros.sum()) + 200


# --------------------------------------------------------------------------------------- scores and Fig. 1


def test_a_shortened_retrain_averages_g_over_a_horizon_it_can_reach():
    from core.methods.redaction.deletion import _short_average
    from core.zoo.gans import DCGANRecipe

    short = _short_average(DCGANRecipe(epochs=2), 3600)  # 2 x 56 generator steps
    assert short.ema == pytest.approx(1 - 10 / 112)
    assert _short_average(DCGANRecipe(), 3600).ema == 0.995  # the full 60-epoch run keeps the zoo's average


def test_linear_fit_recovers_a_line():
    x = np.linspace(0, 1, 20)
    fit = linear_fit(x, 2 * x + 1)
    assert fit.slope == pytest.approx(2) and fit.intercept == pytest.approx(1) and fit.r2 == pytest.approx(1)
    noisy = linear_fit(x, np.r_[np.zeros(10), np.ones(10)])
    assert 0 < noisy.r2 < 1


def test_redaction_scores_of_a_model_against_itself_are_zero(toy):
    gan, data = toy
    scores = redaction_scores(gan, gan, data.x[:50], data.ids[:50], labels=torch.arange(50) % 2)
    assert np.allclose(scores["rs"], 0) and np.allclose(scores["rs_rel"], 0)
    table = label_difficulty(scores)
    assert list(table.columns[:2]) == ["label", "mean_rs"] and len(table) == 2
    easiest, hardest = extremes(scores, k=3)
    assert len(easiest) == len(hardest) == 3


def test_fig_1_deletion_is_not_redaction():
    r = deletion_versus_redaction(n=80, seed=0)
    assert r.omega_mass["p_data"] == pytest.approx(2 * (1 - 0.5 * (1 + math.erf(1.5 / math.sqrt(2)))))
    assert r.omega_mass["re-trained A(X minus X')"] > 0.005  # deletion leaves mass on Omega
    assert r.omega_mass["redaction target p_data restricted"] == 0.0
    assert np.trapezoid(r.densities["redaction target p_data restricted"], r.grid) == pytest.approx(1, abs=1e-2)


# ------------------------------------------------------------------------------------------------ specs


def test_parse_redaction_spec_builds_unions_and_kinds():
    gan = load_model("mnist-dcgan", "cpu")
    ctx = redaction_context(gan, "label=0 + boundary=1")
    assert "label 0" in ctx.redaction_set.name and "boundary" in ctx.redaction_set.name
    assert ctx.redaction_set.members is not None
    two = parse_redaction_spec("label=3,5", ctx.data, ctx.judges)
    assert int(two.members(ctx.data).sum()) == int(((ctx.data.labels == 3) | (ctx.data.labels == 5)).sum())
    picked = parse_redaction_spec("ids=0-9", ctx.data, ctx.judges)
    chosen = picked.members(ctx.data)
    assert int(chosen.sum()) == int((ctx.data.ids <= 9).sum())
    assert picked.invalid(ctx.data.x[chosen]).all()  # a training sample's nearest neighbour is itself
    assert ambiguity_set is not None and parse_redaction_spec("ambiguity", ctx.data, ctx.judges).classifier
    with pytest.raises(LetheError, match="--tau"):
        parse_redaction_spec("ambiguity=0.3", ctx.data, ctx.judges, tau=0.5)
    with pytest.raises(EmptySelection):
        parse_redaction_spec("  ", ctx.data, ctx.judges)


def test_the_redact_verb_prints_the_promised_json(capsys, tmp_path):
    from core.cli import main

    code = main(["redact", "mnist-dcgan", "--forget", "label=0", "--algorithm", "data", "--epochs", "1",
                 "--batch-size", "256", "--eval-samples", "1000", "--runs-dir", str(tmp_path), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("invalidity_before", "invalidity_after", "invalidity_after_upper", "is_before", "is_after",
                "fid_after", "fid_reference_size", "generator", "generator_ema", "seconds", "model"):
        assert key in out, key
    assert 0 < out["generator_ema"] < 0.995  # mnist-dcgan's average, shortened to a 14-step run
    assert out["invalidity_after"] < out["invalidity_before"]
    assert load_model(out["model"], "cpu").card.parent == "mnist-dcgan"


def test_the_redact_verb_rejects_a_flow_and_an_empty_set(capsys, tmp_path):
    from core.cli import main

    assert main(["redact", "toy-flow", "--forget", "label=0", "--runs-dir", str(tmp_path)]) == 2
    assert "works on gan models" in capsys.readouterr().err
    assert main(["redact", "mnist-dcgan", "--forget", "ids=999999", "--runs-dir", str(tmp_path)]) == 2
    assert "out of range: this dataset has ids" in capsys.readouterr().err
    assert main(["redact", "mnist-dcgan", "--forget", "label=0", "--baseline", "deletion", "--deletion-variant",
                 "correlated", "--correlated-distance", "1.5", "--runs-dir", str(tmp_path)]) == 2
    assert "cosine distance" in capsys.readouterr().err
