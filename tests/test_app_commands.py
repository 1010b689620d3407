"""The command a method page shows reproduces the page's run exactly: run the shown command, and the config it
records equals the config of the run the page's button started (same params, seed and model).

The shown command is run until it has recorded its config (the first thing a run does) and then interrupted, as
is the page's run: a whole redaction would take minutes here and prove nothing more about the command."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app_harness import app_test_factory, assert_clean, pick_zoo
from core.runs import RunStore, shared_runner

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def app_test(monkeypatch):
    return app_test_factory(monkeypatch)


def _config_of_shown_command(command: str, root: Path) -> dict:
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "core"]
    proc = subprocess.Popen([sys.executable, *words[1:], "--runs-dir", str(root)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    store = RunStore(root)
    deadline = time.time() + 600
    try:
        while not store.ids():
            if proc.poll() is not None:
                raise AssertionError(f"the shown command failed: {proc.stderr.read()[-2000:]}")
            assert time.time() < deadline, "the shown command never started its run"
            time.sleep(0.5)
        time.sleep(0.5)  # config.json is written before the run id is visible, but give the file system a moment
        return store.get(store.ids()[0]).config
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def _same_run(page_config: dict, cli_config: dict) -> None:
    for key in ("method", "model", "seed", "params"):
        assert cli_config[key] == page_config[key], key


def test_the_redact_command_reproduces_every_changed_setting(app_test, tmp_path):
    at = pick_zoo(app_test().run(), "mnist-dcgan")
    at.switch_page("pages/redact.py").run()
    at.segmented_control(key="redact_algorithm").set_value("classifier").run()
    at.number_input(key="redact_epochs").set_value(2)
    at.number_input(key="redact_lam").set_value(0.8)
    at.number_input(key="redact_seed").set_value(3)
    at.number_input(key="redact_eval").set_value(2000)  # "samples per measurement", left out before issue 12
    at.number_input(key="redact_k_g").set_value(2).run()
    assert_clean(at)
    command = at.code[0].value
    assert "--eval-samples 2000" in command and "--k-g 2" in command and "--seed 3" in command
    at.button(key="redact_start").click().run()
    run_id = at.session_state["redact_run"]
    shared_runner().cancel(run_id)
    page_config = RunStore().get(run_id).config
    _same_run(page_config, _config_of_shown_command(command, tmp_path / "cli-runs"))
    shared_runner().wait(run_id, timeout=300)


def test_the_tame_command_reproduces_the_run_including_the_toys_batch_sizes(app_test, tmp_path):
    at = pick_zoo(app_test().run(), "toy-flow")
    at.switch_page("pages/tame.py").run()
    at.segmented_control(key="tame_kind").set_value("Label").run()
    at.number_input(key="tame_max_it").set_value(40)
    at.number_input(key="tame_delta").set_value(3.5)
    at.selectbox(key="tame_ablation").set_value("no-forward-kl").run()
    assert_clean(at)
    command = at.code[0].value
    assert command.startswith("python -m core tame toy-flow --forget label=0")
    assert "--remember-batch 128" in command and "--ablation no-forward-kl" in command
    at.button(key="tame_start").click().run()
    run_id = at.session_state["tame_run"]
    shared_runner().cancel(run_id)
    page_config = RunStore().get(run_id).config
    _same_run(page_config, _config_of_shown_command(command, tmp_path / "cli-runs"))
    shared_runner().wait(run_id, timeout=300)
