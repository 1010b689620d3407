"""Every notebook runs top to bottom at a small size (through its tagged parameters cell), and its .ipynb and
its jupytext percent-format .py say the same thing, so reviewing the .py diff reviews the notebook."""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import papermill
import pytest

from core.zoo.registry import ZOO, zoo_folder

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PAIRS = sorted(NOTEBOOKS.glob("*.ipynb"))


def _sources(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


@pytest.mark.parametrize("path", PAIRS, ids=lambda p: p.stem)
def test_notebook_and_its_percent_script_are_in_sync(path):
    script = path.with_suffix(".py")
    assert script.is_file(), f"{path.name} has no paired {script.name}; run `jupytext --sync {path}`"
    assert _sources(jupytext.read(path)) == _sources(jupytext.read(script)), f"run `jupytext --sync {script}`"
    tagged = [c for c in jupytext.read(script).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters` (papermill injects the small size after it)"


def _small_model() -> str:
    shipped = [n for n in ZOO if (zoo_folder(n) / "model.safetensors").is_file()]
    return next(n for n in ("mnist-dcgan", "mnist-acgan", "mnist-flow", "toy-gan") if n in shipped)


def _parameter_names(path: Path) -> set[str]:
    """The names its tagged parameters cell assigns."""
    cell = next(c for c in jupytext.read(path).cells if "parameters" in c.metadata.get("tags", []))
    return {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


def _execute_small(notebook: str, out: Path, parameters: dict) -> None:
    """Run `notebook` at a small size; every parameter must name one of its parameters cell's (papermill injects
    unknown names silently, so a renamed parameter would run the notebook at its full size)."""
    unknown = sorted(set(parameters) - _parameter_names(NOTEBOOKS / notebook))
    assert not unknown, f"{notebook} has no parameters {unknown}"
    papermill.execute_notebook(str(NOTEBOOKS / notebook), str(out), cwd=str(NOTEBOOKS), kernel_name="python3",
                               parameters=parameters, progress_bar=False)


def test_quickstart_runs_at_a_small_size(tmp_path):
    out = tmp_path / "quickstart.ipynb"
    _execute_small("00-quickstart.ipynb", out, {
        "MODEL": _small_model(), "N_SAMPLES": 8, "SMOKE": True, "DEVICE": "cpu"})
    executed = jupytext.read(out)
    texts = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "to forget" in texts and "succeeded" in texts


def test_redaction_notebook_runs_at_a_small_size(tmp_path):
    out = tmp_path / "redaction.ipynb"
    _execute_small("redaction.ipynb", out, {
        "EPOCHS": 1, "SEEDS": 1, "SIDE_SEEDS": 1, "EVAL_SAMPLES": 500, "FIRST_EPOCH_CHECKS": 2,
        "TRAIN_SIZE": 640, "DELETION_EPOCHS": 1, "TAUS": [0.5], "LAMBDAS": [0.8],
        "DIFFICULTY_LABELS": [0, 9], "DEVICE": "cpu"})
    executed = jupytext.read(out)
    texts = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Table I (label 0, MNIST)" in texts and "Table VI (label ambiguity" in texts
    assert "redaction notebook done in" in texts


def test_taming_notebook_runs_at_a_small_size(tmp_path):
    out = tmp_path / "taming.ipynb"
    _execute_small("taming.ipynb", out, {
        "SIZES": [1], "SEEDS": [0], "ATTRIBUTES": ["glasses"], "DEBIAS": ["smile", 0.3],
        "ABLATION_IMAGES": 2, "MAX_ITERATIONS": 3, "ATTRIBUTE_ITERATIONS": 3, "EVAL_SAMPLES": 100,
        "EVAL_SIZE": 50, "HELDOUT_IDENTITIES": 2, "TOY_ITERATIONS": 5,
        "WORKERS": 1})  # its runs in the kernel: worker processes would each load the flow and judges
    executed = jupytext.read(out)
    texts = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "centre mode share" in texts and "paper QD D_F" in texts and "paper BPD" in texts and "whole notebook" in texts


def test_influence_notebook_runs_at_a_small_size(tmp_path):
    out = tmp_path / "influence.ipynb"
    _execute_small("influence.ipynb", out, {
        "K_VALUES": [1], "SEEDS": [0, 1], "TARGETS": 8, "N_H": [50], "CLEANSE_SEEDS": [0],
        "LATENTS": 200, "TRAIN_SIZE": 600, "MNIST_N_H": [50], "MNIST_SEEDS": [0], "MNIST_LATENTS": 100,
        "MNIST_TRAIN": 300, "MNIST_FIG1_SEEDS": [0, 1], "MNIST_FIG1_TARGETS": 4, "MNIST_FIG1_TRAIN": 200,
        "WORKERS": 1})
    executed = jupytext.read(out)
    texts = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "t-test p" in texts and "Paper, Table 6" in texts and "most harmful points" in texts
    assert "Fig. 1, MNIST DCGAN" in texts and "N = 200 images, 4 verified per seed" in texts
    assert "test FID[mnist-lenet] after - before" in texts and "test IS[mnist-lenet] after - before" in texts
    assert "36 most harmful images" in texts


def test_unlearning_notebook_runs_at_a_small_size(tmp_path):
    out = tmp_path / "unlearning.ipynb"
    _execute_small("unlearning.ipynb", out, {
        "MNIST_FORGET": "label=0", "FACES_FORGET": "identity=0-4", "FACES_PROXY": "proxy:identity=400-404",
        "METHODS": ["ours"], "EPOCHS": 1, "PROXY_EPOCHS": 1, "FACES_EPOCHS": 1, "EVAL_SIZE": 20, "ALPHAS": [1.0],
        "LIMITED_KS": [1], "DEVICE": "cpu"})
    executed = jupytext.read(out)
    texts = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Table 1 (center, MNIST" in texts and "Table E.4" in texts and "recognised forgotten people" in texts
    assert "unlearning notebook done in" in texts


def test_gold_notebook_runs_at_a_small_size(tmp_path):
    out = tmp_path / "gold.ipynb"
    _execute_small("gold.ipynb", out, {
        "MODELS": ["mnist-acgan"], "SEEDS": [0], "SCORE_SAMPLES": 200, "FC_SAMPLES": 300, "FC_EPOCHS": 1,
        "BURN_IN": 300, "P_SWEEP": [0.1, 0.9], "SWEEP_SAMPLES": 100, "TOY_EPOCHS": 2,
        "ACTIVE_EPOCHS": 1, "ACTIVE_POOL": 200, "RW_EPOCHS": 2, "RW_SEEDS": [0],
        "MNIST_ACTIVE_EPOCHS": 1, "MNIST_ACTIVE_SEEDS": [0], "MNIST_POOL": 300, "RW_TRAIN": 300, "TOY_FC_SAMPLES": 300,
        "MNIST_WORKERS": 4})
    executed = jupytext.read(out)
    texts = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "sigma_G / sigma_C" in texts and "paper baseline / gold" in texts and "whole notebook" in texts
    assert "fitting_capacity_gold" in texts and "random" in texts  # the MNIST re-weighting and active-learning tables
    assert out.stat().st_size < 1_500_000  # image grids are static PNGs, not pixel-by-pixel JSON
