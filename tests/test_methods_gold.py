"""GOLD (core.methods.gold): the estimator's terms on a hand-built cGAN whose discriminator is known in closed form
(eq. 3, 4, 8, 9), rejection sampling (eq. 6) keeping the better samples and exactly the number asked for, the
`gold` verb, and bad inputs (each a clear LetheError, nothing written)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from core.cli import main
from core.data import load
from core.errors import LetheError, NonFiniteError
from core.methods.gold import training
from core.methods.gold import (ActiveConfig, ReweightConfig, acceptance_logit, active_learning, query, reweight,
                               reweight_power, rounds_table, balance_ratio, calibrate, check_gold_model, check_p,
                               rejection_sample, score, score_generated)
from core.models.bundles import GANBundle
from core.models.card import ModelCard
from core.models.spec import load_model


class ShiftGenerator(nn.Module):
    """G(z, y) = z + 3y: class 0 around 0, class 1 around 3 (1-D points)."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return z + 3.0 * y.reshape(-1, 1).to(z.dtype) + self.anchor


class KnownDiscriminator(nn.Module):
    """D_G logit = 2x (samples further right look more real); D_C logits = (0, x) so D_C(1|x) = sigmoid(x).
    With `heads=1` it returns the logit only (no auxiliary classifier); `poison` puts NaN in the logit."""

    def __init__(self, heads: int = 2, poison: bool = False) -> None:
        super().__init__()
        self.heads, self.poison = heads, poison
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor):
        logit = 2.0 * x + self.anchor
        if self.poison:
            logit = logit * float("nan")
        if self.heads == 1:
            return logit
        return logit, torch.cat([torch.zeros_like(x), x], 1)


def known_gan(**d_options) -> GANBundle:
    card = ModelCard(name="known", family="gan", architecture="hand-built", data_shape=[1])
    return GANBundle(card=card, generator=ShiftGenerator(), discriminator=KnownDiscriminator(**d_options),
                     latent_dim=1, num_classes=2, pixel_range=None)


# ------------------------------------------------------------------------------------------- eq. 3, 4, 8, 9


def test_marginal_is_the_logit_and_conditional_is_log_dc_of_the_class():
    gan = known_gan()
    x = torch.tensor([[-1.0], [0.0], [2.0]])
    y = torch.tensor([1, 0, 1])
    s = score(gan, x, y, "generated")
    torch.testing.assert_close(s.marginal, torch.tensor([-2.0, 0.0, 4.0]))
    expected = torch.tensor([math.log(1 / (1 + math.e)), math.log(0.5), math.log(1 / (1 + math.exp(-2)))])
    torch.testing.assert_close(s.conditional, expected)
    torch.testing.assert_close(s.gold(), s.marginal + s.conditional)


def test_real_samples_subtract_the_conditional_term():
    gan = known_gan()
    x, y = torch.tensor([[1.0], [-3.0]]), torch.tensor([0, 0])
    generated, real = score(gan, x, y, "generated"), score(gan, x, y, "real")
    torch.testing.assert_close(real.gold(), real.marginal - generated.conditional)
    assert (real.gold() >= real.marginal).all(), "log D_C <= 0, so a real sample's GOLD is at least its marginal"


def test_terms_stay_finite_for_saturated_logits():
    s = score(known_gan(), torch.tensor([[500.0], [-500.0]]), torch.tensor([0, 1]), "generated")
    torch.testing.assert_close(s.marginal, torch.tensor([1000.0, -1000.0]))
    torch.testing.assert_close(s.conditional, torch.tensor([-500.0, -500.0]))


def test_unlabeled_term_is_the_entropy_of_dc():
    s = score(known_gan(), torch.tensor([[0.0], [40.0]]), None, "unlabeled")
    torch.testing.assert_close(s.conditional, torch.tensor([math.log(2), 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(s.gold(), s.marginal + s.conditional)  # eq. 8


def test_balanced_gold_scales_the_conditional_term_by_the_ratio_of_standard_deviations():
    x, s = score_generated(known_gan(), 400, seed=0)
    ratio = s.balance_ratio()
    assert ratio == pytest.approx(float(s.marginal.std() / s.conditional.std()))
    torch.testing.assert_close(s.gold(ratio), s.marginal + ratio * s.conditional)  # eq. 4
    balanced = s.gold(ratio) - s.marginal
    assert float(balanced.std()) == pytest.approx(float(s.marginal.std()), rel=1e-4)


def test_score_generated_draws_the_asked_class():
    _, s = score_generated(known_gan(), 50, seed=1, labels=1)
    assert (s.labels == 1).all() and len(s) == 50


# ------------------------------------------------------------------------------------------------ eq. 6


def test_acceptance_logit_is_the_logit_of_r_and_never_infinite_at_the_maximum():
    d = torch.tensor([-3.0, -1.0, 0.0])
    f = acceptance_logit(d, log_m=0.0)
    assert torch.isfinite(f).all()
    r = torch.exp(d[:2])
    torch.testing.assert_close(f[:2], torch.log(r / (1 - r)), atol=1e-4, rtol=1e-4)


def test_rejection_draws_exactly_n_and_keeps_the_samples_d_rates_higher():
    gan = known_gan()
    plain_x, plain = score_generated(gan, 4000, seed=5)
    result = rejection_sample(gan, 777, p=0.5, seed=5, burn_in_size=4000)
    assert len(result.x) == len(result.labels) == 777
    assert 0 < result.acceptance_rate < 1 and result.proposed >= 777
    ratio = result.calibration.ratio
    assert float(result.scores.gold(ratio).mean()) > float(plain.gold(ratio).mean()) + 0.3
    shares = torch.bincount(result.labels, minlength=2).float() / 777
    assert (shares - 0.5).abs().max() < 0.08, "per-class shifts keep the labels uniform"


def test_a_larger_percentile_rejects_more():
    gan = known_gan()
    calib = {p: calibrate(score_generated(gan, 4000, seed=2)[1], p, 2) for p in (0.1, 0.5, 0.9)}
    rates = [rejection_sample(gan, 500, p, seed=3, calibration=calib[p]).acceptance_rate for p in (0.1, 0.5, 0.9)]
    assert rates[0] > rates[1] > rates[2]


def test_rejection_of_one_class_returns_only_that_class():
    result = rejection_sample(known_gan(), 60, 0.1, seed=0, label=1, burn_in_size=1000)
    assert (result.labels == 1).all() and len(result.x) == 60


# ----------------------------------------------------------------------------------------------- bad inputs


def test_models_gold_cannot_score_are_refused_clearly():
    with pytest.raises(LetheError, match="unconditional"):
        check_gold_model(load_model("toy-gan"))
    with pytest.raises(LetheError, match="auxiliary classifier"):
        check_gold_model(known_gan(heads=1))
    check_gold_model(known_gan())


def test_class_out_of_range_and_p_outside_the_unit_interval_are_refused():
    gan = known_gan()
    with pytest.raises(LetheError, match="class 2 is out of range"):
        score_generated(gan, 5, labels=2)
    with pytest.raises(LetheError, match="class -1 is out of range"):
        score(gan, torch.zeros(2, 1), torch.tensor([0, -1]), "real")
    for p in (-0.1, 1.0, 1.5):
        with pytest.raises(LetheError, match=r"\[0, 1\)"):
            check_p(p)
    check_p(0.0)


def test_nan_scores_raise_a_non_finite_error():
    with pytest.raises(NonFiniteError, match="NaN or infinite"):
        score_generated(known_gan(poison=True), 10)
    with pytest.raises(LetheError, match="sigma_C = 0"):
        balance_ratio(torch.randn(5), torch.zeros(5))


# ------------------------------------------------------------------------------------------- command line


def _run(argv, capsys):
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_gold_score_writes_one_csv_row_per_sample(tmp_path, capsys):
    out = tmp_path / "scores.csv"
    code, result = _run(["gold", "toy-acgan", "score", "-n", "300", "--out", str(out)], capsys)
    assert code == 0 and result["n"] == 300
    table = pd.read_csv(out)
    assert list(table.columns) == ["id", "label", "marginal", "conditional", "gold", "gold_balanced"]
    assert len(table) == 300
    np.testing.assert_allclose(table.gold, table.marginal + table.conditional, rtol=1e-5, atol=1e-5)
    code, result = _run(["gold", "toy-acgan", "score", "--on", "real", "--class", "1", "--out", str(out)], capsys)
    table = pd.read_csv(out)
    assert code == 0 and (table.label == 1).all()
    np.testing.assert_allclose(table.gold, table.marginal - table.conditional, rtol=1e-5, atol=1e-5)


def test_gold_sample_draws_exactly_n_with_rejection(tmp_path, capsys):
    out = tmp_path / "accepted.npy"
    code, result = _run(["gold", "toy-acgan", "sample", "-n", "123", "--reject", "0.5", "--burn-in", "2000",
                         "--out", str(out)], capsys)
    assert code == 0 and result["n"] == 123 and 0 < result["acceptance_rate"] < 1
    assert np.load(out).shape == (123, 2) and np.load(tmp_path / "accepted.labels.npy").shape == (123,)


@pytest.mark.parametrize("argv, message", [
    (["gold", "toy-gan", "score", "--out", "X.csv"], "unconditional"),
    (["gold", "toy-acgan", "sample", "--reject", "1.0", "--out", "X.npy"], "[0, 1)"),
    (["gold", "toy-acgan", "score", "--class", "7", "--out", "X.csv"], "class 7 is out of range"),
    (["gold", "toy-acgan", "score", "--out", "X.txt"], ".csv"),
    (["gold", "toy-acgan", "active", "--val-size", "2000"], "the held-out set has 2000"),
    (["gold", "toy-acgan", "active", "--lambda-c", "-0.1"], "lambda_c must be >= 0"),
])
def test_gold_verb_refuses_bad_input_before_any_run_exists(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    code, result = _run([*argv, "--runs-dir", str(runs)], capsys)
    assert code == 2 and message in result["error"] and result["hint"]
    assert not list(runs.glob("*")) and not list(tmp_path.glob("X.*"))


# ------------------------------------------------------------------------------------ eq. 5 and Sec. 3.2


def test_reweight_power_keeps_the_sign_and_beta_zero_is_one():
    d = torch.tensor([-2.0, 0.5, 3.0])
    torch.testing.assert_close(reweight_power(d, 1.0), d)
    torch.testing.assert_close(reweight_power(d, 2.0), torch.tensor([-4.0, 0.25, 9.0]))
    torch.testing.assert_close(reweight_power(d, 0.0), torch.ones(3))


def test_reweighting_forks_baseline_and_gold_from_the_same_first_half():
    data, test = load("clusters6", "train"), load("clusters6", "test")
    config = ReweightConfig(epochs=2, train_size=1024, gold_samples=200, fc_samples=300, fc_epochs=1)
    out = reweight(load_model("toy-acgan"), data.subset(torch.arange(1024)), test, config, seed=0)
    branches = [row["branch"] for row in out["history"]]
    assert branches == ["both", "baseline", "gold"]
    m = out["metrics"]
    assert {"gold_mean_baseline", "gold_mean_gold", "fitting_capacity_baseline", "fitting_capacity_gold"} <= set(m)
    assert m["gold_mean_gold"] != m["gold_mean_baseline"], "the re-weighted loss changed the second half"


def test_gold_queries_are_the_true_top_k_of_eq_8():
    gan = known_gan()
    x = torch.tensor([[0.0], [5.0], [-4.0], [2.0], [1.0]])
    known = torch.tensor([False, True, False, False, False])
    picked = query(gan, x, known, 2, "gold", balanced=False, seed=0)
    s = score(gan, x, None, "unlabeled")
    expected = (~known).nonzero().reshape(-1)[s.gold()[~known].argsort(descending=True)[:2]]
    assert picked.tolist() == expected.tolist() and 1 not in picked.tolist()


def test_active_learning_reveals_the_schedule_and_refuses_a_pool_without_labels():
    data, test = load("clusters6", "train"), load("clusters6", "test")
    config = ActiveConfig.for_dataset("clusters6", epochs=1, pool_size=256, fc_samples=200, fc_epochs=1)
    out = active_learning(load_model("toy-acgan"), data, test, config, seed=0)
    assert [row["labelled"] for row in out["history"]] == [4, 5, 6, 7, 8]
    assert sorted(out["rounds"][out["rounds"] >= 0].tolist()) == [0, 0, 0, 0, 1, 2, 3, 4]
    unlabeled = dataclasses.replace(data, labels=None)
    with pytest.raises(LetheError, match="no labels at all"):
        active_learning(load_model("toy-acgan"), unlabeled, test, config)


def weights_of(model: GANBundle, *parts: str) -> torch.Tensor:
    """The named players' parameters as one flat copy, to tell one epoch's model from another."""
    return torch.cat([p.detach().reshape(-1).clone() for part in parts
                      for p in getattr(model, part).parameters()])


def test_active_learning_trains_every_round_with_the_configs_lambda_c(monkeypatch):
    """Default: ACGANRecipe's 0.1 and the last epoch (measured better on our cGANs); the paper's Sec. 4 rules ("lambda_c
    = 0.01 and lambda_c = 0 for synthetic/MNIST and FMNIST/SVHN datasets", 100 validation images) are settings."""
    assert {(ActiveConfig.for_dataset(d).lambda_c, ActiveConfig.for_dataset(d).val_size)
            for d in ("clusters6", "mnist", "fashion-mnist", "points.npz")} == {(0.1, 0)}
    recipes, real_fit = [], training.fit_acgan
    monkeypatch.setattr(training, "fit_acgan", lambda gan, x, y, recipe, *a, **kw: (recipes.append(recipe),
                                                                                   real_fit(gan, x, y, recipe, *a,
                                                                                            **kw))[1])
    data, test = load("clusters6", "train"), load("clusters6", "test")
    config = ActiveConfig.for_dataset("fashion-mnist", initial=4, query=1, final=5, per_class=False, epochs=2,
                                      pool_size=256, fc_samples=200, fc_epochs=1, lambda_c=0.0, val_size=100)
    out = active_learning(load_model("toy-acgan"), data, test, config, seed=0)
    assert [r.lambda_c for r in recipes] == [0.0, 0.0]  # both rounds
    assert out["metrics"]["config_lambda_c"] == 0.0 and out["metrics"]["config_val_size"] == 100
    assert all(row["best_epoch"] in (1, 2) and 0 <= row["val_fitting_capacity"] <= 1 for row in out["history"])


def test_each_round_queries_reports_and_goes_on_with_the_epoch_best_on_the_validation_set(monkeypatch):
    """Sec. 4.3: "choose the model with the best fitting capacity on the validation set (of size 100), to compute
    the GOLD estimator for the query acquisition". The validation score is scripted to peak at epoch 1 of 3, so the
    last epoch's model (what a round used before) is told apart from the chosen one by its weights."""
    data, test = load("clusters6", "train"), load("clusters6", "test")
    config = ActiveConfig.for_dataset("clusters6", initial=4, query=1, final=5, epochs=3, pool_size=256,
                                      fc_samples=200, fc_epochs=1, val_size=50)
    epochs, starts, measured, queried = [], [], [], []  # weights of: each epoch, each round's start, ...
    real_fit, real_fc, real_query = training.fit_acgan, training.fitting_capacity_of, training.query

    def fit(gan, *args, on_epoch, **kw):
        starts.append(weights_of(gan, "generator"))
        return real_fit(gan, *args, on_epoch=lambda e, live: (epochs.append(weights_of(live, "generator",
                                                                                        "discriminator")),
                                                              on_epoch(e, live)), **kw)

    def fitting_capacity(gan, test_x, *args):
        if len(test_x) == config.val_size:
            return [0.9, 0.5, 0.7][(len(epochs) - 1) % 3]
        measured.append((weights_of(gan, "generator", "discriminator"), len(test_x)))
        return real_fc(gan, test_x, *args)

    monkeypatch.setattr(training, "fit_acgan", fit)
    monkeypatch.setattr(training, "fitting_capacity_of", fitting_capacity)
    monkeypatch.setattr(training, "query", lambda gan, *a: (queried.append(weights_of(gan, "generator",
                                                                                      "discriminator")),
                                                            real_query(gan, *a))[1])
    out = active_learning(load_model("toy-acgan"), data, test, config, seed=0)
    assert [(row["best_epoch"], row["val_fitting_capacity"]) for row in out["history"]] == [(1, 0.9), (1, 0.9)]
    assert torch.equal(queried[0], epochs[0]) and not torch.equal(queried[0], epochs[2])  # epoch 1, not the last
    assert torch.equal(measured[0][0], epochs[0]) and torch.equal(measured[1][0], epochs[3])  # each round's best
    assert [n for _, n in measured] == [len(test) - 50] * 2  # on the held-out images after the validation set
    g = len(weights_of(load_model("toy-acgan"), "generator"))
    assert torch.equal(starts[1], epochs[0][:g])  # round 1 keeps round 0's best G (and a fresh D)


def test_a_validation_set_that_leaves_no_test_images_is_refused():
    data, test = load("clusters6", "train"), load("clusters6", "test").subset(torch.arange(50))
    with pytest.raises(LetheError, match="the held-out set has 50") as error:
        active_learning(load_model("toy-acgan"), data, test, ActiveConfig.for_dataset("clusters6", val_size=50))
    assert "--val-size" in error.value.hint and "0 keeps each round's last epoch" in error.value.hint
    with pytest.raises(LetheError, match="validation set size must be >= 0"):
        ActiveConfig(val_size=-1).validate()


def test_the_rounds_table_puts_both_strategies_of_a_round_on_one_row():
    history = pd.DataFrame([
        {"round": 0, "labelled": 100, "fitting_capacity": 0.2, "best_epoch": 10, "strategy": "gold"},
        {"round": 1, "labelled": 120, "fitting_capacity": 0.456, "best_epoch": 7, "strategy": "gold"},
        {"round": 0, "labelled": 100, "fitting_capacity": 0.2, "best_epoch": 10, "strategy": "random"},
        {"round": 1, "labelled": 120, "fitting_capacity": 0.4, "best_epoch": 10, "strategy": "random"}])
    table = rounds_table(history)
    assert table["labelled"].tolist() == [100, 120]
    assert table["fitting capacity % (gold)"].tolist() == [20.0, 45.6]
    assert table["fitting capacity % (random)"].tolist() == [20.0, 40.0]
    assert table["epoch used (gold)"].tolist() == [10, 7]
