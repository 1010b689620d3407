"""The executor for independent jobs (core.runs.executor): results in job order and reproducible from their seeds
wherever they run, one failing job reported without losing the others, cancel, and Ray when it is installed."""

from __future__ import annotations

import functools
import importlib.util
import operator

import pytest
import torch

from core.errors import Cancelled, LetheError
from core.progress import CancelToken
from core.runs.executor import JobFailure, run_jobs, run_keyed


def draw(n: int) -> list[float]:
    """A job whose result depends only on the random state it starts from."""
    return torch.rand(n).tolist()


def draw_seeded(seed: int, n: int) -> list[float]:
    torch.manual_seed(seed)
    return torch.rand(n).tolist()


def fail_on(bad: int, i: int) -> int:
    if i == bad:
        raise ValueError(f"job {i} is broken")
    return i * i


def test_each_job_starts_from_its_own_seed_so_one_worker_and_two_agree():
    jobs = [functools.partial(draw, 3) for _ in range(4)]
    here = run_jobs(jobs, workers=1)
    seen = []
    there = run_jobs(jobs, workers=2, progress=seen.append)
    assert here == there  # same seeds (the job index), same numbers, in job order
    assert len({tuple(r) for r in here}) == 4  # different seeds give different draws
    assert sorted(e.step for e in seen) == [1, 2, 3, 4] and all(e.total == 4 for e in seen)
    assert run_jobs(jobs[:1], seeds=[7]) == [draw_seeded(7, 3)]
    torch.manual_seed(123)
    run_jobs(jobs, workers=1)
    assert draw(3) == draw_seeded(123, 3)  # the caller's random state is as it was before the jobs


def test_keyed_jobs_come_back_under_their_keys_as_run_jobs_computes_them():
    jobs = {("k", size): functools.partial(fail_on, -1, size) for size in (3, 1, 2)}
    assert run_keyed(jobs, workers=8) == {("k", 3): 9, ("k", 1): 1, ("k", 2): 4}  # 8 workers asked, 3 jobs: 3 used
    assert list(run_keyed(jobs)) == [("k", 3), ("k", 1), ("k", 2)]  # the caller's order
    keyed = run_keyed({name: functools.partial(draw, 2) for name in "ab"}, seeds=[5, 6])
    assert keyed == {"a": draw_seeded(5, 2), "b": draw_seeded(6, 2)}  # run_jobs' options pass through


def test_a_failing_job_is_reported_and_the_others_still_run_when_asked_to_keep_going():
    jobs = [functools.partial(fail_on, 1, i) for i in range(3)]
    results = run_jobs(jobs, workers=2, keep_going=True)
    assert results[0] == 0 and results[2] == 4
    failure = results[1]
    assert isinstance(failure, JobFailure) and failure.index == 1 and failure.type == "ValueError"
    assert "job 1 is broken" in failure.message and "fail_on" in failure.traceback
    with pytest.raises(ValueError, match="job 1 is broken"):  # by default the first failure stops the batch
        run_jobs(jobs, workers=1)


def test_cancel_stops_handing_out_jobs_and_tells_the_caller():
    token, called, done = CancelToken(), [], []

    def spy(event):
        done.append(event.step)
        token.set()  # cancel as soon as the first job has finished

    with pytest.raises(Cancelled):
        run_jobs([functools.partial(draw, 2) for _ in range(5)], progress=spy, cancel=token,
                 on_cancel=lambda: called.append(True))
    assert done == [1] and called == [True]
    with pytest.raises(Cancelled):  # worker processes: nothing queued is started once cancelled
        run_jobs([functools.partial(draw, 2) for _ in range(5)], workers=2, cancel=token)


def test_bad_executor_settings_are_refused_before_any_job_runs():
    with pytest.raises(LetheError, match="unknown executor 'dask'"):
        run_jobs([functools.partial(draw, 1)], executor="dask")
    with pytest.raises(LetheError, match="workers must be"):
        run_jobs([functools.partial(draw, 1)], workers=0)
    with pytest.raises(LetheError, match="2 seeds for 1 jobs"):
        run_jobs([functools.partial(draw, 1)], seeds=[1, 2])


@pytest.fixture(scope="module")
def local_ray():
    """A 2-worker local Ray for this module (Ray is optional: requirements-ray.txt)."""
    if importlib.util.find_spec("ray") is None:
        print("SKIPPED: Ray is not installed (pip install -r requirements-ray.txt)")
        pytest.skip("Ray is not installed (pip install -r requirements-ray.txt)")
    import ray

    from core.runs.executor import ensure_ray

    ensure_ray(workers=2)
    yield ray
    ray.shutdown()


def test_ray_runs_the_jobs_on_two_workers_with_the_same_results_as_local(local_ray):
    # jobs made of library functions: Ray's workers import them by name (this test module is not on their path)
    jobs = [functools.partial(torch.rand, 3) for _ in range(4)]
    seen = []
    on_ray = run_jobs(jobs, workers=2, executor="ray", progress=seen.append)
    assert all(torch.equal(a, b) for a, b in zip(on_ray, run_jobs(jobs, workers=1)))
    assert len(seen) == 4 and local_ray.cluster_resources().get("CPU") == 2
    results = run_jobs([functools.partial(operator.truediv, 1, d) for d in (0, 2)], executor="ray", keep_going=True)
    assert isinstance(results[0], JobFailure) and results[0].type == "ZeroDivisionError" and results[1] == 0.5


def test_ray_is_not_imported_by_core():
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, core, core.runs, core.cli, core.runs.executor; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"
