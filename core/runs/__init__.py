"""Runs: the job runner (background or synchronous, with progress and cancel) and the run store on disk.

    from core.runs import Runner, RunStore, JobResult, run_now
    runner = shared_runner()                       # one per process (the app keeps it across sessions)
    run_id = runner.start(job, method="redact", model="mnist-dcgan", params={...}, seed=0)
    runner.store.get(run_id).events()              # metrics per step, while it runs
    runner.cancel(run_id)

See `core.runs.store` for the folder layout and `core.runs.runner` for the job contract.
"""

from core.runs.runner import Job, JobResult, Runner, as_result, run_now, shared_runner
from core.runs.store import RunRecord, RunStore, RunWriter, default_root, effective_status

__all__ = [
    "Job", "JobResult", "Runner", "RunRecord", "RunStore", "RunWriter", "as_result", "default_root",
    "effective_status", "run_now", "shared_runner",
]
