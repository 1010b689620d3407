"""Every notebook runs top to bottom at a small size (through its tagged parameters cell), and its .ipynb and
its jupytext percent-format .py say the same thing, so reviewing the .py diff reviews the notebook."""

from __future__ import annotations

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


def test_quickstart_runs_at_a_small_size(tmp_path):
    out = tmp_path / "quickstart.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / "00-quickstart.ipynb"), str(out), cwd=str(NOTEBOOKS), kernel_name="python3",
        parameters={"MODEL": _small_model(), "N_SAMPLES": 8, "SMOKE": True, "DEVICE": "cpu"}, progress_bar=False,
    )
    executed = jupytext.read(out)
    texts = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "to forget" in texts and "succeeded" in texts
