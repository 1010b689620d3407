"""Taming normalizing flows (core.methods.taming): the losses on known values, the sets, Algorithm 1 on the ring5
toy flow (forgetting the centre mode must lower the centre's density), both directions, ablations, bad inputs
(each a clear LetheError with the base model untouched) and the `tame` verb."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from core.data import load
from core.data.selection import Selection
from core.errors import EmptySelection, LetheError, NonFiniteError
from core.methods import taming
from core.methods.taming import (ABLATIONS, TamingConfig, build_sets, config_from, forget_loss, normal_fit, normal_kl,
                                 prepare, reached, remember_loss, signed_distance, tame, threshold, total_loss)
from core.methods.taming.algorithm import random_rows
from core.models.spec import load_model

# --------------------------------------------------------------------------------------------- eq. 8-12


def test_kl_of_identical_normals_is_zero_and_has_gradients_in_mean_and_sigma():
    mu = torch.tensor(1.5, requires_grad=True)
    sigma = torch.tensor(0.3, requires_grad=True)
    kl = normal_kl(torch.tensor(1.5), torch.tensor(0.3), mu, sigma)
    assert float(kl.detach()) == pytest.approx(0.0, abs=1e-7)
    # Away from equality both partial derivatives are non-zero (the authors' code loses d/d sigma).
    kl = normal_kl(torch.tensor(1.0), torch.tensor(0.5), mu, sigma)
    kl.backward()
    assert mu.grad is not None and abs(float(mu.grad)) > 1e-3
    assert sigma.grad is not None and abs(float(sigma.grad)) > 1e-3


def test_kl_matches_the_closed_form_and_is_asymmetric():
    # KL(N(0,1) || N(1,2^2)) = log 2 + (1 + 1) / 8 - 1/2
    kl = normal_kl(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(1.0), torch.tensor(2.0))
    assert float(kl) == pytest.approx(math.log(2) + 2 / 8 - 0.5, rel=1e-6)
    rev = normal_kl(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(0.0), torch.tensor(1.0))
    assert float(rev) == pytest.approx(-math.log(2) + (4 + 1) / 2 - 0.5, rel=1e-6)


def test_kl_gradient_reaches_the_nlls_through_the_standard_deviation():
    # Same mean, different spread: only the sigma path can produce a gradient.
    base = torch.tensor([0.0, 2.0, 4.0], dtype=torch.float64)
    tamed = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    mu_t, sigma_t = normal_fit(tamed)
    mu_b, sigma_b = normal_fit(base)
    normal_kl(mu_b, sigma_b, mu_t, sigma_t).backward()
    assert tamed.grad.abs().sum() > 0
    # gradient descent moves tamed[0] down and tamed[2] up: it spreads the NLLs out like the base's
    assert float(tamed.grad[0]) > 0 > float(tamed.grad[2])


def test_signed_distance_threshold_and_stopping_rule():
    nll = torch.tensor([1.0, 1.4, 1.45])
    assert threshold(1.0, 0.1, 4.0) == pytest.approx(1.4)
    assert threshold(1.0, 0.1, 4.0, "emphasize") == pytest.approx(0.6)
    d = signed_distance(nll, 1.0, 0.1, 4.0)
    assert d.tolist() == pytest.approx([-4.0, 0.0, 0.5], abs=1e-5)
    assert not reached(d, 0.15)
    assert reached(d[1:2], 0.15)
    # eq. 9: S(sigma^2 d^2) is minimal (0.5) at the threshold and grows with the distance
    assert float(forget_loss(torch.zeros(3), 0.1)) == pytest.approx(0.5)
    assert float(forget_loss(torch.tensor([2.0]), 0.1)) > float(forget_loss(torch.tensor([1.0]), 0.1))


def test_remember_loss_is_the_nll_alone_for_identical_distributions_and_ablations_drop_terms():
    nll = torch.tensor([1.0, 1.2, 1.4, 1.1])
    loss, parts = remember_loss(nll, nll, gamma=0.6)
    assert float(loss) == pytest.approx(0.4 * float(nll.mean()), rel=1e-6)
    assert parts["kl_forward"] == pytest.approx(0.0, abs=1e-6) and parts["kl_reverse"] == pytest.approx(0.0, abs=1e-6)
    shifted = nll + 0.3
    full, _ = remember_loss(shifted, nll, 0.6)
    no_nll, _ = remember_loss(shifted, nll, 0.6, nll_term=False)
    no_f, _ = remember_loss(shifted, nll, 0.6, forward_kl=False)
    assert float(full) == pytest.approx(float(no_nll) + 0.4 * float(shifted.mean()), rel=1e-5)
    assert float(no_f) < float(full)
    assert float(total_loss(torch.tensor(1.0), torch.tensor(2.0), 0.6)) == pytest.approx(0.6 + 0.8)
    assert float(total_loss(torch.tensor(1.0), None, 0.6)) == pytest.approx(0.6)


def test_config_names_its_sources_and_rejects_bad_values():
    c = TamingConfig()
    assert (c.delta, c.alpha, c.gamma, c.epsilon, c.max_iterations, c.refresh_every) == (4.0, 0.6, 0.6, 0.15, 800, 10)
    for bad in ({"direction": "sideways"}, {"delta": 0}, {"alpha": 1.5}, {"target_share": 2.0},
                {"nll_term": False, "forward_kl": False, "reverse_kl": False}):
        with pytest.raises(LetheError):
            TamingConfig(**bad).validate()
    assert set(ABLATIONS) == {"none", "no-remember", "no-forward-kl", "no-reverse-kl", "no-nll", "no-kl"}


def test_the_no_kl_ablation_leaves_the_nll_term_alone_in_the_remember_loss():
    # Table 2's "L_KL_F + L_KL_R" row: both KL terms dropped, so L_R = (1 - gamma) A_T(D_R), whatever the spread.
    config = TamingConfig(**ABLATIONS["no-kl"])
    config.validate()
    assert (config.forward_kl, config.reverse_kl, config.nll_term, config.remember_loss) == (False, False, True, True)
    base, tamed = torch.tensor([1.0, 1.2, 1.4, 1.1]), torch.tensor([0.5, 2.0, 3.0, 1.0])
    loss, _ = remember_loss(tamed, base, gamma=0.6, forward_kl=config.forward_kl, reverse_kl=config.reverse_kl)
    assert float(loss) == pytest.approx(0.4 * float(tamed.mean()), rel=1e-6)
    args = argparse.Namespace(ablation="no-kl", delta=4.0, lr=2e-4)
    assert not config_from(args).forward_kl and not config_from(args).reverse_kl


def test_the_fid_reference_is_a_seeded_random_sample_of_the_remember_pool_not_its_first_rows():
    # A remember pool sorted by identity, as build_sets leaves it: 50 people with 10 images each.
    identity = torch.arange(50).repeat_interleave(10)
    pool = identity.float().reshape(-1, 1)
    ref = random_rows(pool, 100, seed=3)
    assert len(ref) == 100 and len(set(ref.flatten().tolist())) > 35  # the first 100 rows hold 10 people
    assert len(torch.unique(ref, dim=0)) <= 50 and torch.equal(ref, random_rows(pool, 100, seed=3))
    assert not torch.equal(ref, random_rows(pool, 100, seed=4))
    assert torch.equal(random_rows(pool[:30], 100, seed=3), pool[:30])  # a small pool is used whole


# ----------------------------------------------------------------------------------------------- the toy


@pytest.fixture(scope="module")
def toy():
    return load_model("toy-flow", "cpu")


@pytest.fixture(scope="module")
def toy_sets(toy):
    return prepare(toy, "label=0", seed=0, eval_size=300)


FAST = dict(max_iterations=60, stats_size=256, remember_batch=64, forget_batch=64, monitor_every=20,
            monitor_samples=400, eval_samples=600, lr=1e-3)


def _weights(bundle):
    return {k: v.clone() for k, v in bundle.flow.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_forgetting_the_centre_mode_of_ring5_lowers_the_centre_density(toy, toy_sets):
    sets, judges = toy_sets
    assert sets.holdout is not None and len(sets.forget) > 1000  # the centre mode, and its test-split points
    before = _weights(toy)
    events = []
    result = tame(toy, sets, TamingConfig(**FAST), seed=0, progress=events.append, judges=judges)
    assert _same(before, _weights(toy))  # the base flow is never modified
    m = result.metrics
    assert m["q_forget_after"] < m["q_forget_before"] and m["qd_forget"] > 0.05
    assert m["qd_holdout"] > 0.05  # unseen centre points are forgotten too
    assert abs(m["qd_remember"]) < 0.05
    assert m["share_after"] < m["share_before"]  # fewer samples land in the centre mode
    centre = torch.zeros(1, 2)
    with torch.no_grad():
        assert float(result.bundle.log_prob(centre)) < float(toy.log_prob(centre)) - 0.5
    for key in ("q_forget_before", "q_forget_after", "qd_forget", "qd_holdout", "qd_remember", "bpd_remember_before",
                "bpd_remember_after", "iterations", "reached_threshold", "seconds", "normality_p_before"):
        assert key in m, key
    assert m["qd_identities"] is None and m["qd_neighbours"] is None  # the toy has no identities
    live = [e.metrics for e in events if e.metrics]
    assert {"distance_max_abs", "kl_forward", "kl_reverse", "remember_bpd", "mu_R", "sigma_R"} <= set(live[1])
    assert any("share" in e for e in live[1:])
    checks = [e["distance_checked_max_abs"] for e in live if "distance_checked_max_abs" in e]
    assert len(checks) >= FAST["max_iterations"] // 10 - 1  # eq. 10 is judged at every refresh of mu_R, sigma_R
    toy_fig = result.figures["toy"]
    assert np.array(toy_fig["density_before"]["log_prob"]).shape == (120, 120)
    assert json.dumps(result.figures["nlls"])  # the histogram data is JSON for the run store


def test_emphasising_the_centre_raises_its_likelihood(toy, toy_sets):
    sets, judges = toy_sets
    cfg = TamingConfig(**{**FAST, "max_iterations": 30}, direction="emphasize", delta=1.0)
    m = tame(toy, sets, cfg, seed=0, judges=judges).metrics
    assert m["q_forget_after"] > m["q_forget_before"]
    assert m["share_after"] > m["share_before"]


def test_target_share_picks_the_direction_and_stops_near_the_target(toy, toy_sets):
    sets, judges = toy_sets
    cfg = TamingConfig(**{**FAST, "max_iterations": 200, "monitor_every": 5}, target_share=0.12)
    m = tame(toy, sets, cfg, seed=0, judges=judges).metrics
    assert m["direction"] == "forget"
    assert m["stop_reason"] == "target_share"
    assert abs(m["share_after"] - 0.12) < 0.06


def test_ablation_without_remember_loss_runs_and_reports(toy, toy_sets):
    sets, judges = toy_sets
    m = tame(toy, sets, TamingConfig(**{**FAST, "max_iterations": 10}, remember_loss=False), judges=judges).metrics
    assert m["iterations"] == 10


def test_stopping_rule_ends_the_run_at_the_threshold(toy):
    # A far-out point of the ring's edge: eq. 10 is met long before the cap.
    sets, judges = prepare(toy, "ids=0", seed=0, eval_size=300)
    m = tame(toy, sets, TamingConfig(**{**FAST, "max_iterations": 400, "forget_batch": 1}), judges=judges).metrics
    assert m["reached_threshold"] and m["stop_reason"] == "threshold"
    assert m["iterations"] < 400
    assert m["forget_distance_max_abs_after"] < 1.0


def test_antithetic_dequantization_stays_in_each_bin_and_cancels_what_is_linear_in_the_noise():
    flow = load_model("synthfaces-flow", "cpu")
    x = load("synthfaces", "test").x[:3]
    levels = 2**flow.n_bits
    copies = flow.dequantize_antithetic(x, pairs=4, generator=torch.Generator().manual_seed(0)).reshape(8, *x.shape)
    low = torch.floor(x * (levels - 1) + 0.5) / levels
    assert ((copies >= low) & (copies <= low + 1 / levels)).all()  # every copy inside the image's bin
    pair_means = (copies[0::2] + copies[1::2]) / 2  # (k + u) / L and (k + 1 - u) / L average to the bin centre
    assert torch.allclose(pair_means, (low + 0.5 / levels).expand_as(pair_means), atol=1e-6)
    assert not torch.equal(copies[0], copies[2])  # each pair draws its own noise


def test_forgetting_one_synthfaces_image_reaches_eq_10_on_its_expected_nll():
    # One face of a person (5-bit data, so the antithetic dequantization path): eq. 10 holds on the NLL averaged
    # over check_pairs pairs, the stop is reported, and the base model is untouched.
    flow = load_model("synthfaces-flow", "cpu")
    before = _weights(flow)
    train = load("synthfaces", "train")
    sets, judges = prepare(flow, f"ids={int(train.ids[0])}", seed=0, eval_size=200, heldout_identities=5,
                           data=train, judges={})
    m = tame(flow, sets, TamingConfig(max_iterations=200, stats_size=256, eval_samples=64, preview=0),
             judges=judges).metrics
    assert m["reached_threshold"] and m["stop_reason"] == "threshold" and m["iterations"] < 200
    assert m["qd_forget"] > 0 and abs(m["qd_remember"]) < 0.02
    assert m["forget_distance_max_abs_after"] < 0.25  # eq. 10's 0.15, re-measured with fresh dequantization noise
    assert _same(before, _weights(flow))


def test_attribute_taming_reports_fid_against_the_remember_set_and_against_the_data_as_it_was():
    flow = load_model("synthfaces-flow", "cpu")
    sets, judges = prepare(flow, "attr=glasses", seed=0, eval_size=100, heldout_identities=2)
    m = tame(flow, sets, TamingConfig(max_iterations=2, stats_size=64, eval_samples=200, monitor_samples=64,
                                      preview=0), judges=judges).metrics
    assert m["fid_judge"] == "FID[synthfaces-attributes]"
    for key in ("fid", "fid_all"):
        before, after = m[f"{key}_before"], m[f"{key}_after"]
        assert before > 0 and m[f"{key}_change"] == pytest.approx(after / before - 1)
    assert m["fid_all_before"] != m["fid_before"]  # D_R lacks every glasses face; the data as it was does not
    # beside the share: the data's share as the judge reads it, and how many samples the judge could not call
    assert m["share_data"] == pytest.approx(len(sets.forget) / (len(sets.forget) + len(sets.remember)))
    assert 0 <= m["share_unsure_before"] <= 1 and 0 <= m["share_unsure_after"] <= 1


class _FixedLogits(torch.nn.Module):
    """A judge whose logits are given rows (one per input image, in order)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.rows = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rows[: len(x)]


def _judge(logits: list[list[float]], names: tuple[str, ...], kind: str):
    from core.models.bundles import ClassifierBundle
    from core.models.card import ModelCard

    card = ModelCard(name="fixed", family="classifier", architecture="fixed", hparams={}, data_shape=[1, 2, 2])
    return ClassifierBundle(card=card, net=_FixedLogits(torch.tensor(logits)), class_names=names, kind=kind)


def test_a_share_reading_counts_the_samples_the_judge_cannot_call():
    from core.methods.taming import ShareJudge

    x = torch.zeros(4, 1, 2, 2)
    big, unsure = 5.0, 0.5  # sigmoid 0.993 (sure) and 0.62 (unsure)
    attrs = _judge([[big, -big], [unsure, -big], [-big, unsure], [-big, -big]], ("glasses", "smile"), "attributes")
    # glasses alone: rows 0 and 1 carry it; only row 1 is unsure about glasses (row 2's doubt is about smile)
    # (share, unsure, share among the sure): the sure rows are 0 (glasses), 2 and 3 (not)
    assert ShareJudge(attribute="glasses", classifier=attrs).read(x) == (0.5, 0.25, pytest.approx(1 / 3))
    # an expression is unsure where any attribute it names is: rows 0 (carries it) and 3 (does not) are sure
    reading = ShareJudge(attribute="glasses & ~smile", classifier=attrs).read(x)
    assert reading == (0.5, 0.5, 0.5)
    assert reading.metrics("_after") == {"share_after": 0.5, "share_unsure_after": 0.5, "share_confident_after": 0.5}
    labels = _judge([[big, -big, -big], [0.0, 0.0, 0.0], [-big, big, -big], [-big, -big, big]], ("0", "1", "2"),
                    "labels")
    share, unsure_labels, confident = ShareJudge(labels=(1, 2), classifier=labels).read(x)
    assert share == 0.5 and unsure_labels == 0.25  # row 1 is a three-way tie (argmax 0: not carrying 1 or 2)
    assert confident == pytest.approx(2 / 3)  # rows 2 and 3 of the three sure ones
    never_sure = _judge([[unsure, unsure]] * 4, ("glasses", "smile"), "attributes")
    assert ShareJudge(attribute="glasses", classifier=never_sure).read(x) == (1.0, 1.0, None)
    toy = ShareJudge(labels=(0,), class_means=torch.tensor([[0.0, 0.0], [5.0, 5.0]]))
    assert toy.read(torch.tensor([[0.1, 0.0], [4.0, 5.0]])) == (0.5, None, None)
    assert toy.read(torch.tensor([[0.1, 0.0]])).metrics() == {"share": 1.0}


# ------------------------------------------------------------------------------------ the best-share model


def test_the_best_share_is_the_closest_to_the_target_else_the_lowest_forgetting_or_highest_emphasising(toy):
    from core.methods.taming.algorithm import BestShare

    def best_of(direction, target, shares):
        best = BestShare(direction, target)
        for it, share in enumerate(shares, start=1):
            best.offer(it, share, toy)
        return best.iteration, best.share

    shares = [0.30, 0.10, 0.13, 0.10, 0.40]
    assert best_of("forget", None, shares) == (2, 0.10)  # the lowest; the earliest of a tie
    assert best_of("emphasize", None, shares) == (5, 0.40)
    assert best_of("forget", 0.12, shares) == (3, 0.13)  # closest to the target, from either side
    best = BestShare("forget", None)
    assert best.model(toy, 10) is None  # nothing judged: no best model
    best.offer(10, 0.2, toy)
    assert best.model(toy, 10) is None  # the best is the final model: no second copy


def test_a_share_judged_run_keeps_its_best_share_model_in_the_run_beside_the_final_one(toy, toy_sets, tmp_path):
    # Forgetting the ring's centre mode: the monitored share falls, then wobbles (this seed's lowest reading comes
    # before the last iteration), so the best model is a checkpoint the run passed through.
    from core.methods.taming import best_model_spec, taming_job
    from core.methods.taming.algorithm import fixed_latents, samples_from
    from core.runs import RunStore, run_now

    sets, judges = toy_sets
    before = _weights(toy)
    cfg = TamingConfig(**{**FAST, "max_iterations": 120, "monitor_every": 10})
    run = run_now(taming_job(toy, "label=0", cfg, seed=0, prepared=toy_sets), method="tame", model="toy-flow",
                  store=RunStore(tmp_path))
    assert run.status == "succeeded", run.error
    m = run.metrics
    judged = run.events().dropna(subset=["share"]).query("step > 0")
    lowest = judged.loc[judged["share"].idxmin()]  # idxmin: the first of equal lowest readings
    assert (m["best_share_iteration"], m["best_share_monitor"]) == (int(lowest["step"]), lowest["share"])
    assert m["best_share_iteration"] < m["iterations"] and m["best_is_final"] is False
    assert m["best_model"] == best_model_spec(run) == str(run.path / "model-best")
    best, final = load_model(m["best_model"], "cpu"), load_model(run.model_spec, "cpu")
    assert best.card.parent == "toy-flow" and best.card.name.endswith("-best")
    assert best.card.training["taming"]["iterations"] == m["best_share_iteration"]
    assert not _same(_weights(best), _weights(final))
    # the saved weights are the judged iteration's: they read the same share on the monitor's latents
    monitor = samples_from(best, fixed_latents(best, cfg.monitor_samples, 1, 1.0))
    assert judges.share.share(monitor) == pytest.approx(m["best_share_monitor"])
    # and it is measured again on the evaluation's own latents, like the final model
    assert m["share_best"] == pytest.approx(judges.share.share(samples_from(best, fixed_latents(best, 600, 2, 1.0))))
    assert m["share_best"] < m["share_before"] and m["bpd_remember_best"] > 0
    assert _same(before, _weights(toy))  # the base flow is never modified
    # the verdict says which model is best and where it is kept
    from core.runs.verdict import verdict_of

    notes = verdict_of(run).notes
    assert any(n.startswith(f"Best model: iteration {m['best_share_iteration']} of {m['iterations']}")
               and m["best_model"] in n for n in notes), notes


# ------------------------------------------------------------------------------------------- bad inputs


def test_bad_inputs_end_with_a_clear_message_and_the_base_untouched(toy, toy_sets):
    sets, judges = toy_sets
    before = _weights(toy)
    with pytest.raises(EmptySelection):
        prepare(toy, "ids=999999")
    with pytest.raises(LetheError, match="normalizing flow"):
        prepare(load_model("toy-gan", "cpu"), "ids=1")
    # Points far off the ring are already far beyond mu_R + 4 sigma_R: nothing to forget.
    far = dataclasses.replace(sets, forget=torch.full((5, 2), 6.0))
    with pytest.raises(LetheError, match="already"):
        tame(toy, far, TamingConfig(**FAST), judges=judges)
    assert _same(before, _weights(toy))


def test_too_small_a_remember_set_is_refused(toy):
    data = load("ring5", "train")
    keep = data.subset(torch.arange(30))
    with pytest.raises(LetheError, match="too few"):
        build_sets(keep, Selection("ring5", ids=tuple(range(20))), test=load("ring5", "test"))


def test_non_finite_nlls_stop_with_a_clear_message_and_leave_the_base_untouched(toy, toy_sets):
    sets, judges = toy_sets
    broken = toy.copy()
    with torch.no_grad():
        next(broken.flow.parameters()).fill_(float("nan"))
    before = _weights(broken)
    with pytest.raises(NonFiniteError, match="non-finite"):
        tame(broken, sets, TamingConfig(**FAST), judges=judges)
    assert all(torch.equal(before[k], v) or (torch.isnan(before[k]).all() and torch.isnan(v).all())
               for k, v in broken.flow.state_dict().items())


def test_the_tame_verb_prints_the_issue_keys_as_json(tmp_path, capsys):
    from core.cli import main

    code = main(["tame", "toy-flow", "--forget", "label=0", "--max-iterations", "5", "--eval-samples", "300",
                 "--eval-size", "200", "--runs-dir", str(tmp_path), "--json"])
    out = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(out)
    assert code == 0, result
    for key in ("q_forget_before", "q_forget_after", "qd_forget", "qd_holdout", "qd_remember", "qd_identities",
                "qd_neighbours", "bpd_remember_before", "bpd_remember_after", "iterations", "reached_threshold",
                "seconds", "model"):
        assert key in result, key
    assert result["iterations"] == 5
    assert load_model(result["model"], "cpu").card.parent == "toy-flow"


def test_the_tame_verb_refuses_a_gan_and_a_bad_spec(tmp_path, capsys):
    from core.cli import main

    assert main(["tame", "toy-gan", "--forget", "ids=1", "--runs-dir", str(tmp_path)]) == 2
    assert "flow" in capsys.readouterr().err
    assert main(["tame", "toy-flow", "--forget", "colour=red", "--runs-dir", str(tmp_path)]) == 2
    assert "hint:" in capsys.readouterr().err


def test_the_module_docstring_names_the_paper_equations():
    import core.methods.taming.losses as losses

    for eq in ("eq. 8", "eq. 9", "eq. 10", "eq. 11", "eq. 12"):
        assert eq in losses.__doc__
    assert "Algorithm 1" in taming.algorithm.__doc__


def test_figures_flag_non_finite_nlls_and_draw_each_models_threshold():
    from core.viz.taming import live_nll_figure, nll_histogram_figure, quantile_table

    data = {"delta": 4.0, "direction": "forget", "unit": "bits/dim",
            "stats": {"base": {"mu": 1.0, "sigma": 0.1}, "tamed": {"mu": 1.0, "sigma": 0.1}},
            "nll": {"base": {"remember_eval": [1.0, 1.1, 0.9], "forget": [1.05, float("nan")]},
                    "tamed": {"remember_eval": [1.0, 1.1, 0.9], "forget": [1.4, 1.41]}}}
    fig = nll_histogram_figure(data)
    names = [t.name for t in fig.data]
    assert "D_F (1 non-finite!)" in names
    thresholds = [s.x0 for s in fig.layout.shapes if s.line.dash == "dash"]
    assert thresholds == pytest.approx([1.4, 1.4])
    # A remember sample is a histogram; a person's few images are a rug of one tick per image under the axis.
    many = np.random.default_rng(0).normal(1.0, 0.1, 400).tolist()
    fig = nll_histogram_figure({**data, "nll": {"base": {"remember_eval": many, "forget": [1.2, 1.3, 1.25]}}})
    kinds = {t.name: t.type for t in fig.data}
    assert kinds == {"D_R": "bar", "D_F": "scatter"}
    bars = next(t for t in fig.data if t.name == "D_R")
    assert float(np.sum(bars.y) * bars.width) == pytest.approx(1.0)  # a density over shared bins
    rug = next(t for t in fig.data if t.name == "D_F")
    assert list(rug.x) == [1.2, 1.3, 1.25] and max(rug.y) < 0
    live = live_nll_figure({"mu_R": 1.0, "sigma_R": 0.1, "distance_min": -2, "distance_mean": -1,
                            "distance_max": 0}, 4.0)
    assert any(t.name == "D_F NLL range" for t in live.data)
    table = quantile_table({"q_forget_before": 0.4, "q_forget_after": 1e-5, "qd_forget": 0.39999,
                            "q_remember_before": 0.5, "q_remember_after": 0.5, "qd_remember": 0.0})
    assert list(table["set"]) == ["D_F", "D_R"]


def test_taming_without_the_training_set_remembers_held_out_data(toy):
    # Sec. 4.3: the remember set is drawn from other data (here the test split, minus the centre mode).
    sets, judges = prepare(toy, "label=0", remember="test", seed=0, eval_size=200)
    assert "not the training set" in sets.notes["remember"]
    assert len(sets.remember) < 2000 and len(sets.holdout) > 0
    m = tame(toy, sets, TamingConfig(**{**FAST, "max_iterations": 20}), judges=judges).metrics
    assert m["qd_forget"] > 0
    with pytest.raises(LetheError, match="unknown remember set"):
        prepare(toy, "label=0", remember="yesterday")


# ------------------------------------------------------------------- D_F from the flow's own samples


def test_a_samples_spec_names_the_attribute_the_judge_reads_in_the_flows_samples():
    from core.methods.taming.own_samples import sample_expression

    assert sample_expression("samples:glasses") == "glasses"
    assert sample_expression(" samples:attr=glasses & ~smile") == "glasses & ~smile"
    assert sample_expression("attr=glasses") is None
    assert sample_expression(Selection("ring5", "train", labels=(0,))) is None
    with pytest.raises(LetheError, match="names no attribute"):
        sample_expression("samples: ")
    from core.runs.words import forget_words

    assert forget_words("samples:glasses") == "samples read as 'glasses'"


def test_the_forget_set_is_the_flows_samples_the_judge_surely_reads_as_the_attribute(toy, toy_sets):
    from core.methods.taming import ShareJudge
    from core.methods.taming.algorithm import fixed_latents, samples_from
    from core.methods.taming.own_samples import SEED_OFFSET, own_sample_sets, sample_forget_set

    big, unsure = 5.0, 0.5
    # per sample: glasses (sure), glasses (unsure), no glasses, glasses (sure; unsure of smile, which EXPR omits)
    judge = ShareJudge(attribute="glasses", classifier=_judge(
        [[big, -big], [unsure, -big], [-big, -big], [big, unsure]], ("glasses", "smile"), "attributes"))
    x, note = sample_forget_set(toy, judge, pool=4, seed=3)
    drawn = samples_from(toy, fixed_latents(toy, 4, 3 + SEED_OFFSET, 1.0))  # the toy samples at temperature 1
    assert torch.equal(x, drawn[[0, 3]])
    assert note.startswith("2 of 4 samples of toy-flow") and "sure of it on 2 of 3" in note
    sets, _ = toy_sets
    own = own_sample_sets(toy, sets, judge, pool=4, seed=3)
    assert torch.equal(own.forget, drawn[[0, 3]]) and own.forget_ids == []
    assert own.remember is sets.remember and own.holdout is sets.holdout  # only D_F changes
    nobody = ShareJudge(attribute="glasses", classifier=_judge([[-big, -big]] * 4, ("glasses", "smile"), "attributes"))
    with pytest.raises(EmptySelection, match="none of 4 samples"):
        sample_forget_set(toy, nobody, pool=4)


def test_a_samples_spec_on_data_without_attributes_is_refused(toy):
    with pytest.raises(LetheError):
        prepare(toy, "samples:glasses")
