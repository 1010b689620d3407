"""The command line, `python -m core`: every verb, its --json last line, and exit code 2 with a hint on bad input.

Most tests call `core.cli.main(argv)` in this process (fast, and it sees what the test registers); three run
the real `python -m core` in a subprocess. Models: tiny test-local architectures registered below with
`core.models.registry.register` ("test-cli-cgan": a conditional GAN making 1x4x4 images from 3 classes;
"test-cli-flow": an affine flow x = shift + exp(log_scale) * z), saved into the test's temp folder; a test zoo
entry "tiny-cgan" (recipe and evaluator in this module, assets folder redirected to the temp folder) stands in
for a real zoo model. Two tests use shipped weights (`mnist-lenet`, `toy-acgan`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import core.zoo.registry as zoo_registry
from core.cli import main
from core.cli.methods import MethodCall, MethodVerb
from core.errors import LetheError
from core.models import FlowBundle, GANBundle, ModelCard, load_model, save_bundle
from core.models.registry import register
from core.progress import ProgressEvent
from core.runs import JobResult, RunStore, run_now
from core.zoo.registry import ZOO, ZooEntry

REPO = Path(__file__).resolve().parents[1]


class _CondG(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.z, self.y = nn.Linear(4, 16), nn.Embedding(3, 16)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.z(z) + self.y(y)).reshape(-1, 1, 4, 4)


class _AffineFlow(nn.Module):
    latent_shape = (1, 4, 4)

    def __init__(self) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.full((1, 4, 4), 0.5))
        self.log_scale = nn.Parameter(torch.full((1, 4, 4), -2.0))

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return self.shift + self.log_scale.exp() * z


@register("test-cli-cgan")
def _build_cgan(card: ModelCard) -> GANBundle:
    return GANBundle(card=card, generator=_CondG(), discriminator=nn.Sequential(nn.Flatten(), nn.Linear(16, 1)),
                     latent_dim=4, num_classes=3)


@register("test-cli-flow")
def _build_flow(card: ModelCard) -> FlowBundle:
    return FlowBundle(card=card, flow=_AffineFlow())


def _cgan_card() -> ModelCard:
    return ModelCard(name="tiny-cgan", family="gan", architecture="test-cli-cgan", data_shape=[1, 4, 4],
                     data={"dataset": "tiny"})


def _saved_cgan(folder: Path) -> str:
    save_bundle(_build_cgan(_cgan_card()), folder)
    return str(folder)


def _saved_flow(folder: Path) -> str:
    card = ModelCard(name="tiny-flow", family="flow", architecture="test-cli-flow", data_shape=[1, 4, 4])
    save_bundle(_build_flow(card), folder)
    return str(folder)


def train_tiny_cgan(seed=0, device="cpu", progress=None, cancel=None, smoke=False) -> GANBundle:
    """Test recipe: 'trains' for 3 steps and records its metrics like a real recipe."""
    torch.manual_seed(seed)
    bundle = _build_cgan(_cgan_card())
    for step in range(1, 4):
        cancel.raise_if_set()
        progress(ProgressEvent(step, 3, {"loss": 1.0 / step}))
    bundle.card.metrics = evaluate_tiny_cgan(bundle)
    bundle.card.training = {"epochs": 1, "smoke": smoke}
    return bundle


def evaluate_tiny_cgan(bundle: GANBundle, device="cpu") -> dict[str, float]:
    """Test evaluator: mean pixel of 50 samples, a number that changes when the weights change."""
    x, _ = bundle.sample(50, seed=0)
    return {"mean_pixel": float(x.mean())}


@pytest.fixture
def tiny_zoo(monkeypatch, tmp_path):
    """A zoo entry 'tiny-cgan' whose shipped folder lives in the test's temp folder."""
    monkeypatch.setattr(zoo_registry, "ASSETS", tmp_path / "assets")
    monkeypatch.setitem(ZOO, "tiny-cgan", ZooEntry(
        "tiny-cgan", "gan", "tiny", "test model", f"{__name__}:train_tiny_cgan", f"{__name__}:evaluate_tiny_cgan",
        {"mean_pixel": (">=", 2.0)}))
    return tmp_path / "assets" / "zoo" / "tiny-cgan"


def _cli(capsys, *argv: str, method_verbs=None) -> tuple[int, dict | None, str]:
    """Run the CLI in-process; return (exit code, the JSON of the last stdout line if any, stderr)."""
    code = main(list(argv), method_verbs=method_verbs)
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    result = json.loads(lines[-1]) if "--json" in argv and lines else None
    return code, result, err


def _subprocess(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


# --- through a real subprocess ---------------------------------------------------------------------------------

def test_zoo_list_json_names_every_zoo_model_on_the_last_line():
    proc = _subprocess("zoo", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    models = json.loads(proc.stdout.strip().splitlines()[-1])["models"]
    assert [m["name"] for m in models] == list(ZOO)
    lenet = next(m for m in models if m["name"] == "mnist-lenet")
    assert lenet["shipped"] and lenet["metrics"]["accuracy"] >= 0.97 and lenet["floor_failures"] == []


def test_runs_list_json_shows_the_runs_of_the_named_store(tmp_path):
    run = run_now(lambda p, c: {"acc": 0.5}, method="redact", model="mnist-dcgan", store=RunStore(tmp_path / "s"))
    proc = _subprocess("runs", "list", "--json", "--runs-dir", str(tmp_path / "s"))
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(proc.stdout.strip().splitlines()[-1])["runs"]
    assert [(r["id"], r["status"], r["acc"]) for r in runs] == [(run.id, "succeeded", 0.5)]


def test_a_bad_model_spec_exits_2_with_a_hint_and_no_traceback():
    proc = _subprocess("eval", "no-such-model", "--json")
    assert proc.returncode == 2
    assert "error: 'no-such-model' is not a zoo model" in proc.stderr
    assert "hint: Run `python -m core zoo list`" in proc.stderr
    assert "Traceback" not in proc.stderr
    last = json.loads(proc.stdout.strip().splitlines()[-1])  # with --json, the error is the last stdout line too
    assert set(last) == {"error", "hint"} and "'no-such-model' is not a zoo model" in last["error"]


# --- sample ----------------------------------------------------------------------------------------------------

def test_sample_png_writes_a_grid_and_the_labels_of_a_conditional_gan(tmp_path, capsys):
    spec = _saved_cgan(tmp_path / "cgan")
    code, result, _ = _cli(capsys, "sample", spec, "-n", "9", "--seed", "1", "--out", str(tmp_path / "g.png"),
                           "--json", "--device", "cpu")
    assert code == 0
    assert Image.open(tmp_path / "g.png").size == (3 * 6 + 2, 3 * 6 + 2)  # 3x3 grid of 4px images, 2px padding
    labels = np.load(tmp_path / "g.labels.npy")
    assert result["labels"] == str(tmp_path / "g.labels.npy")
    assert labels.shape == (9,) and labels.dtype == np.int64 and set(labels) <= {0, 1, 2}


def test_sample_npy_is_n_c_h_w_float32_in_unit_range_and_reproducible_from_the_seed(tmp_path, capsys):
    spec = _saved_cgan(tmp_path / "cgan")
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        assert _cli(capsys, "sample", spec, "-n", "20", "--seed", seed, "--out", str(tmp_path / f"{name}.npy"))[0] == 0
    a, b, c = (np.load(tmp_path / f"{n}.npy") for n in "abc")
    assert a.shape == (20, 1, 4, 4) and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_sample_label_draws_one_class_and_an_impossible_label_is_refused(tmp_path, capsys):
    spec = _saved_cgan(tmp_path / "cgan")
    assert _cli(capsys, "sample", spec, "-n", "6", "--label", "2", "--out", str(tmp_path / "x.npy"))[0] == 0
    assert set(np.load(tmp_path / "x.labels.npy")) == {2}
    code, _, err = _cli(capsys, "sample", spec, "-n", "6", "--label", "7", "--out", str(tmp_path / "y.npy"))
    assert code == 2 and "3 classes" in err


def test_flow_temperature_scales_the_latent(tmp_path, capsys):
    spec = _saved_flow(tmp_path / "flow")
    assert _cli(capsys, "sample", spec, "-n", "4", "--temperature", "0", "--out", str(tmp_path / "t0.npy"))[0] == 0
    assert np.allclose(np.load(tmp_path / "t0.npy"), 0.5)  # z = 0 maps to the shift
    assert _cli(capsys, "sample", spec, "-n", "4", "--out", str(tmp_path / "t1.npy"))[0] == 0
    assert np.load(tmp_path / "t1.npy").std() > 0.05
    assert not (tmp_path / "t1.labels.npy").exists()


@pytest.mark.parametrize("argv, message", [
    (["--temperature", "0.5"], "--temperature applies to flows only"),
    (["--out-suffix", ".jpg"], "End --out with .png"),
    (["-n", "0"], "-n must be a whole number from 1 to 100,000"),
])
def test_sample_refuses_bad_options_with_exit_code_2(tmp_path, capsys, argv, message):
    spec = _saved_cgan(tmp_path / "cgan")
    suffix = argv[1] if argv[0] == "--out-suffix" else ".npy"
    extra = [] if argv[0] == "--out-suffix" else argv
    code, _, err = _cli(capsys, "sample", spec, *extra, "--out", str(tmp_path / f"s{suffix}"))
    assert code == 2 and message in err and "hint:" in err


def test_the_shipped_toy_acgan_samples_labelled_points_that_a_png_cannot_hold(tmp_path, capsys):
    code, result, _ = _cli(capsys, "sample", "toy-acgan", "-n", "400", "--out", str(tmp_path / "p.npy"), "--json")
    assert code == 0 and result["shape"] == [400, 2]
    points, labels = np.load(tmp_path / "p.npy"), np.load(tmp_path / "p.labels.npy")
    assert points.shape == (400, 2) and np.isfinite(points).all() and set(labels) == {0, 1}
    code, _, err = _cli(capsys, "sample", "toy-acgan", "--out", str(tmp_path / "p.png"))
    assert code == 2 and "not images" in err and ".npy" in err


def test_a_classifier_cannot_be_sampled(tmp_path, capsys):
    code, _, err = _cli(capsys, "sample", "mnist-lenet", "--out", str(tmp_path / "x.png"))
    assert code == 2 and "does not generate samples" in err


# --- eval ------------------------------------------------------------------------------------------------------

def test_eval_of_the_shipped_mnist_lenet_meets_its_floor(capsys):
    code, result, _ = _cli(capsys, "eval", "mnist-lenet", "--json", "--device", "cpu")
    assert code == 0
    assert result["like"] == "mnist-lenet" and result["metrics"]["accuracy"] >= 0.97
    assert result["floor_failures"] == []


def test_eval_of_an_edited_model_uses_the_evaluator_of_the_zoo_model_it_came_from(tmp_path, capsys, tiny_zoo):
    edited = _build_cgan(_cgan_card())
    edited.card.name, edited.card.parent = "tiny-cgan-redacted", "tiny-cgan"
    save_bundle(edited, tmp_path / "edited")
    code, result, _ = _cli(capsys, "eval", str(tmp_path / "edited"), "--json")
    assert code == 0 and result["like"] == "tiny-cgan"
    assert result["metrics"]["mean_pixel"] == pytest.approx(
        evaluate_tiny_cgan(load_model(str(tmp_path / "edited")))["mean_pixel"])
    assert result["floor_failures"] == [f"mean_pixel = {result['metrics']['mean_pixel']} does not satisfy >= 2.0"]


def test_eval_without_a_matching_zoo_entry_asks_for_like(tmp_path, capsys):
    code, _, err = _cli(capsys, "eval", _saved_flow(tmp_path / "flow"))
    assert code == 2 and "--like" in err


# --- zoo -------------------------------------------------------------------------------------------------------

def test_zoo_train_smoke_is_a_run_and_never_touches_shipped_weights(capsys, tiny_zoo):
    code, result, err = _cli(capsys, "zoo", "train", "tiny-cgan", "--smoke", "--seed", "2", "--json")
    assert code == 0 and not tiny_zoo.exists()
    run = RunStore().get(result["run"])
    assert run.status == "succeeded" and run.config["method"] == "zoo-train" and run.config["seed"] == 2
    assert set(run.metrics) == {"mean_pixel"} and run.metrics == result["metrics"]  # the card's metrics
    assert list(run.events()["step"]) == [1, 2, 3]
    assert result["folder"] == run.model_spec and load_model(run.model_spec).card.training["smoke"] is True
    assert "train tiny-cgan [3/3]" in err  # progress lines go to stderr


def test_zoo_train_ships_float16_weights_and_reports_unmet_floors(capsys, tiny_zoo):
    code, result, err = _cli(capsys, "zoo", "train", "tiny-cgan", "--json")
    assert code == 0 and result["folder"] == str(tiny_zoo)
    assert load_model("tiny-cgan").card.dtype == "float16"
    assert result["floor_failures"] and "warning: tiny-cgan: floor not met" in err
    code, shown, _ = _cli(capsys, "zoo", "show", "tiny-cgan", "--json")
    assert shown["shipped"] and shown["card"]["metrics"] == result["metrics"]


def test_zoo_names_are_checked(capsys):
    code, _, err = _cli(capsys, "zoo", "show", "mnist-gan")
    assert code == 2 and "Zoo models: mnist-lenet" in err


# --- runs ------------------------------------------------------------------------------------------------------

def test_runs_show_gives_status_metrics_and_last_events(tmp_path, capsys):
    def job(progress, cancel):
        for step in range(1, 8):
            progress(ProgressEvent(step, 7, {"loss": float(step)}))
        return {"acc": 0.75}

    run = run_now(job, method="m", model="x", store=RunStore(tmp_path))
    code, result, _ = _cli(capsys, "runs", "show", run.id, "--runs-dir", str(tmp_path), "--json", "--events", "2")
    assert code == 0 and result["status"] == "succeeded" and result["metrics"] == {"acc": 0.75}
    assert result["events"] == 7 and [e["step"] for e in result["last_events"]] == [6, 7]
    code, _, err = _cli(capsys, "runs", "cancel", run.id, "--runs-dir", str(tmp_path))
    assert code == 2 and "only a queued or running run" in err


# --- method verbs ----------------------------------------------------------------------------------------------

def _scale_verb(fail: bool = False) -> MethodVerb:
    """A method verb the way core.methods modules declare one: scales the generator's weights by --factor."""

    def add(parser):
        parser.add_argument("--factor", type=float, default=0.5)

    def prepare(args, bundle, device):
        def job(progress, cancel):
            edited = bundle.copy()
            with torch.no_grad():
                for p in edited.generator.parameters():
                    p.mul_(args.factor)
            progress(ProgressEvent(1, 1, {"factor": args.factor}))
            if fail:
                raise LetheError("The forget set is empty.", "Pick a label that occurs in the data.")
            return JobResult(bundle=edited, metrics={"invalidity_after": 0.0})

        return MethodCall(params={"factor": args.factor}, job=job)

    return MethodVerb("scale", "scale a generator", add, prepare, families=("gan",))


def test_a_method_verb_runs_as_a_run_and_prints_metrics_and_the_edited_model(tmp_path, capsys):
    spec = _saved_cgan(tmp_path / "cgan")
    code, result, _ = _cli(capsys, "scale", spec, "--factor", "0", "--seed", "4", "--json",
                           "--run-dir", str(tmp_path / "runs"), method_verbs=[_scale_verb()])
    assert code == 0 and result["status"] == "succeeded" and result["invalidity_after"] == 0.0
    edited = load_model(result["model"])
    assert all((p == 0).all() for p in edited.generator.parameters())
    assert edited.card.parent == spec and result["seconds"] >= 0
    run = RunStore(tmp_path / "runs").get(result["run"])
    assert run.config["params"] == {"factor": 0.0} and run.config["seed"] == 4


def test_a_failing_method_verb_exits_2_and_its_run_is_marked_failed(tmp_path, capsys):
    spec = _saved_cgan(tmp_path / "cgan")
    code, result, err = _cli(capsys, "scale", spec, "--json", method_verbs=[_scale_verb(fail=True)])
    assert code == 2 and result["status"] == "failed" and result["model"] is None
    assert "The forget set is empty." in err and "hint: Pick a label" in err
    assert RunStore().get(result["run"]).status == "failed"


def test_a_method_verb_refuses_a_model_of_the_wrong_family(tmp_path, capsys):
    code, _, err = _cli(capsys, "scale", _saved_flow(tmp_path / "flow"), method_verbs=[_scale_verb()])
    assert code == 2 and "works on gan models" in err


# --- options every verb shares ---------------------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without a GPU")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error(tmp_path, capsys):
    code, _, err = _cli(capsys, "sample", _saved_cgan(tmp_path / "g"), "--out", str(tmp_path / "x.npy"),
                        "--device", "cuda")
    assert code == 2 and "no GPU" in err and "--device cpu" in err
