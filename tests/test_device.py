"""One device, any device: `--device`, host reads in the inner loops, and `--precision`.

Host reads (`.item()`, `float(t)`, `bool(t)`, `.tolist()`, ...) are counted with `core.device.counting_host_reads`:
on a GPU each one waits for the device, so a training step should make none it can avoid. Counted per step as the
difference between a run of 2k and of k steps (set-up and checkpoints cancel out). Measured before this change:
redaction 5.2 reads per step (two `loss.item()`, two `isfinite` branches, the mixture count), taming 21 per
iteration (12 `float()`, 7 `bool()`, 2 `.cpu()` of its host-resident images); influence 10 per trace step (2
`float()` losses, 8 `bool()` finiteness checks) and 3 per inference step (the losses and a `.cpu()` of the
per-instance terms); GOLD 5 per re-weighting step (3 `.item()`, 2 `bool()`) and 2 per scored batch.

The CUDA tests run wherever torch sees a GPU and are skipped, with the reason printed (`pytest -ra`), elsewhere.
"""

from __future__ import annotations

import pytest
import torch

from core.cli import main
from core.data import load
from core.device import counting_host_reads, resolve_device
from core.errors import LetheError
from core.methods.redaction import RedactionConfig, redact
from core.methods.redaction.sets import RedactionSet
from core.methods.taming import TamingConfig, prepare, tame
from core.models.spec import load_model
from core.precision import Precision, check_precision

NO_CUDA = "no CUDA: torch sees no GPU on this machine, so the device tests run on a GPU machine only"


def _half_plane() -> RedactionSet:
    return RedactionSet("x0 > 2", validity=lambda x: x[:, 0] <= 2, members=lambda d: d.x[:, 0] > 2)


@pytest.fixture(scope="module")
def toy_gan():
    return load_model("toy-gan", "cpu"), load("gaussian2d", "train")


def _redaction_reads(gan, data, epochs: int, device: str = "cpu", **config) -> tuple[dict, int]:
    settings = dict(epochs=epochs, eval_samples=100, batch_size=512, first_epoch_checks=1, **config)
    with counting_host_reads() as reads:
        result = redact(gan.copy().to(device), _half_plane(), data, RedactionConfig(**settings), seed=0)
    return dict(reads), result.metrics["real_size"] // 512


def test_a_redaction_step_reads_nothing_back_from_the_device(toy_gan):
    gan, data = toy_gan
    one, steps = _redaction_reads(gan, data, 1)
    two, _ = _redaction_reads(gan, data, 2)
    epoch = {k: two.get(k, 0) - one.get(k, 0) for k in set(one) | set(two)}  # the reads of one more epoch
    assert epoch.get("item", 0) == epoch.get("__bool__", 0) == epoch.get("__float__", 0) == 0, epoch
    # what is left: per step, int() of the count of fakes drawn from Omega (a tensor of the CPU generator that
    # never lives on the device); per epoch, the checkpoint's one read of the summed losses and its film column
    assert steps <= epoch["__int__"] <= steps + 1 and sum(epoch.values()) - epoch["__int__"] <= 4, epoch


def test_a_taming_iteration_reads_the_device_twice():
    flow = load_model("toy-flow", "cpu")
    sets, judges = prepare(flow, "label=0", seed=0, eval_size=100)
    reads = {}
    for n in (10, 20):
        config = TamingConfig(max_iterations=n, stats_size=128, remember_batch=32, forget_batch=32, refresh_every=1000,
                              monitor_every=1000, monitor_samples=50, eval_samples=100, epsilon=1e-6)
        with counting_host_reads() as counted:
            assert tame(flow, sets, config, seed=0, judges=judges).metrics["iterations"] == n
        reads[n] = counted
    per_iteration = {k: (reads[20][k] - reads[10][k]) / 10 for k in reads[20]}
    # one read of (finite?, at the threshold?) before the step, one of every metric after it; the two .cpu() are
    # of the training images, which live on the host
    assert per_iteration.get("tolist", 0) == 2
    assert sum(per_iteration.get(k, 0) for k in ("item", "__float__", "__bool__", "__int__", "numpy")) == 0


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_redaction_at_reduced_precision_on_the_cpu_follows_fp32(toy_gan, precision):
    gan, data = toy_gan
    config = dict(epochs=1, eval_samples=2000, batch_size=256, first_epoch_checks=2)
    full = redact(gan, _half_plane(), data, RedactionConfig(**config), seed=0)
    low = redact(gan, _half_plane(), data, RedactionConfig(**config, precision=precision), seed=0)
    assert low.bundle.generator.state_dict()["net.0.weight"].dtype == torch.float32  # weights stay fp32
    for a, b in zip(full.history[1:], low.history[1:]):
        assert b["loss_d"] == pytest.approx(a["loss_d"], abs=0.02) and b["loss_g"] == pytest.approx(a["loss_g"], abs=0.02)
    assert abs(low.metrics["invalidity_after"] - full.metrics["invalidity_after"]) <= 3 * full.metrics[
        "invalidity_after_se"]


def test_fp16_steps_through_a_grad_scaler_and_bf16_does_not():
    model = torch.nn.Linear(3, 1)
    fp16 = Precision("fp16", "cpu").stepper(torch.optim.SGD(model.parameters(), lr=0.1))
    assert fp16.scaler is not None and fp16.scaler.is_enabled()
    before = model.weight.detach().clone()
    start = model(torch.ones(4, 3)).square().mean().item()
    for _ in range(20):  # the scaler skips the steps whose scaled fp16 gradients overflow, and lowers its scale
        with Precision("fp16", "cpu").autocast():
            loss = model(torch.ones(4, 3)).float().square().mean()
        fp16.step(loss, clip_params=model.parameters(), clip=1.0)
    assert not torch.equal(before, model.weight) and torch.isfinite(model.weight).all()
    assert model(torch.ones(4, 3)).square().mean().item() < start  # the unscaled steps went downhill
    assert Precision("bf16", "cpu").stepper(torch.optim.SGD(model.parameters(), lr=0.1)).scaler is None


def test_methods_whose_maths_needs_fp32_refuse_lower_precision_and_say_why(capsys):
    for verb, why in (("tame", "log-determinants"), ("influence", "Jacobian-vector"), ("gold", "logits")):
        with pytest.raises(LetheError, match=why):
            check_precision(verb, "bf16")
        check_precision(verb, "fp32")
    check_precision("redact", "fp16")
    assert main(["tame", "toy-flow", "--forget", "label=0", "--precision", "bf16", "--device", "cpu"]) == 2
    assert "tame runs in fp32 only" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: asking for CUDA succeeds here")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(LetheError, match="no GPU"):
        resolve_device("cuda")
    with pytest.raises(LetheError, match="Unknown device"):
        resolve_device("tpu")
    assert resolve_device("auto") == torch.device("cpu")


def test_redaction_on_cuda_keeps_every_tensor_on_the_gpu(toy_gan):
    if not torch.cuda.is_available():
        pytest.skip(NO_CUDA)
    gan, data = toy_gan
    result = redact(gan.copy().to("cuda"), _half_plane(), data, RedactionConfig(epochs=1, eval_samples=500,
                                                                                batch_size=512), seed=0)
    assert result.bundle.device.type == "cuda" and result.metrics["invalidity_after"] >= 0


def test_torchrun_gives_each_process_its_own_gpu(monkeypatch):
    if not torch.cuda.is_available():
        pytest.skip(NO_CUDA)
    monkeypatch.setenv("LOCAL_RANK", str(torch.cuda.device_count() - 1))
    assert resolve_device("auto") == torch.device("cuda", torch.cuda.device_count() - 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)


def test_unlearning_at_bf16_on_the_cpu_follows_fp32():
    from test_methods_unlearning import _model, _sets  # the tiny pretrained conv-i2i on the bars toy

    from core.methods.unlearning import UnlearnConfig, unlearn

    model, sets = _model(), _sets()
    runs = {p: unlearn(model, sets, UnlearnConfig(epochs=2, batch_size=16, log_every=1, precision=p), seed=0)
            for p in ("fp32", "bf16")}
    full, low = runs["fp32"].history, runs["bf16"].history
    assert len(full) == len(low) >= 3
    assert all(b["loss"] == pytest.approx(a["loss"], rel=0.05, abs=1e-3) for a, b in zip(full, low))
    assert next(runs["bf16"].bundle.encoder.parameters()).dtype == torch.float32


def _per_step(run, small: int, large: int) -> dict[str, float]:
    """Host reads per step: reads of `run(large)` minus reads of `run(small)`, over the extra steps. `run(k)`
    returns the number of steps it took; its reports (1/20 of the steps, 20 in both) and set-up cancel out."""
    counted, steps = {}, {}
    for k in (small, large):
        with counting_host_reads() as reads:
            steps[k] = run(k)
        counted[k] = reads
    extra = steps[large] - steps[small]
    return {name: (counted[large][name] - counted[small][name]) / extra for name in counted[large] | counted[small]}


def test_an_influence_trace_step_and_inference_step_read_nothing_back_from_the_device(toy_gan, tmp_path):
    from core.methods.influence import Game, MetricSets, TraceConfig, estimate, make_metric, trace

    gan, data = toy_gan
    x, game = data.x[:600], Game(gan, torch.float64)  # 6 steps per epoch at batch 100
    metric = make_metric("all", game, MetricSets.draw(load("gaussian2d", "test"), gan.latent_dim, 200, seed=0), None,
                         "gaussian2d")
    logs = {}

    def traced(epochs: int) -> int:
        logs[epochs] = trace(game, x, TraceConfig(epochs=epochs, checkpoint_every=1000), 0, tmp_path / str(epochs))
        return logs[epochs].n_steps

    step = _per_step(traced, 10, 20)
    # what is left: the schedule's S_t and Z_t, drawn on the host, written to the log on disk (2 .numpy() a step);
    # the finiteness of every loss and parameter is read once per report, not per step
    assert step.get("numpy", 0) == 2 and sum(v for k, v in step.items() if k != "numpy") == 0, step
    inference = _per_step(lambda epochs: estimate(game, x, logs[epochs], metric).values.size and
                          logs[epochs].n_steps, 10, 20)
    assert sum(inference.values()) == 0, inference  # the per-instance terms are summed on the device


@pytest.fixture(scope="module")
def toy_acgan():
    return load_model("toy-acgan", "cpu"), load("clusters6", "train")


def test_a_gold_reweighting_step_reads_nothing_back_from_the_device(toy_acgan):
    from core.methods.gold import reweight_power, terms
    from core.zoo.gans import ACGANRecipe, fit_acgan

    gan, data = toy_acgan

    def weights(logit, class_logits, c):  # eq. 5's weights, as `reweight` passes them
        return reweight_power(sum(terms(logit, class_logits, c)), 1.0)

    def trained(batches: int) -> int:
        n = 128 * batches
        fit_acgan(gan.copy(), data.x[:n], data.labels[:n], ACGANRecipe(epochs=1, lr=1e-3), seed=0,
                  fake_weights=weights)
        return batches

    step = _per_step(trained, 5, 10)
    assert sum(step.values()) == 0, step  # the epoch's losses are summed on the device and read once


def test_gold_scoring_reads_once_per_call_and_the_burn_in_once_per_batch_of_samples(toy_acgan):
    from core.methods.gold import burn_in, rejection_sample, score

    gan, data = toy_acgan
    per_row = _per_step(lambda n: score(gan, data.x[:n], data.labels[:n], "real", batch_size=500).marginal.numel(),
                        1000, 3000)
    assert sum(per_row.values()) == 0, per_row  # the heads' outputs leave the device once, at the end
    per_sample = _per_step(lambda n: burn_in(gan, n, seed=0, p=0.1).log_m and n, 1000, 3000)
    # what is left: G's samples come back to the host once per batch of 500 (GANBundle.sample returns them there)
    assert sum(per_sample.values()) * 500 == pytest.approx(1.0), per_sample
    calibration = burn_in(gan, 1000, seed=0, p=0.1)
    proposals = _per_step(lambda n: rejection_sample(gan, n, 0.1, calibration=calibration, batch_size=500).proposed,
                          200, 2000)
    per_batch = {k: v * 500 for k, v in proposals.items()}
    # each batch of 500 proposals: its samples and D's two heads come to the host (3 device reads, and a no-op
    # .cpu() of the host-drawn labels); the acceptance test then reads host tensors only (labels' range, M, the
    # accepted count): a few per batch, none per sample
    assert 3 <= per_batch["cpu"] <= 4 and sum(per_batch.values()) <= 14, per_batch
