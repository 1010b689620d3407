"""GOLD's training actions on a user's own labelled data from the command line: `gold reweight` and `gold active`
with `--data FILE.npz` (the GAN's training points and their classes) and `--heldout FILE.npz` (labelled points the
GAN never saw, the real test set of the fitting capacity), on toy-acgan at tiny sizes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.runs import RunStore


def six_clusters(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A user's 2-D data of toy-acgan's kind, made here (not by Lethe's loader): six Gaussian clusters on a circle
    of radius 3, class = cluster index mod 2."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 6, n)
    angle = 2 * np.pi * cluster / 6
    points = np.stack([3 * np.cos(angle), 3 * np.sin(angle)], 1) + 0.5 * rng.standard_normal((n, 2))
    return points.astype(np.float32), (cluster % 2).astype(np.int64)


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("gold_user")
    files = {}
    for name, n, seed in (("train", 384, 0), ("heldout", 192, 1)):
        points, labels = six_clusters(n, seed)
        files[name] = str(root / f"{name}.npz")
        np.savez(files[name], points=points, labels=labels)
    np.savez(root / "unlabelled.npz", points=six_clusters(192, 2)[0])
    files["unlabelled"] = str(root / "unlabelled.npz")
    return files


def _gold(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["gold", "toy-acgan", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_gold_reweight_trains_on_the_users_points_and_measures_on_the_users_held_out_points(user_files, capsys,
                                                                                            tmp_path):
    code, out = _gold(capsys, "reweight", "--data", user_files["train"], "--heldout", user_files["heldout"],
                      "--epochs", "2", "--fc-samples", "200", "--fc-epochs", "1", "--runs-dir", str(tmp_path))
    assert code == 0 and out["status"] == "succeeded", out
    for key in ("fitting_capacity_baseline", "fitting_capacity_gold", "gold_mean_baseline", "gold_mean_gold"):
        assert key in out, key
    assert 0 <= out["fitting_capacity_gold"] <= 1  # an accuracy on the 192 held-out points
    run = RunStore(tmp_path).get(out["run"])
    params = run.config["params"]
    assert (params["data"], params["heldout"], params["action"]) == (user_files["train"], user_files["heldout"],
                                                                     "reweight")
    history = pd.read_csv(run.path / "figures" / "history.csv")
    assert history["branch"].tolist() == ["both", "baseline", "gold"]  # the plain epoch, then the two branches


def test_fc_every_measures_the_fitting_capacity_only_every_n_epochs_and_at_the_end(user_files, capsys, tmp_path):
    code, out = _gold(capsys, "reweight", "--data", user_files["train"], "--heldout", user_files["heldout"],
                      "--epochs", "4", "--fc-every", "3", "--fc-samples", "200", "--fc-epochs", "1",
                      "--runs-dir", str(tmp_path))
    assert code == 0 and out["status"] == "succeeded", out
    history = pd.read_csv(RunStore(tmp_path).get(out["run"]).path / "figures" / "history.csv")
    measured = history.dropna(subset=["fitting_capacity"])
    assert measured["epoch"].tolist() == [3, 3, 4, 4]  # epoch 3 (every 3rd) and the last, on both branches


def test_gold_active_queries_labels_from_the_users_pool(user_files, capsys, tmp_path):
    code, out = _gold(capsys, "active", "--data", user_files["train"], "--heldout", user_files["heldout"],
                      "--schedule", "2,1,4", "--epochs", "1", "--pool-size", "128", "--fc-samples", "200",
                      "--fc-epochs", "1", "--runs-dir", str(tmp_path))
    assert code == 0 and out["status"] == "succeeded", out
    assert out["labelled_gold"] == out["labelled_random"] > 2  # both strategies reach the schedule's final size
    assert 0 <= out["fitting_capacity_gold"] <= 1 and 0 <= out["fitting_capacity_random"] <= 1
    run = RunStore(tmp_path).get(out["run"])
    pool = json.loads((run.path / "figures" / "pool_gold.json").read_text())
    assert len(pool["x"]) == 128  # the pool is the first --pool-size points of the user's file, in order
    assert np.allclose(pool["x"], np.load(user_files["train"])["points"][:128])


def test_gold_active_takes_lambda_c_and_the_validation_set_size_from_the_command_line(user_files, capsys, tmp_path):
    code, out = _gold(capsys, "active", "--data", user_files["train"], "--heldout", user_files["heldout"],
                      "--schedule", "2,1,3", "--epochs", "2", "--pool-size", "128", "--fc-samples", "200",
                      "--fc-epochs", "1", "--lambda-c", "0.05", "--val-size", "40", "--runs-dir", str(tmp_path))
    assert code == 0 and out["status"] == "succeeded", out
    run = RunStore(tmp_path).get(out["run"])
    assert (run.config["params"]["lambda_c"], run.config["params"]["val_size"]) == (0.05, 40)
    history = pd.read_csv(run.path / "figures" / "history.csv")
    assert set(history["best_epoch"]) <= {1, 2} and history["val_fitting_capacity"].between(0, 1).all()
    code, out = _gold(capsys, "active", "--data", user_files["train"], "--heldout", user_files["heldout"],
                      "--val-size", "192", "--runs-dir", str(tmp_path / "refused"))
    assert code == 2 and "the held-out set has 192" in out["error"] and "--val-size" in out["hint"]
    assert not list((tmp_path / "refused").glob("*"))  # no run was created


@pytest.mark.parametrize("action", ["reweight", "active"])
def test_gold_training_refuses_unlabelled_or_missing_held_out_points_before_a_run(action, user_files, capsys,
                                                                                  tmp_path):
    code, out = _gold(capsys, action, "--data", user_files["unlabelled"], "--heldout", user_files["heldout"],
                      "--runs-dir", str(tmp_path))
    assert code == 2 and "labels" in out["error"] and out["hint"]
    code, out = _gold(capsys, action, "--data", user_files["train"], "--runs-dir", str(tmp_path))
    assert code == 2 and "--heldout" in out["error"] + out["hint"]
    assert not list(tmp_path.glob("*"))  # no run was created
