"""Run a job in a worker process of its own, so the app's threads cannot slow it: the command line's speed in the app.

A job in a thread of the app's process shares that process with the threads that draw pages. Two costs follow,
both measured on the taming loop (bench/taming.py --speed; notes of issue 12):

- Python's GIL: the job needs it between tensor operations, and a page building a chart holds it for 0.2-0.3 s.
- OpenMP's waiting (with more than one torch thread): libgomp lets a team's idle workers spin about 3 ms before
  sleeping while the process has no more OpenMP threads than cores, but only 100 spins when it has more - and
  every thread that ran a parallel op keeps a team of its own while it lives (the bench's main thread that
  loaded the model; in the app, a page computing at the same time). The
  same training step (synthfaces-flow, 2 torch threads) in a thread of a process whose main thread had run a
  parallel op cost 0.64 s of CPU, and in one whose main thread had not 5.9 s: the workers spin there, as the
  command line's do (bench/openmp_teams.py, on a loaded machine). Spinning is what makes the command line fast on idle cores (session 5, quiet machine: the
  same CPU per iteration, 0.55 s per iteration on the command line, 0.78 s in a runner thread) and slow on busy
  ones.

A worker process is the command line's situation: the job runs in its main thread, alone with its own OpenMP
team and GIL. The protocol, on the worker's stdin/stdout:

1. the runner (this process's `run_in_worker`, in the run's runner thread) starts `python -m core.runs.worker
   RUN_FOLDER MODEL` and writes the job, pickled with cloudpickle (closures and lambdas included), length first;
2. the worker loads it and answers `loaded`, or exits with LOAD_FAILED (the job's code cannot be imported there:
   the runner then runs it in its thread, as before, and nothing is lost);
3. the runner stops its own heartbeat for the run and answers `go`; from then on the worker owns the run's
   status.json: it records progress, the outcome, and reacts to `RunStore.request_cancel` (which the runner's
   `cancel` uses);
4. when the worker ends without an outcome (killed, or a crash in native code), the runner marks the run failed,
   with the worker's output (worker.log in the run folder) for the hint. If the app's process itself ends, the
   worker goes on and finishes the run (a closed browser or a restarted app loses nothing).

The job gets a pickled copy of what it captured (the model, the data): the app's own model is never modified.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from core.progress import CancelToken
from core.runs.store import RunWriter, _process_start, read_json

LOAD_FAILED = 3
"""The worker's exit code when it could not load the job (the runner then runs the job in its own thread)."""


def pickled(job: Any) -> bytes | None:
    """The job pickled for a worker, or None when it cannot be (it holds a lock, an open file, a Streamlit object)."""
    import cloudpickle

    try:
        return cloudpickle.dumps(job)
    except Exception:  # noqa: BLE001 - any pickling failure means "run it in a thread", never an error of the run
        return None


def _environment() -> dict[str, str]:
    """The runner's environment, with its import path, so the worker imports the job's modules the same way."""
    paths = [os.getcwd() if not p else p for p in sys.path if not p or Path(p).is_dir()]
    paths.insert(0, str(Path(__file__).resolve().parents[2]))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def _death(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        oom = " (the system may have run out of memory)" if -code == signal.SIGKILL else ""
        return f"was killed by signal {name}{oom}"
    return f"exited with code {code}"


def run_in_worker(writer, payload: bytes, model: str, cancel: CancelToken, hand_over: Callable[[], None]) -> bool:
    """Runner side: run the pickled job in a worker process and wait for it (see the module docstring).

    `hand_over()` is called once the worker has loaded the job, before it writes the run's status (the caller
    stops its heartbeat there). Returns False, with nothing recorded, when the worker could not load the job; raises
    `Cancelled` when the run was cancelled before the worker took it over."""
    try:
        with open(writer.path / "worker.log", "wb") as log:  # the worker's stdout and stderr
            proc = subprocess.Popen([sys.executable, "-m", "core.runs.worker", str(writer.path), model],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=_environment())
    except OSError:  # no process can be started here (a limit on processes, no executable): run it in a thread
        return False
    try:
        proc.stdin.write(struct.pack("<Q", len(payload)))
        proc.stdin.write(payload)
        proc.stdin.flush()
        loaded = proc.stdout.readline().strip() == b"loaded"
    except OSError:  # the worker died while reading the job
        loaded = False
    if not loaded or cancel.is_set:
        proc.kill()
        proc.wait()
        cancel.raise_if_set()  # cancelled while the worker started: the run never ran
        return False
    hand_over()
    try:
        proc.stdin.write(b"go\n")
        proc.stdin.close()
    except OSError:
        pass  # it died at once: recorded below
    while True:
        try:
            proc.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if cancel.is_set and not writer.cancel_requested:
                (writer.path / "cancel.request").touch()  # the worker's heartbeat turns it into its cancel token
    proc.stdout.close()
    status = read_json(writer.path / "status.json")
    if status.get("status") in ("queued", "running"):
        message = f"the worker process running this job {_death(proc.returncode)} before the run finished"
        error = {"type": "WorkerDied", "message": message, "traceback": None,
                 "hint": f"The events up to then are kept; the worker's output is in {writer.path / 'worker.log'}."}
        writer.update_status_in_memory(**status)
        writer.update_status(status="failed", finished=time.time(), message=message, error=error)
    return True


def main(argv: list[str] | None = None) -> int:
    """Worker side: load the job from stdin, take the run over and run it here, in the main thread."""
    import cloudpickle

    from core.progress import NO_PROGRESS
    from core.runs.runner import _execute

    folder, model = argv or sys.argv[1:3]
    folder = Path(folder)
    handshake = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the job's own prints go to worker.log, not into the handshake pipe
    stdin = sys.stdin.buffer
    try:
        (size,) = struct.unpack("<Q", stdin.read(8))
        job = cloudpickle.loads(stdin.read(size))
    except Exception:  # noqa: BLE001 - any failure to load means "run it in the runner's thread"
        traceback.print_exc()
        return LOAD_FAILED
    handshake.write(b"loaded\n")
    handshake.close()
    if stdin.readline().strip() != b"go":
        return LOAD_FAILED  # the runner is gone before handing the run over; it was never started here
    status = read_json(folder / "status.json")
    status.update(pid=os.getpid(), proc_start=_process_start(os.getpid()))
    writer = RunWriter(folder, status)
    _execute(writer, job, CancelToken(), NO_PROGRESS, model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
