"""One executor interface for independent jobs (counterfactual replays, cleansing retrains): design guide,
"Independent jobs ... go through one executor interface".

`run_jobs(jobs, workers, executor, progress, cancel)` runs picklable zero-argument callables and returns their
results in job order. Progress is reported as each job finishes; a cancel request stops handing out jobs,
drops the queued ones and raises `Cancelled` (the finished results were already reported through progress, so
the run's event log keeps them).

- `local` (default): with 1 worker, jobs run here one after the other; with W > 1, in W worker processes
  (`concurrent.futures.ProcessPoolExecutor`, spawn start method so no thread state is forked), each limited to
  one torch thread so W workers share W cores without oversubscription.
- `ray`: Ray tasks, when Ray is installed and asked for (`ray.init()` joins a running cluster or starts a
  local one).

Every job is seeded by its own content (the replay's logged batches and latents), so the executor and the
order of completion never change a result.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Sequence

import torch

from core.errors import Cancelled, LetheError
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn

EXECUTORS = ("local", "ray")
Done = Callable[[int, Any], dict[str, float]]  # (job index, result) -> metrics for the progress event


def _single_threaded(job: Callable[[], Any]) -> Any:
    torch.set_num_threads(1)
    return job()


def run_jobs(jobs: Sequence[Callable[[], Any]], workers: int = 1, executor: str = "local",
             progress: ProgressFn = NO_PROGRESS, cancel: CancelToken | None = None, stage: str = "jobs",
             describe: Done | None = None) -> list[Any]:
    """Run every job and return the results in job order (see the module docstring)."""
    cancel = cancel or CancelToken()
    if workers < 1:
        raise LetheError(f"workers must be >= 1, got {workers}.", "Use 1 (in this process) or the number of cores.")
    if executor not in EXECUTORS:
        raise LetheError(f"unknown executor {executor!r}.", f"Use one of {', '.join(EXECUTORS)}.")
    results: list[Any] = [None] * len(jobs)

    def finished(i: int, value: Any, count: int) -> None:
        results[i] = value
        metrics = describe(i, value) if describe is not None else {}
        progress(ProgressEvent(count, len(jobs), {"job": float(i), **metrics}, stage=stage,
                               message=f"{count}/{len(jobs)} jobs done"))

    if executor == "ray":
        return _run_ray(jobs, finished, cancel, results)
    if workers == 1:
        for i, job in enumerate(jobs):
            cancel.raise_if_set()
            finished(i, job(), i + 1)
        return results
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        pending = {pool.submit(_single_threaded, job): i for i, job in enumerate(jobs)}
        count = 0
        while pending:
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            if cancel.is_set:
                raise Cancelled("cancelled by the user")
            for future in done:
                count += 1
                finished(pending.pop(future), future.result(), count)
        return results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_ray(jobs: Sequence[Callable[[], Any]], finished: Callable[[int, Any, int], None], cancel: CancelToken,
             results: list[Any]) -> list[Any]:
    try:
        import ray
    except ImportError as exc:
        raise LetheError("--executor ray needs Ray, which is not installed.",
                         "pip install ray, or use the default local executor (--executor local).") from exc
    if not ray.is_initialized():
        ray.init()
    remote = ray.remote(_single_threaded)
    pending = {remote.remote(job): i for i, job in enumerate(jobs)}
    count = 0
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
        if cancel.is_set:
            for ref in pending:
                ray.cancel(ref)
            raise Cancelled("cancelled by the user")
        for ref in done:
            count += 1
            finished(pending.pop(ref), ray.get(ref), count)
    return results
