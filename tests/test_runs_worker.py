"""The app's runner runs each job in a worker process: progress, results, cancel and failures are recorded as in a
thread, a crashed worker fails its run, the caller's model is never touched, and a job that cannot go to a
worker runs in a thread instead."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import types

import torch

from jobs_harness import tiny_gan, wait_for
from core.errors import LetheError
from core.models import load_model
from core.progress import ProgressEvent
from core.runs import JobResult, Runner, RunStore

WAIT = 300  # a worker imports torch first: generous on a loaded machine


def test_a_job_runs_in_a_worker_process_and_records_its_events_result_and_model(tmp_path):
    runner = Runner(RunStore(tmp_path), isolate=True)
    model = tiny_gan()
    before = model.generator.weight.detach().clone()

    def job(progress, cancel):
        with torch.no_grad():
            model.generator.weight.add_(1.0)  # edits the worker's copy
        for step in (1, 2):
            progress(ProgressEvent(step, 2, {"loss": 1.0 / step}))
        return JobResult(bundle=model, metrics={"pid": os.getpid()}, figures={"table": {"rows": [1, 2]}})

    run = runner.wait(runner.start(job, method="redact", model="base-gan"), timeout=WAIT)
    assert run.status == "succeeded", run.error
    assert run.metrics["pid"] != os.getpid()  # it ran elsewhere
    assert list(run.events()["loss"]) == [1.0, 0.5]
    assert torch.equal(model.generator.weight, before)  # the caller's model is never modified
    saved = load_model(run.model_spec, device="cpu")
    assert torch.equal(saved.generator.weight, before + 1.0) and saved.card.parent == "base-gan"
    assert {p.name for p in run.figures} == {"table.json"}


def test_cancelling_a_worker_job_midway_marks_it_cancelled_and_keeps_its_events(tmp_path):
    runner = Runner(RunStore(tmp_path), isolate=True)

    def job(progress, cancel):
        for step in range(1, 100_000):
            cancel.raise_if_set()
            progress(ProgressEvent(step, 99_999, {"loss": 1.0 / step}))
            time.sleep(0.02)

    run_id = runner.start(job, method="tame", model="toy-flow")
    wait_for(lambda: len(runner.store.get(run_id).event_records()) >= 3)
    runner.cancel(run_id)
    run = runner.wait(run_id, timeout=WAIT)
    assert run.status == "cancelled"
    assert len(run.events()) >= 3 and run.metrics == {}


def test_a_lethe_error_in_a_worker_fails_the_run_with_its_message_and_hint(tmp_path):
    runner = Runner(RunStore(tmp_path), isolate=True)

    def job(progress, cancel):
        raise LetheError("the remember set is empty.", "Pick a larger remember set.")

    run = runner.wait(runner.start(job, method="tame", model="toy-flow"), timeout=WAIT)
    assert run.status == "failed"
    assert run.error["message"] == "the remember set is empty." and run.error["hint"] == "Pick a larger remember set."


def test_a_worker_that_dies_fails_its_run_and_keeps_the_events_before_it(tmp_path):
    runner = Runner(RunStore(tmp_path), isolate=True)

    def job(progress, cancel):
        progress(ProgressEvent(1, 10, {"loss": 1.0}))
        os.kill(os.getpid(), signal.SIGKILL)  # what the kernel does to a process out of memory

    run = runner.wait(runner.start(job, method="tame", model="toy-flow"), timeout=WAIT)
    assert run.status == "failed"
    assert "killed by signal SIGKILL" in run.error["message"]
    assert "worker.log" in run.error["hint"]
    assert list(run.events()["loss"]) == [1.0]


def test_a_job_that_cannot_be_pickled_runs_in_a_thread(tmp_path):
    runner = Runner(RunStore(tmp_path), isolate=True)
    lock = threading.Lock()  # a lock cannot go to another process

    def job(progress, cancel):
        with lock:
            return {"pid": os.getpid(), "thread": threading.current_thread().name}

    run = runner.wait(runner.start(job, method="m", model="x"), timeout=WAIT)
    assert run.status == "succeeded"
    assert run.metrics["pid"] == os.getpid() and run.metrics["thread"].startswith("lethe-run-")


def test_a_job_whose_code_the_worker_cannot_import_runs_in_a_thread(tmp_path, monkeypatch):
    module = types.ModuleType("lethe_test_only_in_this_process")  # importable here, nowhere else
    exec("import os\ndef job(progress, cancel):\n    return {'pid': os.getpid()}\n", module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    runner = Runner(RunStore(tmp_path), isolate=True)
    run = runner.wait(runner.start(module.job, method="m", model="x"), timeout=WAIT)
    assert run.status == "succeeded" and run.metrics["pid"] == os.getpid()
    assert "ModuleNotFoundError" in (run.path / "worker.log").read_text()


def test_a_run_cancelled_while_its_worker_starts_never_runs(tmp_path):
    runner = Runner(RunStore(tmp_path), isolate=True)

    def job(progress, cancel):
        progress(ProgressEvent(1, 1, {"loss": 1.0}))
        while True:
            cancel.raise_if_set()
            time.sleep(0.02)

    run_id = runner.start(job, method="m", model="x")
    runner.cancel(run_id)  # the worker is still importing torch
    run = runner.wait(run_id, timeout=WAIT)
    assert run.status == "cancelled" and run.event_records() == []
