"""Influence estimation for GANs (Terashita et al., 2021) on the 2-D FCGAN, small enough for CI.

The estimator is checked where the answer is known exactly: the per-instance terms against one backward pass per
instance, u^T B J against the explicit Jacobian of the joint gradient, the linear estimate against counterfactual
replays at a learning rate small enough for the linearisation to be exact to a few percent, and the differentiable
metrics against Lethe's reference metrics. Bad inputs end with a LetheError and leave the pretrained model alone.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from core.cli import main
from core.data import load
from core.errors import Cancelled, LetheError, NonFiniteError
from core.methods.influence import (EstimateJob, Game, InfluenceConfig, MetricSets, ReplayJob, TraceConfig, estimate,
                                    make_metric, pick_targets, prepare, replay, run_influence, run_jobs, trace, verify,
                                    verify_metrics)
from core.methods.influence.metrics import frechet_to_reference, inception_score_t, kde_all
from core.metrics import fid_from_features, inception_score, kde_log_likelihood
from core.models.card import ModelCard
from core.models.checkpoint import bundle_state, save_bundle
from core.models.registry import build
from core.models.spec import load_model
from core.progress import CancelToken
from core.runs import RunStore, run_now

N = 600  # training instances used by the fast tests (6 steps per epoch at batch 100)


@pytest.fixture(scope="module")
def gan():
    return load_model("toy-gan", "cpu")


@pytest.fixture(scope="module")
def x():
    return load("gaussian2d", "train").x[:N]


@pytest.fixture(scope="module")
def sets(gan):
    return MetricSets.draw(load("gaussian2d", "test"), gan.latent_dim, 500, seed=0)


def _traced(gan, x, tmp_path, **config):
    game = Game(gan, torch.float64)
    log = trace(game, x, TraceConfig(**config), seed=0, folder=tmp_path / "trace")
    return game, log


def _flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


# ----------------------------------------------------------------------------------------- the exact pieces


def test_per_instance_terms_equal_one_backward_per_instance(gan, x):
    game = Game(gan, torch.float64)
    state = game.initial_state()
    batch, z = game.data(x[:8]), torch.randn(8, gan.latent_dim, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    u_g = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in state.g]
    u_d = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in state.d]
    _, _, terms = game.backward_step(state, batch, z, u_g, u_d, lr_g=1e-3, lr_d=2e-3)
    expected = [2e-3 / 8 * float(_flat(u_d) @ _flat(g)) for g in game.instance_grads(game.initial_state(), batch)]
    np.testing.assert_allclose(terms.detach().numpy(), expected, rtol=1e-10, atol=1e-16)


def test_query_update_is_u_transpose_B_J_with_the_explicit_jacobian():
    card = ModelCard("tiny", "gan", "fcgan", {"latent_dim": 3, "g_hidden": 4, "d_hidden": 5, "dim": 2})
    torch.manual_seed(0)
    tiny = build(card)
    game = Game(tiny, torch.float64, weight_decay=1e-2)
    state = game.initial_state()
    batch, z = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    w = torch.ones(6, dtype=torch.float64)
    sizes = [p.numel() for p in (*state.g, *state.d)]
    n_g = len(state.g)

    def joint_gradient(flat):
        parts = list(torch.split(flat, sizes))
        params = [p.reshape(t.shape) for p, t in zip(parts, (*state.g, *state.d))]
        s = type(state)(params[:n_g], params[n_g:], state.g_buffers, state.d_buffers)
        loss_g, loss_d = game.losses(s, batch, z, w)
        grad_g = torch.autograd.grad(loss_g, s.g, create_graph=True)
        grad_d = torch.autograd.grad(loss_d, s.d, create_graph=True)
        return _flat([*grad_g, *grad_d])

    theta = _flat([*state.g, *state.d]).detach()
    jacobian = torch.autograd.functional.jacobian(joint_gradient, theta)  # J_t of eq. (4), d_theta x d_theta
    lrs = torch.cat([torch.full((sum(sizes[:n_g]),), 1e-3, dtype=torch.float64),
                     torch.full((sum(sizes[n_g:]),), 3e-3, dtype=torch.float64)])
    u = torch.randn(len(theta), dtype=torch.float64)
    expected = (u * lrs) @ jacobian  # u^T B_t J_t
    u_parts = [p.reshape(t.shape) for p, t in zip(torch.split(u, sizes), (*state.g, *state.d))]
    dg, dd, _ = game.backward_step(state, batch, z, u_parts[:n_g], u_parts[n_g:], lr_g=1e-3, lr_d=3e-3)
    torch.testing.assert_close(_flat([*dg, *dd]), expected, rtol=1e-10, atol=1e-14)


def test_replaying_the_log_without_removals_reproduces_the_trace_bit_for_bit(gan, x, tmp_path):
    game, log = _traced(gan, x, tmp_path)
    replayed, final = replay(game, x, log), log.final(game)
    assert all(torch.equal(a, b) for a, b in zip([*replayed.g, *replayed.d], [*final.g, *final.d]))
    assert log.n_steps == N // 100 and log.bytes_per_step > 0


def test_checkpoints_with_segment_replay_give_the_same_influence_as_every_step_on_disk(gan, x, sets, tmp_path):
    game, every = _traced(gan, x, tmp_path / "a")
    _, sparse = _traced(gan, x, tmp_path / "b", checkpoint_every=4)
    metric = make_metric("all", game, sets, None, "gaussian2d")
    np.testing.assert_allclose(estimate(game, x, sparse, metric).values, estimate(game, x, every, metric).values,
                               rtol=1e-9, atol=1e-18)
    assert sparse.bytes_per_step < every.bytes_per_step


def test_a_dcgan_with_batch_and_spectral_norm_buffers_is_estimated_from_checkpoints_on_disk(tmp_path):
    """In-place buffer updates (batch-norm statistics, spectral-norm vectors) must not touch the parameters read
    back from the log; every-step and segment-replay logs give the same influence."""
    card = ModelCard("tiny-dcgan", "gan", "dcgan28", hparams={"channels": 1, "d_norm": "spectral", "fc_width": 0,
                                                                "latent_dim": 8, "width": 4},
                     data_shape=[1, 28, 28], data={"dataset": "mnist", "split": "train", "size": 100})
    tiny = build(card)
    x = load("mnist", "train").x[:100]
    sets = MetricSets.draw(load("mnist", "test"), tiny.latent_dim, 20, seed=0)
    game = Game(tiny, torch.float64)
    metric = make_metric("dloss", game, sets, None, "mnist")
    values = [estimate(game, x, trace(game, x, TraceConfig(batch_size=50, checkpoint_every=c), 0, tmp_path / str(c)),
                       metric).values for c in (1, 2)]
    assert np.abs(values[0]).sum() > 0
    np.testing.assert_allclose(values[1], values[0], rtol=1e-8, atol=1e-16)


@pytest.mark.parametrize("updates", ["simultaneous", "alternating"])
def test_at_a_small_learning_rate_the_linear_estimate_matches_counterfactual_replays(gan, x, sets, tmp_path, updates):
    game, log = _traced(gan, x, tmp_path, lr_g=1e-4, lr_d=1e-4, updates=updates)
    metric = make_metric("all", game, sets, None, "gaussian2d")
    influence = estimate(game, x, log, metric)
    base = float(metric.value(log.final(game)).detach())
    targets = pick_targets(log, 6, seed=0)
    template = ReplayJob(gan, torch.float64, 0.0, x, log.folder, np.zeros(0, np.int64), "all", sets, None,
                         "gaussian2d")
    result = verify(template, influence, base, targets)
    np.testing.assert_allclose(result.estimated, result.true, rtol=0.05)
    assert result.kendall_tau == pytest.approx(1.0)


def test_estimated_influence_ranks_the_true_influence_at_the_papers_learning_rate(gan, x, sets, tmp_path):
    game, log = _traced(gan, x, tmp_path)  # lr 1e-3, batch 100, one epoch
    metric = make_metric("all", game, sets, None, "gaussian2d")
    influence = estimate(game, x, log, metric)
    template = ReplayJob(gan, torch.float64, 0.0, x, log.folder, np.zeros(0, np.int64), "all", sets, None,
                         "gaussian2d")
    result = verify(template, influence, influence.metric_value, pick_targets(log, 12, seed=0))
    assert result.kendall_tau >= 0.5


# ------------------------------------------------------------------------------------------------- metrics


def test_differentiable_metrics_equal_lethes_reference_metrics():
    gen = torch.Generator().manual_seed(0)
    samples, data = torch.randn(300, 2, generator=gen, dtype=torch.float64), torch.randn(200, 2, generator=gen)
    assert float(kde_all(samples, data)) == pytest.approx(kde_log_likelihood(samples, data, bandwidth=1.0), rel=1e-10)
    logits = torch.randn(400, 10, generator=gen, dtype=torch.float64) * 3
    assert float(inception_score_t(logits)) == pytest.approx(inception_score(logits, splits=1).mean, rel=1e-10)
    f1 = torch.randn(500, 6, generator=gen, dtype=torch.float64)
    f2 = torch.randn(400, 6, generator=gen, dtype=torch.float64) * 1.5 + 0.3
    centred = f2 - f2.mean(0)
    fid = frechet_to_reference(f1, f2.mean(0), centred.T @ centred / (len(f2) - 1))
    assert float(fid) == pytest.approx(fid_from_features(f1, f2), rel=1e-6)


def test_the_discriminator_loss_query_vector_reaches_both_players(gan, x, sets, tmp_path):
    game, log = _traced(gan, x, tmp_path)
    from core.methods.influence import query_vector

    u_g, u_d, _ = query_vector(make_metric("dloss", game, sets, None, "gaussian2d"), log, game)
    assert float(_flat(u_g).norm()) > 0 and float(_flat(u_d).norm()) > 0
    u_g, u_d, _ = query_vector(make_metric("all", game, sets, None, "gaussian2d"), log, game)
    assert float(_flat(u_g).norm()) > 0 and float(_flat(u_d).norm()) == 0  # eq. (10): V reads only G


# ------------------------------------------------------------------------------------ jobs and the executor


def test_two_worker_processes_give_the_same_results_as_one(gan, x, sets, tmp_path):
    _, log = _traced(gan, x, tmp_path)
    jobs = [ReplayJob(gan, torch.float64, 0.0, x, log.folder, np.array([j]), "all", sets, None, "gaussian2d")
            for j in pick_targets(log, 3, seed=1)]
    seen = []
    here = run_jobs(jobs, workers=1)
    there = run_jobs(jobs, workers=2, progress=seen.append)
    assert here == there and len(seen) == 3


def test_a_job_on_a_spectral_norm_gan_reaches_a_worker_with_the_same_weights(tmp_path):
    """PyTorch refuses to pickle parametrized modules; influence jobs send their bundles as (card, state)."""
    import pickle

    card = ModelCard("tiny-dcgan", "gan", "dcgan28", hparams={"channels": 1, "d_norm": "spectral", "fc_width": 0,
                                                                "latent_dim": 8, "width": 4},
                     data_shape=[1, 28, 28], data={"dataset": "mnist", "split": "train", "size": 100})
    tiny = build(card)
    with pytest.raises(RuntimeError):
        pickle.dumps(tiny)
    sets = MetricSets.draw(load("mnist", "test"), tiny.latent_dim, 20, seed=0)
    job = EstimateJob(tiny, load("mnist", "train").x[:100], TraceConfig(batch_size=50), 0, tmp_path / "t", ("dloss",),
                      sets, None, "mnist")
    back = pickle.loads(pickle.dumps(job))
    before, after = bundle_state(tiny), bundle_state(back.bundle)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) and before[k].dtype == after[k].dtype for k in before)
    np.testing.assert_array_equal(back()["dloss"].values, job()["dloss"].values)


def test_one_trace_and_one_replay_per_target_serve_several_metrics_as_single_metric_runs_do(gan, x, sets, tmp_path):
    """Fig. 1 on MNIST scores IS and FID from the same trace and the same replays: the estimate job (spawned in a
    worker) and the shared replays give what one-metric tracing, estimation and verification give."""
    job = EstimateJob(gan, x, TraceConfig(), 0, tmp_path / "shared", ("all", "dloss"), sets, None, "gaussian2d")
    (both,) = run_jobs([job], workers=2)
    game, log = _traced(gan, x, tmp_path)
    template = ReplayJob(gan, torch.float64, 0.0, x, log.folder, np.zeros(0, np.int64), "all", sets, None,
                         "gaussian2d")
    targets = pick_targets(log, 6, seed=0)
    checked = verify_metrics(template, both, targets)
    for name in ("all", "dloss"):
        alone = estimate(game, x, log, make_metric(name, game, sets, None, "gaussian2d"))
        np.testing.assert_allclose(both[name].values, alone.values, rtol=1e-10, atol=1e-18)
        single = verify(replace(template, metric=name), alone, alone.metric_value, targets)
        np.testing.assert_allclose(checked[name].true, single.true, rtol=1e-10, atol=1e-18)
        assert checked[name].kendall_tau == pytest.approx(single.kendall_tau)


def test_the_ray_executor_says_how_to_get_ray_when_it_is_missing():
    import importlib.util

    if importlib.util.find_spec("ray") is not None:
        pytest.skip("Ray is installed here")
    with pytest.raises(LetheError, match="pip install ray"):
        run_jobs([lambda: 1], executor="ray")


def test_cleansing_reruns_the_traced_epochs_without_each_selectors_instances(gan, tmp_path):
    small = _small_model(gan, tmp_path)
    config = InfluenceConfig(trace=TraceConfig(epochs=1), latents=300, cleanse=30)
    result = run_influence(prepare(small, config), config)
    after = result.cleansing.after
    assert set(after) == {"influence", "dloss", "isolation-forest", "random"}
    assert all(len(r) == 30 for r in result.cleansing.removed.values())
    assert len(set(after.values())) == 4  # four different removal sets, four different retrained generators
    assert np.isfinite(result.cleansing.before)


# --------------------------------------------------------------------------------------------- bad inputs


def _small_model(gan, tmp_path, **data):
    """toy-gan saved with a card that says it was trained on the first N points (tests stay fast)."""
    copy = gan.copy()
    copy.card.data = {**copy.card.data, "size": N, **data}
    return load_model(str(save_bundle(copy, tmp_path / "small")), "cpu")


def test_a_gan_without_a_discriminator_is_refused(gan):
    headless = gan.copy()
    headless.discriminator = None
    with pytest.raises(LetheError, match="no discriminator"):
        prepare(headless, InfluenceConfig())


def test_a_model_whose_training_data_lethe_lacks_is_refused(gan, tmp_path):
    with pytest.raises(LetheError, match="training data Lethe has"):
        prepare(_small_model(gan, tmp_path, dataset="my-private-points"), InfluenceConfig())


@pytest.mark.parametrize("metric", ["is", "fid"])
def test_a_metric_the_data_cannot_support_is_refused(gan, metric):
    with pytest.raises(LetheError, match=metric.upper()):
        prepare(gan, InfluenceConfig(metric=metric))


def test_nan_during_tracing_fails_the_run_and_leaves_the_model_untouched(gan, tmp_path):
    small = _small_model(gan, tmp_path)
    before = {k: v.clone() for k, v in bundle_state(small).items()}
    store = RunStore(tmp_path / "runs")
    config = InfluenceConfig(trace=TraceConfig(lr_g=1e6, lr_d=1e6), latents=100)
    run = run_now(lambda p, c: run_influence(prepare(small, config), config, progress=p, cancel=c),
                  method="influence", model="small", store=store)
    assert run.status == "failed" and "NaN or infinite" in run.error["message"]
    assert all(torch.equal(before[k], v) for k, v in bundle_state(small).items())
    with pytest.raises(NonFiniteError):
        run_influence(prepare(small, config), config)


def test_a_cancelled_verification_is_marked_cancelled_and_keeps_the_finished_replays(gan, tmp_path):
    small = _small_model(gan, tmp_path)
    config = InfluenceConfig(latents=100, targets=6, verify=True)
    cancel = CancelToken()

    def job(progress, token):
        def spy(event):
            progress(event)
            if event.stage == "verify" and event.step == 2:
                token.set()
        return run_influence(prepare(small, config), config, progress=spy, cancel=token)

    run = run_now(job, method="influence", model="small", store=RunStore(tmp_path / "runs"), cancel=cancel)
    assert run.status == "cancelled"
    verified = [e for e in run.event_records() if e.get("stage") == "verify"]
    assert len(verified) == 2 and all("true_influence" in e["metrics"] for e in verified)
    with pytest.raises(Cancelled):
        token = CancelToken()
        token.set()
        run_jobs([lambda: 1], cancel=token)


# ---------------------------------------------------------------------------------------- command line, zoo


def test_the_influence_verb_records_a_run_and_prints_tau_and_jaccard(gan, tmp_path, capsys):
    small = _small_model(gan, tmp_path)
    code = main(["influence", str(tmp_path / "small"), "--trace-epochs", "1", "--targets", "8", "--verify",
                 "--latents", "200", "--runs-dir", str(tmp_path / "runs"), "--json"])
    assert code == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert -1 <= result["kendall_tau"] <= 1 and 0 <= result["jaccard"] <= 1
    assert result["status"] == "succeeded" and result["log_bytes_per_step"] > 0 and result["metric_name"] == "ALL"
    assert RunStore(tmp_path / "runs").get(result["run"]).config["method"] == "influence"
    assert small.card.data["size"] == N


def test_a_finished_run_keeps_its_trace_and_is_verified_and_cleansed_later_with_the_same_answer(gan, tmp_path,
                                                                                                 capsys):
    from core.methods.influence import follow_up_job, follow_up_params, load_traced

    _small_model(gan, tmp_path)
    code = main(["influence", str(tmp_path / "small"), "--trace-epochs", "1", "--targets", "8", "--verify",
                 "--latents", "200", "--runs-dir", str(tmp_path / "runs"), "--json"])
    assert code == 0, capsys.readouterr().err
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    store = RunStore(tmp_path / "runs")
    run = store.get(first["run"])
    assert (run.path / "trace" / "final.npy").is_file() and first["trace_kept"] is True
    assert load_traced(run).log.n_steps == first["steps"]
    code = main(["influence", str(tmp_path / "small"), "--of-run", run.id, "--verify", "--targets", "8",
                 "--cleanse", "20", "--baseline", "random", "--runs-dir", str(tmp_path / "runs"), "--json"])
    assert code == 0, capsys.readouterr().err
    later = store.get(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run"])
    assert later.status == "succeeded" and later.config["params"]["of_run"] == run.id
    assert later.metrics["kendall_tau"] == pytest.approx(first["kendall_tau"])  # same targets, same replays
    assert set(later.metrics) >= {"test_all_before", "test_all_after[influence]", "test_all_after[random]"}
    again = run_now(follow_up_job(run, targets=8), method="influence", model=run.config["model"], store=store,
                    params=follow_up_params(run.id, 8))
    assert again.metrics["jaccard"] == later.metrics["jaccard"]
    with pytest.raises(LetheError, match="not an influence estimate"):
        load_traced(later)


def test_the_shown_influence_is_v_with_j_minus_v_without_j_and_its_sign_rule_says_which_side_hurts(gan, tmp_path):
    from core.methods.influence import Influence, sign_rule

    removal = np.array([0.3, -0.2, 0.0])  # eq. 9: V(without j) - V(with j)
    for metric, higher_is_better, hurts in (("all", True, "negative means j hurt"),
                                            ("fid", False, "positive means j hurt")):
        influence = Influence(metric, removal, higher_is_better, 0.0, 0.0)
        assert (influence.contribution == -removal).all()
        harmful = influence.most_harmful(1)[0]
        shown = influence.contribution[harmful]
        assert hurts in sign_rule(metric) and (shown < 0 if hurts.startswith("negative") else shown > 0)
        assert influence.most_helpful(1)[0] != harmful
    small = _small_model(gan, tmp_path)
    config = InfluenceConfig(trace=TraceConfig(epochs=1), latents=200)
    result = run_influence(prepare(small, config), config)
    table = result.figures["influence"]
    assert np.allclose(table["influence"], -result.figures["removal_effect"])
    assert (table["id"] == load("gaussian2d", "train").ids[:N].numpy()).all()  # what forget sets name
    assert result.metrics["most_harmful_ids"][0] == table["id"][np.argmax(table["harm"])]
    assert result.metrics["influence_sign"] == sign_rule("all")


def test_the_zoo_evaluator_of_a_users_2d_fcgan_is_found_although_two_entries_fit(gan):
    from core.zoo.lookup import entry_for

    card = ModelCard("my-fcgan", "gan", gan.card.architecture, data={"dataset": "gaussian2d"})
    assert entry_for(card).evaluator == "core.zoo.gans:evaluate_toy_gan"
    card.training = {"recipe": "core.zoo.influence_models:train_influence_fcgan"}
    assert entry_for(card).name == "influence-fcgan"


def test_the_influence_verb_refuses_is_on_2d_data_with_exit_code_2(tmp_path, capsys):
    assert main(["influence", "toy-gan", "--metric", "is", "--runs-dir", str(tmp_path)]) == 2
    assert "hint:" in capsys.readouterr().err


def test_the_papers_fcgan_recipe_runs_in_smoke_mode():
    from core.zoo.influence_models import train_influence_fcgan

    bundle = train_influence_fcgan(smoke=True)
    assert bundle.card.training["compute_dtype"] == "float64" and bundle.discriminator is not None
    assert bundle.card.training["optimiser"].startswith("plain SGD lr=0.001")


def test_the_shipped_influence_fcgan_meets_its_floors_when_re_measured():
    from core.zoo.gans import evaluate_toy_gan
    from core.zoo.lookup import floor_failures
    from core.zoo.registry import ZOO

    bundle = load_model("influence-fcgan", "cpu")
    assert bundle.card.training["weight_decay"] == 1e-3 and bundle.card.training["epochs"] == 50
    assert floor_failures(ZOO["influence-fcgan"], evaluate_toy_gan(bundle)) == []
