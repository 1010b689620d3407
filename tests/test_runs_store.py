"""The run store: what a run folder holds, that every file read is whole, and that a killed run says so."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from core.errors import LetheError
from core.progress import ProgressEvent
from core.runs import RunStore, default_root, effective_status, run_now
from core.runs.store import STALE_SECONDS

REPO = Path(__file__).resolve().parents[1]


@dataclass
class _Config:
    epochs: int = 3
    lam: float = 0.85


def test_default_root_is_lethe_runs_env_then_repo_runs(monkeypatch, tmp_path):
    assert default_root() == tmp_path / "runs"  # conftest sets LETHE_RUNS
    monkeypatch.delenv("LETHE_RUNS")
    assert default_root() == REPO / "runs"
    assert "/runs/" in (REPO / ".gitignore").read_text().split()


def test_config_records_method_model_params_seed_device_and_versions(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("redact", "mnist-dcgan", {"config": _Config(), "forget": "label=0"}, seed=7, device="cpu")
    config = store.get(writer.id).config
    assert config["method"] == "redact" and config["model"] == "mnist-dcgan"
    assert config["params"] == {"config": {"epochs": 3, "lam": 0.85}, "forget": "label=0"}
    assert config["seed"] == 7 and config["device"] == "cpu"
    assert {"python", "torch", "torchvision", "lethe", "git"} <= set(config["versions"])
    assert config["started"].endswith("Z")
    assert store.get(writer.id).status == "queued"


def test_events_are_one_json_line_each_with_images_in_files(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("m", "x")
    writer.append(ProgressEvent(1, 2, {"loss": 0.5}, stage="train"))
    writer.append(ProgressEvent(2, 2, {"loss": 0.25, "acc": 0.9}, images=np.full((2, 1, 4, 4), 0.5)))
    lines = (writer.path / "events.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["metrics"] == {"loss": 0.5}
    run = store.get(writer.id)
    frame = run.events()
    assert list(frame["step"]) == [1, 2] and list(frame["loss"]) == [0.5, 0.25]
    assert np.isnan(frame["acc"][0]) and frame["acc"][1] == 0.9
    image_file = frame["images"][1]
    assert image_file == "events/000002.npy" and len(lines[1]) < 400  # referenced, not inlined
    assert run.images(image_file).shape == (2, 1, 4, 4)
    assert run.status_doc["step"] == 2 and run.status_doc["total"] == 2


def test_a_saved_dataframe_reads_back_as_the_runs_table_and_a_missing_one_is_none(tmp_path):
    import pandas as pd

    store = RunStore(tmp_path)
    writer = store.create("m", "x")
    writer.save_figure("history", pd.DataFrame({"round": [0, 1], "fitting_capacity": [0.25, 0.5]}))
    run = store.get(writer.id)
    assert run.table("history").to_dict("list") == {"round": [0, 1], "fitting_capacity": [0.25, 0.5]}
    assert run.table("nothing") is None


def test_a_half_written_last_event_line_is_skipped(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("m", "x")
    writer.append(ProgressEvent(1, 3, {"loss": 1.0}))
    with open(writer.path / "events.jsonl", "a") as fh:
        fh.write('{"seq": 2, "step": 2, "metr')
    assert list(store.get(writer.id).events()["step"]) == [1]


def test_rereading_a_growing_event_log_sees_every_event_once_and_a_line_when_it_is_whole(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("m", "x")
    writer.append(ProgressEvent(1, 9, {"loss": 1.0}))
    run = store.get(writer.id)
    assert list(run.events()["step"]) == [1]
    writer.append(ProgressEvent(2, 9, {"loss": 0.5}))
    with open(writer.path / "events.jsonl", "a") as fh:  # a line being written while the view reads
        fh.write('{"seq": 3, "step": 3, "metrics": {"lo')
    assert list(run.events()["step"]) == [1, 2]
    with open(writer.path / "events.jsonl", "a") as fh:
        fh.write('ss": 0.25}}\n')
    assert list(run.events()["step"]) == [1, 2, 3] and list(run.events()["loss"]) == [1.0, 0.5, 0.25]
    replaced = writer.path / "events.jsonl.new"  # a log replaced by a shorter one is read from its start
    replaced.write_text('{"seq": 1, "step": 7, "metrics": {}}\n')
    os.replace(replaced, writer.path / "events.jsonl")
    assert list(run.events()["step"]) == [7]


def test_status_file_is_always_whole_while_it_is_rewritten(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("m", "x")
    stop = threading.Event()

    def hammer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            writer.update_status(message="x" * (i % 5000))

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        for _ in range(300):
            doc = json.loads((writer.path / "status.json").read_text())  # raises if ever partial
            assert doc["status"] == "queued"
    finally:
        stop.set()
        thread.join()
    assert [p.name for p in writer.path.iterdir() if p.name.startswith(".")] == []  # no temp files left behind


def test_a_run_on_another_host_is_interrupted_once_its_heartbeat_is_stale():
    doc = {"status": "running", "host": "elsewhere", "pid": 1, "heartbeat": 1000.0}
    assert effective_status(doc, now=1000.0 + STALE_SECONDS / 2) == "running"
    assert effective_status(doc, now=1000.0 + STALE_SECONDS + 1) == "interrupted"
    assert effective_status({**doc, "status": "succeeded"}, now=1e12) == "succeeded"


def test_a_running_status_whose_process_is_gone_reads_as_interrupted(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    doc = {"status": "running", "host": socket.gethostname(), "pid": proc.pid, "heartbeat": time.time()}
    assert effective_status(doc) == "interrupted"
    assert effective_status({**doc, "pid": os.getpid()}) == "running"


_KILLED_RUN = textwrap.dedent("""
    import sys, time
    from core.progress import ProgressEvent
    from core.runs import RunStore, run_now

    def job(progress, cancel):
        for step in range(1, 4):
            progress(ProgressEvent(step, 100, {"loss": 1.0 / step}))
        time.sleep(600)  # killed here

    run_now(job, method="sleeper", model="toy-gan", store=RunStore(sys.argv[1]))
""")


def test_a_killed_process_leaves_its_run_interrupted_with_every_event(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(tmp_path)], cwd=REPO)
    store = RunStore(tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline:
        runs = store.runs()
        if runs and len(runs[0].event_records()) == 3:
            break
        assert proc.poll() is None, "the run's process ended before it was killed"
        time.sleep(0.1)
    assert store.get(store.ids()[0]).status == "running"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run = store.get(store.ids()[0])
    assert run.status == "interrupted"
    assert list(run.events()["loss"]) == [1.0, 0.5, pytest.approx(1 / 3)]
    assert run.error["type"] == "Interrupted"
    assert store.index()["status"].tolist() == ["interrupted"]


def test_index_lists_runs_newest_first_with_headline_metrics(tmp_path):
    store = RunStore(tmp_path)
    first = run_now(lambda p, c: {"invalidity_after": 0.004, "note": "text"}, method="redact", model="a", store=store)
    time.sleep(1.1)  # run ids carry the start second
    second = run_now(lambda p, c: None, method="tame", model="b", store=store)
    index = store.index()
    assert index["id"].tolist() == [second.id, first.id]
    assert {"id", "method", "model", "status", "started", "duration", "invalidity_after"} <= set(index.columns)
    assert "note" not in index.columns  # only numbers are headline metrics
    assert index.loc[1, "invalidity_after"] == 0.004 and np.isnan(index.loc[0, "invalidity_after"])
    assert (index["status"] == "succeeded").all()


def test_an_unknown_run_id_says_how_to_list_runs(tmp_path):
    with pytest.raises(LetheError) as info:
        RunStore(tmp_path).get("nope")
    assert "runs list" in info.value.hint


def test_finished_runs_can_be_deleted_but_active_ones_cannot(tmp_path):
    store = RunStore(tmp_path)
    active = store.create("m", "x")
    with pytest.raises(LetheError, match="still queued"):
        store.delete(active.id)
    done = run_now(lambda p, c: None, method="m", model="x", store=store)
    store.delete(done.id)
    assert store.ids() == [active.id]
