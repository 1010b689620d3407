"""The job runner: background jobs never block the caller, every outcome is recorded, cancel stops a job."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from jobs_harness import tiny_gan, wait_for
from core.errors import LetheError, NonFiniteError
from core.models import load_model
from core.progress import ProgressEvent
from core.runs import JobResult, Runner, RunStore, as_result, run_now, shared_runner


def test_start_returns_at_once_and_the_finished_run_holds_metrics_model_and_figures(tmp_path):
    runner = Runner(RunStore(tmp_path))
    release = threading.Event()
    edited = tiny_gan()

    def job(progress, cancel):
        progress(ProgressEvent(1, 2, {"loss": 1.0}))
        release.wait(30)
        progress(ProgressEvent(2, 2, {"loss": 0.5}))
        return JobResult(bundle=edited, metrics={"invalidity_after": 0.01},
                         figures={"film": np.full((4, 1, 8, 8), 0.5, dtype=np.float32),
                                  "table": {"rows": [1, 2]}})

    start = time.perf_counter()
    run_id = runner.start(job, method="redact", model="base-gan", params={"epochs": 2}, seed=3)
    assert time.perf_counter() - start < 5.0
    wait_for(lambda: len(runner.store.get(run_id).event_records()) == 1)
    assert runner.store.get(run_id).status == "running" and runner.active() == [run_id]
    release.set()
    run = runner.wait(run_id, timeout=30)
    assert run.status == "succeeded" and run.error is None
    assert run.metrics == {"invalidity_after": 0.01}
    assert list(run.events()["loss"]) == [1.0, 0.5]
    loaded = load_model(run.model_spec, device="cpu")
    assert torch.equal(loaded.generator.weight, edited.generator.weight)
    assert loaded.card.parent == "base-gan"  # an edited model remembers what it was edited from
    assert {p.name for p in run.figures} == {"film.npy", "film.png", "table.json"}
    assert run.config["params"] == {"epochs": 2} and run.config["seed"] == 3


def test_cancelling_a_job_midway_marks_it_cancelled_and_keeps_its_events(tmp_path):
    runner = Runner(RunStore(tmp_path))

    def job(progress, cancel):
        for step in range(1, 1000):
            cancel.raise_if_set()
            progress(ProgressEvent(step, 999, {"loss": 1.0 / step}))
            time.sleep(0.01)
        return tiny_gan()

    run_id = runner.start(job, method="tame", model="toy-flow")
    wait_for(lambda: len(runner.store.get(run_id).event_records()) >= 3)
    runner.cancel(run_id)
    run = runner.wait(run_id, timeout=30)
    assert run.status == "cancelled"
    assert 3 <= len(run.events()) < 999
    assert run.model_spec is None and run.metrics == {}


def test_a_cancel_request_from_another_process_stops_the_job(tmp_path):
    runner = Runner(RunStore(tmp_path))

    def job(progress, cancel):
        while True:
            cancel.raise_if_set()
            time.sleep(0.02)

    run_id = runner.start(job, method="m", model="x")
    RunStore(tmp_path).request_cancel(run_id)  # what `python -m core runs cancel ID` does
    assert runner.wait(run_id, timeout=30).status == "cancelled"
    with pytest.raises(LetheError, match="only a queued or running run"):
        RunStore(tmp_path).request_cancel(run_id)


def test_a_lethe_error_fails_the_run_with_its_message_and_hint(tmp_path):
    def job(progress, cancel):
        progress(ProgressEvent(1, 5, {"loss": 0.3}))
        raise LetheError("The redaction set is empty.", "Pick a label that occurs in the data.")

    run = run_now(job, method="redact", model="mnist-dcgan", store=RunStore(tmp_path))
    assert run.status == "failed"
    assert run.error["message"] == "The redaction set is empty."
    assert run.error["hint"] == "Pick a label that occurs in the data."
    assert len(run.events()) == 1
    assert "The redaction set is empty." in run.traceback


def test_a_non_finite_loss_fails_the_run_like_any_lethe_error(tmp_path):
    def job(progress, cancel):
        raise NonFiniteError("The generator loss became NaN at step 12.", "Lower the learning rate.")

    run = run_now(job, method="redact", model="mnist-dcgan", store=RunStore(tmp_path))
    assert run.status == "failed" and run.error["type"] == "NonFiniteError"
    assert run.error["hint"] == "Lower the learning rate."


def test_an_unexpected_exception_fails_with_a_short_message_and_the_traceback_on_disk(tmp_path):
    def exploding_helper():
        raise ZeroDivisionError("division by zero " + "x" * 1000)

    run = run_now(lambda p, c: exploding_helper(), method="m", model="x", store=RunStore(tmp_path))
    assert run.status == "failed"
    assert run.error["message"].startswith("ZeroDivisionError: division by zero")
    assert len(run.error["message"]) <= 300
    assert "traceback.txt" in run.error["hint"]
    assert "exploding_helper" in run.traceback


def test_job_results_of_every_shape_are_accepted():
    bundle = tiny_gan()

    class MethodResult:  # a method's own result type, with the fields the runner reads
        def __init__(self):
            self.bundle, self.metrics, self.history = bundle, {"q": 0.5}, [1, 2]

    assert as_result(None) == JobResult()
    assert as_result(bundle).bundle is bundle
    assert as_result({"acc": 1.0}).metrics == {"acc": 1.0}
    assert as_result(MethodResult()).metrics == {"q": 0.5}
    with pytest.raises(TypeError, match="JobResult"):
        as_result(42)


def test_the_shared_runner_is_one_per_store_root(tmp_path):
    assert shared_runner(tmp_path) is shared_runner(str(tmp_path))
    assert shared_runner(tmp_path / "a") is not shared_runner(tmp_path)


def test_with_one_slot_a_second_job_waits_queued_and_can_be_cancelled_before_it_starts(tmp_path):
    runner = Runner(RunStore(tmp_path), max_parallel=1)
    release = threading.Event()
    started = []

    def job(progress, cancel):
        started.append(True)
        release.wait(30)
        return {"done": 1.0}

    first = runner.start(job, method="m", model="x")
    wait_for(lambda: started)
    second = runner.start(job, method="m", model="x")
    third = runner.start(job, method="m", model="x")
    time.sleep(0.5)
    assert [runner.store.get(i).status for i in (first, second, third)] == ["running", "queued", "queued"]
    runner.cancel(third)
    assert runner.wait(third, timeout=30).status == "cancelled"
    release.set()
    assert runner.wait(first, timeout=30).status == "succeeded"
    assert runner.wait(second, timeout=30).status == "succeeded"
    assert len(started) == 2  # the cancelled job never ran


def test_a_background_job_gets_the_gil_back_within_the_job_switch_interval(tmp_path):
    import sys

    from core.runs.runner import JOB_SWITCH_INTERVAL

    previous = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)  # CPython's default: a drawing thread kept the GIL up to 5 ms per hand-back
        runner = Runner(RunStore(tmp_path))
        runner.wait(runner.start(lambda progress, cancel: None, method="m", model="x"), timeout=30)
        assert JOB_SWITCH_INTERVAL < 0.005 and sys.getswitchinterval() == pytest.approx(JOB_SWITCH_INTERVAL, rel=0.01)
        sys.setswitchinterval(0.0002)  # a process that chose a shorter one keeps it
        runner.start(lambda progress, cancel: None, method="m", model="x")
        assert sys.getswitchinterval() == pytest.approx(0.0002, rel=0.01)
    finally:
        sys.setswitchinterval(previous)
