"""Data-parallel edits: `torchrun --nproc_per_node 2 -m core VERB ...` (gloo on this CPU) against one process.

Same verb, model, seed and GLOBAL batch: every rank draws one process's batches and trains on its half, and DDP's
gradient mean makes each step one process's step. What may differ is the order of floating-point sums (a gloo
all-reduce, a split matmul), about 1e-7 relative per step on these tiny models, so:

- the loss curves agree within 1e-3 relative (TOLERANCE; measured: 2e-8 after 150 redaction steps, 2e-6 after 30
  taming iterations, 1.5e-7 over GOLD re-weighting's per-epoch means on toy-acgan),
- the final metrics agree within one standard error of their estimate (invalidity's binomial SE; taming's QD
  within 1e-3, far below its sampling error over 100 images).

Rank 0 alone writes the run store (one run, `world_size` 2 recorded) and prints the one JSON result line. A rank
killed mid-run fails the run on rank 0, which names it, keeps the finished checkpoints and exits 2. The `Team`
helpers' arithmetic (shards, refusals, the one-process identity, failure notes) is checked without a process group.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from core.cli import main
from core.distributed import PeerFailure, Team, peer_failures, team
from core.errors import Cancelled, LetheError
from core.progress import CancelToken
from core.runs import RunStore

TOLERANCE = 1e-3
REPO = Path(__file__).resolve().parents[1]


def _torchrun(args: list[str], runs: Path) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 -m core ARGS --runs-dir RUNS --json` (a free port by itself)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "core",
           *args, "--device", "cpu", "--runs-dir", str(runs), "--json"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def _one_process(args: list[str], runs: Path, capsys) -> dict:
    assert main([*args, "--device", "cpu", "--runs-dir", str(runs), "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _curves(run_dir: str, names: tuple[str, ...]):
    """The logged values of each curve in `names`, one after the other (each curve's steps in order)."""
    frame = RunStore(Path(run_dir).parent).get(Path(run_dir).name).events()
    return np.concatenate([frame[n].dropna().to_numpy() for n in names if n in frame.columns])


def _compare(args: list[str], curves: tuple[str, ...], tmp_path: Path, capsys) -> tuple[dict, dict]:
    one = _one_process(args, tmp_path / "one", capsys)
    done = _torchrun(args, tmp_path / "two")
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads(done.stdout.strip().splitlines()[-1])  # rank 0's result only: one JSON line
    assert sum(line.startswith("{") for line in done.stdout.splitlines()) == 1
    assert len(RunStore(tmp_path / "two").ids()) == 1  # rank 0 alone wrote the store
    assert RunStore(tmp_path / "two").get(two["run"]).config["params"]["world_size"] == 2
    a, b = _curves(one["run_dir"], curves), _curves(two["run_dir"], curves)
    assert a.shape == b.shape and len(a) >= 3
    assert abs(a - b).max() <= TOLERANCE * abs(a).max(), abs(a - b).max()
    return one, two


def test_redaction_with_two_gloo_processes_follows_one_process(tmp_path, capsys):
    args = ["redact", "toy-gan", "--forget", "ids=0-299", "--epochs", "1", "--eval-samples", "1000",
            "--batch-size", "64", "--seed", "3"]
    one, two = _compare(args, ("loss_d", "loss_g"), tmp_path, capsys)
    assert abs(one["invalidity_after"] - two["invalidity_after"]) <= one["invalidity_after_se"]
    assert one["real_size"] == two["real_size"]


def test_taming_with_two_gloo_processes_follows_one_process(tmp_path, capsys):
    args = ["tame", "toy-flow", "--forget", "label=0", "--max-iterations", "30", "--seed", "1"]
    one, two = _compare(args, ("loss", "loss_forget", "loss_remember"), tmp_path, capsys)
    assert one["iterations"] == two["iterations"] == 30
    assert two["qd_forget"] == pytest.approx(one["qd_forget"], abs=1e-3)
    assert two["qd_remember"] == pytest.approx(one["qd_remember"], abs=1e-3)


def test_gold_reweighting_with_two_gloo_processes_follows_one_process(tmp_path, capsys):
    args = ["gold", "toy-acgan", "reweight", "--epochs", "2", "--train-size", "1024", "--fc-samples", "200",
            "--fc-epochs", "1", "--seed", "2"]
    one, two = _compare(args, tuple(f"loss_{p}_{b}" for b in ("baseline", "gold") for p in ("d", "g")), tmp_path,
                        capsys)
    for branch in ("baseline", "gold"):  # the same weights: GOLD's mean over the same 1000 samples agrees
        assert two[f"gold_mean_{branch}"] == pytest.approx(one[f"gold_mean_{branch}"], abs=1e-3)


def test_a_global_batch_the_ranks_cannot_split_is_refused_with_a_hint():
    with pytest.raises(LetheError, match="divisible by 2"):
        Team(0, 2).check_batch(63)
    Team(0, 2).check_batch(64)


def test_shards_cover_every_row_once():
    for n, world in ((64, 2), (7, 3), (2, 4)):
        rows = [Team(r, world).rows(n) for r in range(world)]
        assert [i for s in rows for i in range(n)[s]] == list(range(n))
    assert [Team(r, 2).shard(64) for r in range(2)] == [slice(0, 32), slice(32, 64)]


def test_one_process_is_the_identity_team():
    one = team()
    assert one == Team() and one.is_main and not one.is_distributed
    x = torch.arange(4.0, requires_grad=True)
    assert one.gather_rows(x, 4) is x and one.full_loss(x.sum()) is not None and one.mean(x) is x
    module = torch.nn.Linear(2, 2)
    assert one.wrap(module) is module
    cancel = CancelToken()
    one.agree_cancel(cancel, 3)
    cancel.set()
    with pytest.raises(Cancelled):
        one.agree_cancel(cancel, 3)  # in one process, every step checks


class _Store:
    """A stand-in for the process group's key-value store (set / check / get, as torch's TCPStore)."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def set(self, key: str, value: str) -> None:
        self.values[key] = value.encode()

    def check(self, keys: list[str]) -> bool:
        return all(k in self.values for k in keys)

    def get(self, key: str) -> bytes:
        return self.values[key]


def test_a_dead_peer_becomes_a_clear_failure_naming_the_rank_and_its_error(monkeypatch):
    import core.distributed as distributed

    def job():
        raise RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer")

    def bug():
        raise ValueError("a bug on rank 1")

    store = _Store()
    monkeypatch.setattr(distributed, "_store", lambda: store)
    monkeypatch.setattr(distributed, "_current", Team(0, 2))
    with pytest.raises(PeerFailure, match="rank 1 of 2 torchrun processes stopped without an error of its own"):
        peer_failures(job)()  # a killed rank leaves no note
    monkeypatch.setattr(distributed, "_current", Team(1, 2))
    with pytest.raises(ValueError, match="a bug"):  # other errors pass unchanged, and leave a note for the others
        peer_failures(bug)()
    monkeypatch.setattr(distributed, "_current", Team(0, 2))
    with pytest.raises(PeerFailure, match="rank 1 of 2 torchrun processes failed: ValueError: a bug on rank 1"):
        peer_failures(job)()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_rank_killed_mid_run_fails_the_run_on_rank_0_which_names_it_and_keeps_what_finished(tmp_path):
    """Two processes started as torchrun starts them (its environment, without its agent, which would end rank 0
    itself): rank 1 is killed (SIGKILL, no chance to say why) after the run's first checkpoints."""
    import time

    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2", "LETHE_COLLECTIVE_TIMEOUT": "120"}
    cmd = [sys.executable, "-m", "core", "redact", "toy-gan", "--forget", "ids=0-299", "--epochs", "50",
           "--eval-samples", "500", "--batch-size", "64", "--device", "cpu", "--runs-dir", str(runs), "--json"]
    ranks = [subprocess.Popen(cmd, cwd=REPO, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # wait for the run's first checkpoints after the pre-trained one
            ids = RunStore(runs).ids() if runs.is_dir() else []
            if ids and len(RunStore(runs).get(ids[0]).events().get("loss_d", pd.Series()).dropna()) >= 1:
                break
            assert ranks[0].poll() is None, ranks[0].communicate()[1][-2000:]
            time.sleep(0.5)
        ranks[1].kill()
        out, err = ranks[0].communicate(timeout=300)  # rank 0 does not hang
    finally:
        for process in ranks:
            process.kill()
            process.wait()
    assert ranks[0].returncode == 2, err[-2000:]
    assert "rank 1 of 2 torchrun processes stopped" in err
    run = RunStore(runs).get(RunStore(runs).ids()[0])
    assert run.status == "failed" and "rank 1 of 2" in run.error["message"]
    assert len(run.events()["loss_d"].dropna()) >= 1  # the checkpoints that finished are kept
    assert json.loads(out.strip().splitlines()[-1])["status"] == "failed"


def test_verbs_that_do_not_split_their_work_are_refused_under_torchrun(monkeypatch):
    from core.distributed import check_data_parallel

    check_data_parallel("influence")  # one process: every verb runs
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(LetheError, match="does not split its work"):
        check_data_parallel("influence")
    check_data_parallel("redact")
    check_data_parallel("gold", "reweight")
    for action, why in (("score", "one forward pass"), ("sample", "one stream"), ("active", "one after the other")):
        with pytest.raises(LetheError, match=f"gold {action} does not split its work .*{why}"):
            check_data_parallel("gold", action)
