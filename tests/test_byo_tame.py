"""Taming with the user's own images and judge: `tame MODEL --data DIR --judge SPEC` forgets a label of a folder
of digits on the zoo's MNIST flow, judged by the classifier the user names."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from core.cli import main
from core.data import load
from core.runs import RunStore


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    """40 MNIST digits of each of the classes 0, 1, 2, as PNG files in class folders."""
    root = tmp_path_factory.mktemp("digits")
    mnist = load("mnist", "train")
    for k in range(3):
        (root / str(k)).mkdir()
        for i, x in enumerate(mnist.x[mnist.labels == k][:40]):
            Image.fromarray((x[0].numpy() * 255).astype(np.uint8)).save(root / str(k) / f"{i}.png")
    return root


def test_tame_a_label_of_the_users_folder_judged_by_the_users_classifier(digit_folder, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["tame", "mnist-flow", "--data", str(digit_folder), "--judge", "mnist-lenet", "--forget",
                     "label=0", "--max-iterations", "2", "--eval-samples", "100", "--eval-size", "40", "--json"])
    finally:
        torch.set_num_threads(threads)
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and result["status"] == "succeeded", result
    assert result["sizes"]["forget"] == 40 and result["sizes"]["holdout"] == 0  # the user's data has no test split
    assert result["share_attribute"] == "label=0" and result["fid_judge"] == "FID[mnist-lenet]"
    params = RunStore().get(result["run"]).config["params"]
    assert params["data"] == str(digit_folder) and params["judge"] == "mnist-lenet"


@pytest.fixture(scope="module")
def heldout_digits(tmp_path_factory):
    """10 test-split MNIST digits of class 0 and 20 of class 2 (no class 1): images the user's flow never saw."""
    root = tmp_path_factory.mktemp("heldout")
    mnist = load("mnist", "test")
    for k in (0, 2):
        (root / str(k)).mkdir()
        for i, x in enumerate(mnist.x[mnist.labels == k][:10 if k == 0 else 20]):
            Image.fromarray((x[0].numpy() * 255).astype(np.uint8)).save(root / str(k) / f"{i}.png")
    return root


def test_tame_measures_the_held_out_forget_images_on_the_users_held_out_folder(digit_folder, heldout_digits, capsys):
    code = main(["tame", "mnist-flow", "--data", str(digit_folder), "--heldout", str(heldout_digits), "--forget",
                 "label=0", "--remember", "test", "--max-iterations", "1", "--eval-samples", "50", "--eval-size",
                 "5", "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and result["status"] == "succeeded", result
    # D'_F: the held-out 0s; remembered: the held-out images that are not D'_F (the 2s), never the training set
    assert result["sizes"]["holdout"] == 10 and result["sizes"]["remember"] == 20
    assert result["qd_holdout"] is not None
    assert RunStore().get(result["run"]).config["params"]["heldout"] == str(heldout_digits)


def test_held_out_images_need_their_training_data_and_must_not_be_training_images(digit_folder, capsys):
    code = main(["tame", "mnist-flow", "--heldout", str(digit_folder), "--forget", "label=0", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 2 and "without the training images" in out["error"]
    code = main(["tame", "mnist-flow", "--data", str(digit_folder), "--heldout", str(digit_folder), "--forget",
                 "label=0", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 2 and "120 of the 120 held-out images" in out["error"] and "not trained on" in out["hint"]
    assert not RunStore().ids()


def test_tame_a_mode_of_the_users_2d_points(tmp_path, capsys):
    from core.data.toy import ring5

    x, y = ring5(1000, torch.Generator().manual_seed(7))
    np.savez(tmp_path / "ring.npz", points=x.numpy(), labels=y.numpy())
    code = main(["tame", "toy-flow", "--data", str(tmp_path / "ring.npz"), "--forget", "label=0", "--max-iterations",
                 "2", "--eval-samples", "200", "--eval-size", "100", "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and result["status"] == "succeeded", result
    assert result["sizes"]["forget"] == int((y == 0).sum())
    code = main(["tame", "mnist-flow", "--data", str(tmp_path / "ring.npz"), "--forget", "label=0", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 2 and "2-D points, but the model works on 1x28x28 images" in out["error"]


def test_tame_refuses_a_judge_of_another_shape_before_any_run(digit_folder, capsys):
    code = main(["tame", "mnist-flow", "--data", str(digit_folder), "--judge", "synthfaces-attributes",
                 "--forget", "label=0", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 2 and "reads 3x32x32 images but the model makes 1x28x28" in out["error"]
    assert not RunStore().ids()


@pytest.mark.slow  # the page measures with taming's default evaluation sizes: about 80 s on two busy cores
def test_the_tame_page_tames_with_the_sidebars_data_and_judge(digit_folder, monkeypatch):
    from app_harness import app_test_factory, assert_clean, pick_zoo
    from core.runs import shared_runner

    at = pick_zoo(app_test_factory(monkeypatch)().run(), "mnist-flow")
    at.text_input(key="pick_data").set_value(str(digit_folder))
    at.text_input(key="pick_judge").set_value("mnist-lenet").run()
    at.switch_page("pages/tame.py").run()
    assert_clean(at)
    at.segmented_control(key="tame_kind").set_value("Label").run()
    at.selectbox(key="tame_label").set_value(0)
    at.number_input(key="tame_max_it").set_value(2).run()
    at.button(key="tame_start").click().run()
    assert_clean(at)
    run = shared_runner().wait(at.session_state["tame_run"], timeout=300)
    assert run.status == "succeeded", run.error
    assert run.metrics["sizes"]["forget"] == 40 and run.metrics["fid_judge"] == "FID[mnist-lenet]"
    assert RunStore().get(run.id).config["params"]["data"] == str(digit_folder)
