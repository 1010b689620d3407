"""One executor interface for independent jobs: design guide, "Independent jobs (counterfactual retrains, seeds,
sweeps) go through one executor interface".

    results = run_jobs(jobs, workers=2)                          # local worker processes (spawn)
    results = run_jobs(jobs, executor="ray")                     # Ray tasks on a local Ray started here
    results = run_jobs(jobs, executor="ray", ray_address="auto") # ... or on an existing Ray cluster
    by_key = run_keyed({(size, seed): job, ...}, workers=2)     # {key: result}, as a notebook's tables want

A job is a picklable zero-argument callable (a top-level function, a `functools.partial` of one, or an instance
of a top-level dataclass with `__call__`). `run_jobs` returns the results in job order, whatever the order of
completion, and reports a `ProgressEvent` as each job finishes (with `describe(i, result)`'s metrics), so a run
whose job fans out keeps every finished job in its event log.

- Seeding: job i runs after `torch.manual_seed(seeds[i])` (and numpy's and Python's generators), `seeds[i] = i`
  unless given, in whichever process runs it; a job run alone, in a pool or on Ray starts from the same state,
  and jobs run in the caller's process leave the caller's random state as it was.
- `local` (default): with 1 worker, jobs run here one after the other; with W > 1, in W worker processes
  (`ProcessPoolExecutor` with the spawn start method, so no thread state is forked), each limited to one torch
  thread so W workers share W cores without oversubscription.
- `ray`: one Ray task per job (1 CPU each). Ray is optional (`requirements-ray.txt`) and imported only here, when
  asked for; without `ray_address` (or `$RAY_ADDRESS`) a local Ray with `workers` CPUs is started, with one it
  joins that cluster ("auto" finds the cluster `ray start` made on this node). Workers import `core`, so a
  cluster needs Lethe installed on every node and, for jobs that write runs, the run store on a shared filesystem.
- Failure: by default the first failing job's exception propagates (the remaining jobs are dropped). With
  `keep_going=True` a failing job's result is a `JobFailure` and the others still run.
- Cancel: when the token is set, no further job is handed out, queued jobs are dropped, `on_cancel()` runs (a
  sweep uses it to ask its jobs' runs to stop through the run store) and `Cancelled` is raised once the jobs
  already running have ended (local) or been cancelled (Ray).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import random
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterator, Mapping, Sequence, TypeVar

import numpy as np
import torch

from core.errors import Cancelled, LetheError
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn

EXECUTORS = ("local", "ray")
RAY_INSTALL = "pip install -r requirements-ray.txt"
POLL_SECONDS = 0.25
Describe = Callable[[int, Any], dict[str, float]]  # (job index, result) -> metrics for the progress event
Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class JobFailure:
    """What a job that raised left behind (with `keep_going=True`): its index, the exception's type and message,
    the LetheError hint if it was one, and the traceback text."""

    index: int
    type: str
    message: str
    hint: str = ""
    traceback: str = ""


@dataclass(frozen=True)
class _Outcome:
    """A job's value, or its failure; what crosses the process boundary (exceptions may not pickle)."""

    value: Any = None
    failure: JobFailure | None = None
    exception: BaseException | None = None


def check_executor(executor: str, workers: int) -> None:
    """A LetheError for an unknown executor or a worker count below 1 (before any job starts)."""
    if executor not in EXECUTORS:
        raise LetheError(f"unknown executor {executor!r}.", f"Use one of {', '.join(EXECUTORS)}.")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise LetheError(f"workers must be a whole number >= 1, got {workers!r}.",
                         "Use 1 (one job at a time) or the number of cores to use.")


def seeded_call(job: Callable[[], Any], index: int, seed: int, threads: int | None = 1) -> _Outcome:
    """Run one job from a fixed random state (torch, numpy, random seeded with `seed`), with `threads` torch
    threads (None: leave as is), and catch its failure so that it can be sent back from any worker."""
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        return _Outcome(value=job())
    except Exception as exc:  # noqa: BLE001 - reported to the caller, who decides whether it is fatal
        failure = JobFailure(index, type(exc).__name__, getattr(exc, "message", None) or str(exc),
                             getattr(exc, "hint", "") or "", "".join(traceback.format_exception(exc)))
        try:
            pickle.dumps(exc)
            return _Outcome(failure=failure, exception=exc)
        except Exception:  # noqa: BLE001 - an exception that cannot travel is re-raised as a LetheError
            return _Outcome(failure=failure)


@contextlib.contextmanager
def _caller_random_state() -> Iterator[None]:
    """Keep the caller's torch, numpy and Python random states across a job run in this process."""
    states = torch.random.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        torch.random.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])


def run_jobs(jobs: Sequence[Callable[[], Any]], workers: int = 1, executor: str = "local",
             progress: ProgressFn = NO_PROGRESS, cancel: CancelToken | None = None, stage: str = "jobs",
             describe: Describe | None = None, *, seeds: Sequence[int] | None = None, keep_going: bool = False,
             ray_address: str | None = None, on_cancel: Callable[[], None] | None = None) -> list[Any]:
    """Run every job and return the results in job order (see the module docstring)."""
    cancel = cancel or CancelToken()
    check_executor(executor, workers)
    seeds = list(range(len(jobs))) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != len(jobs):
        raise LetheError(f"{len(seeds)} seeds for {len(jobs)} jobs.", "Give one seed per job, or none.")
    results: list[Any] = [None] * len(jobs)
    count = 0

    def finished(i: int, outcome: _Outcome) -> None:
        nonlocal count
        count += 1
        if outcome.failure is not None:
            if not keep_going:
                if outcome.exception is not None:
                    raise outcome.exception
                raise LetheError(f"job {i} failed: {outcome.failure.type}: {outcome.failure.message}",
                                 outcome.failure.hint or "Its traceback: " + outcome.failure.traceback[-500:])
            results[i] = outcome.failure
            metrics = {"job": float(i), "failed": 1.0}
        else:
            results[i] = outcome.value
            metrics = {"job": float(i), **(describe(i, outcome.value) if describe is not None else {})}
        progress(ProgressEvent(count, len(jobs), metrics, stage=stage, message=f"{count}/{len(jobs)} jobs done"))

    def stop() -> None:
        if on_cancel is not None:
            on_cancel()
        raise Cancelled("cancelled by the user")

    if executor == "ray":
        _run_ray(jobs, seeds, workers, ray_address, finished, cancel, stop)
    elif workers == 1:
        for i, job in enumerate(jobs):
            if cancel.is_set:
                stop()
            with _caller_random_state():
                outcome = seeded_call(job, i, seeds[i], threads=None)
            finished(i, outcome)
    else:
        _run_pool(jobs, seeds, workers, finished, cancel, stop)
    return results


def run_keyed(jobs: Mapping[Key, Callable[[], Any]], workers: int = 1, **options: Any) -> dict[Key, Any]:
    """{key: job} -> {key: result} through `run_jobs`, never more workers than jobs (a notebook's sweep keyed by
    the table's row, e.g. (forget-set size, seed)); `options` go to `run_jobs`."""
    keys = list(jobs)
    results = run_jobs([jobs[k] for k in keys], workers=max(1, min(workers, len(keys))), **options)
    return dict(zip(keys, results))


def _run_pool(jobs: Sequence[Callable[[], Any]], seeds: list[int], workers: int,
              finished: Callable[[int, _Outcome], None], cancel: CancelToken, stop: Callable[[], None]) -> None:
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        pending = {pool.submit(seeded_call, job, i, seeds[i]): i for i, job in enumerate(jobs)}
        while pending:
            done, _ = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            if cancel.is_set:
                for future in pending:
                    future.cancel()
                stop()
            for future in done:
                finished(pending.pop(future), future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def ray_module():
    """Ray, imported now (never at `core` import time); a LetheError with the install command if it is missing."""
    try:
        import ray
    except ImportError as exc:
        raise LetheError("--executor ray needs Ray, which is not installed.",
                         f"Install it with pip install ray==2.60.* ({RAY_INSTALL}), or use the default local "
                         "executor (--executor local).") from exc
    return ray


def ensure_ray(workers: int, address: str | None = None):
    """Ray, connected: to `address` (else `$RAY_ADDRESS`) if given, else to a local Ray with `workers` CPUs and no
    dashboard (started here unless this process is connected already). Workers get this checkout on their import
    path and one OpenMP thread each."""
    ray = ray_module()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not ray.is_initialized():
        from core.runs.store import REPO

        runtime_env = {"env_vars": {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}}
        try:
            if address:
                ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, runtime_env=runtime_env, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - Ray reports a failed start as a bare Exception
            ray.shutdown()  # stop what did start (its GCS, dashboard, monitors)
            where = f" at {address}" if address else " locally"
            raise LetheError(f"could not start or reach Ray{where}: {str(exc).splitlines()[0] if str(exc) else exc!r}",
                             "Check --ray-address (host:port of the head node, or auto), or leave it out to start a "
                             "local Ray; a local Ray needs a few seconds of CPU to start (see README, Running on a "
                             "cluster).") from exc
    return ray


def _run_ray(jobs: Sequence[Callable[[], Any]], seeds: list[int], workers: int, address: str | None,
             finished: Callable[[int, _Outcome], None], cancel: CancelToken, stop: Callable[[], None]) -> None:
    ray = ensure_ray(workers, address)
    remote = ray.remote(num_cpus=1, max_retries=0)(seeded_call)
    pending = {remote.remote(job, i, seeds[i]): i for i, job in enumerate(jobs)}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
            if cancel.is_set:
                stop()
            for ref in done:
                finished(pending.pop(ref), ray.get(ref))
    finally:
        for ref in pending:
            ray.cancel(ref)
