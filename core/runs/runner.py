"""The job runner: run a method as a run, in a background thread (`Runner.start`) or here and now (`run_now`).

A job is any callable `job(progress, cancel)` that reports `ProgressEvent`s through `progress`, calls
`cancel.raise_if_set()` between steps, and returns its result: a `JobResult`, a bundle, a metrics dict, or any
object with `bundle` / `metrics` / `figures` attributes (a method's own result type plugs in unchanged).
Every event is persisted before the job continues. The outcome is recorded in the run's status:

- returned normally -> `succeeded`, with metrics.json, model/ (if a bundle came back) and figures/;
- `Cancelled` (the cancel token, or `RunStore.request_cancel` from another process) -> `cancelled`;
- `LetheError` (including `NonFiniteError`) -> `failed` with its message and hint;
- any other exception -> `failed` with a short message; the full traceback is in traceback.txt.

Background jobs belong to the process that started them (the Streamlit server), not to a browser session, so a
closed browser loses nothing. The app's runner runs each job in a worker process of its own (`core.runs.worker`:
it goes on if the app stops; a worker that dies marks its run failed); a killed process leaves its run
`interrupted` (see `core.runs.store`).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
import traceback
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.errors import Cancelled, LetheError
from core.models.bundles import Bundle
from core.models.checkpoint import save_bundle
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn
from core.runs.store import HEARTBEAT_SECONDS, RunRecord, RunStore, RunWriter

Job = Callable[[ProgressFn, CancelToken], Any]
_RUN_FOLDER: ContextVar[Path | None] = ContextVar("lethe_run_folder", default=None)


def current_run_folder() -> Path | None:
    """The folder of the run whose job is executing in this thread (None outside a run): where a job keeps large
    artefacts a later run reads back (the influence trace), instead of returning them."""
    return _RUN_FOLDER.get()


@dataclass
class JobResult:
    """What a job hands back: the edited model (saved to the run's model/), final metrics, final figures."""

    bundle: Bundle | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)


def as_result(value: Any) -> JobResult:
    """Normalise what a job returned (JobResult, Bundle, metrics dict, None, or an object with result fields)."""
    if isinstance(value, JobResult):
        return value
    if value is None:
        return JobResult()
    if isinstance(value, Bundle):
        return JobResult(bundle=value)
    if isinstance(value, dict):
        return JobResult(metrics=value)
    if any(hasattr(value, name) for name in ("bundle", "metrics", "figures")):
        return JobResult(getattr(value, "bundle", None), dict(getattr(value, "metrics", {}) or {}),
                         dict(getattr(value, "figures", {}) or {}))
    raise TypeError(f"a job returned {type(value).__name__}; return a JobResult, a Bundle, a dict or None")


class _Heartbeat(threading.Thread):
    """Refreshes the run's heartbeat and turns a cross-process cancel request into the job's cancel token."""

    def __init__(self, writer: RunWriter, cancel: CancelToken) -> None:
        super().__init__(daemon=True, name=f"lethe-heartbeat-{writer.id}")
        self.writer, self.cancel, self.stopped = writer, cancel, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_SECONDS):
            if self.writer.cancel_requested:
                self.cancel.set()
            self.writer.heartbeat()


def _execute(writer: RunWriter, job: Job, cancel: CancelToken, listener: ProgressFn, model: str,
             slot: threading.Semaphore | None = None) -> None:
    """Run `job` to its end and record the outcome; never raises except for KeyboardInterrupt/SystemExit.

    With a `slot`, the run stays `queued` (and cancellable) until the semaphore lets it start."""
    heartbeat = _Heartbeat(writer, cancel)
    heartbeat.start()
    acquired = False
    folder = _RUN_FOLDER.set(writer.path)

    def progress(event: ProgressEvent) -> None:
        writer.append(event)
        listener(event)

    try:
        if slot is not None:
            writer.update_status(message="waiting for a running job to finish")
            while not (acquired := slot.acquire(timeout=0.2)):
                cancel.raise_if_set()
        writer.update_status(status="running", started=time.time(), message="")
        result = as_result(job(progress, cancel))
        _save_result(writer, result, model)
        writer.update_status(status="succeeded", finished=time.time())
    except Cancelled:
        writer.update_status(status="cancelled", finished=time.time(), message="cancelled")
    except LetheError as exc:
        _fail(writer, exc, exc.message, exc.hint)
    except (KeyboardInterrupt, SystemExit):
        writer.update_status(status="cancelled", finished=time.time(), message="interrupted from the keyboard")
        raise
    except Exception as exc:  # noqa: BLE001 - the run must record every failure, whatever its type
        message = f"{type(exc).__name__}: {exc}"
        message = message if len(message) <= 300 else message[:297] + "..."
        _fail(writer, exc, message, f"This is a bug or an unexpected input; the traceback is in "
                                    f"{writer.path / 'traceback.txt'}.")
    finally:
        _RUN_FOLDER.reset(folder)
        if acquired:
            slot.release()
        heartbeat.stopped.set()
        writer.close()


def _execute_in_worker(writer: RunWriter, job: Job, cancel: CancelToken, model: str,
                       slot: threading.Semaphore | None = None) -> None:
    """Run `job` in a worker process (`core.runs.worker`) and record the outcome; a job that cannot be pickled or
    loaded there runs in this thread instead (`_execute`). The run stays `queued`, cancellable and heartbeating here
    until the worker takes it over."""
    from core.runs.worker import pickled, run_in_worker

    heartbeat = _Heartbeat(writer, cancel)
    heartbeat.start()
    acquired = False

    def hand_over() -> None:
        heartbeat.stopped.set()
        heartbeat.join()

    try:
        if slot is not None:
            writer.update_status(message="waiting for a running job to finish")
            while not (acquired := slot.acquire(timeout=0.2)):
                cancel.raise_if_set()
        cancel.raise_if_set()
        payload = pickled(job)
        if payload is None or not run_in_worker(writer, payload, model, cancel, hand_over):
            hand_over()
            _shorten_switch_interval()
            _execute(writer, job, cancel, NO_PROGRESS, model)
    except Cancelled:
        writer.update_status(status="cancelled", finished=time.time(), message="cancelled")
    finally:
        if acquired:
            slot.release()
        heartbeat.stopped.set()
        writer.close()


def _fail(writer: RunWriter, exc: BaseException, message: str, hint: str) -> None:
    """Record a failure; never raises. If the run folder cannot be written any more (it became read-only, the disk
    is full), the failure is still kept in the writer's status, which `run_now` returns, with a note saying so."""
    try:
        trace: str | None = str(writer.save_traceback("".join(traceback.format_exception(exc))))
    except OSError:
        trace = None
    error = {"type": type(exc).__name__, "message": message, "hint": hint, "traceback": trace}
    try:
        writer.update_status(status="failed", finished=time.time(), message=message, error=error)
    except OSError as write_error:  # update_status changed the in-memory status before the write failed
        note = f" (The run folder {writer.path} could not be written: {write_error.strerror or write_error}.)"
        writer.update_status_in_memory(error={**error, "hint": hint + note})


def _save_result(writer: RunWriter, result: JobResult, model: str) -> None:
    if result.bundle is not None:
        if result.bundle.card.parent is None and result.bundle.card.name != model:
            result.bundle.card.parent = model  # an edited copy of `model` (a recipe's fresh model has no parent)
        save_bundle(result.bundle, writer.path / "model")
    for name, value in result.figures.items():
        writer.save_figure(name, value)
    writer.save_metrics(result.metrics)


JOB_SWITCH_INTERVAL = 0.001
"""Seconds a Python thread may hold the GIL while a background job waits for it (CPython's default is 0.005).

A job's thread lets go of the GIL in every tensor operation and needs it back between them; when another thread of
the process runs Python meanwhile (the app drawing a live view: 0.2-0.3 s of plotly per chart rebuild), each hand-back
waited up to the full interval. Measured on the taming loop (synthfaces-flow, a viewer rebuilding the Tame page's
charts every 2 s; off-CPU time that is neither CPU nor the run queue, from /proc/<pid>/task/<tid>/schedstat): 0.489 s
per iteration blocked at 0.005 s, 0.160 s at 0.001 s, 0.007 s with no viewer, for about 0.65 s of CPU per iteration."""


def _shorten_switch_interval() -> None:
    """Lower the process's GIL switch interval to JOB_SWITCH_INTERVAL (never raise it) before a job computes in a
    thread of this process; a job in a worker process has its own GIL and needs no change here."""
    if sys.getswitchinterval() > JOB_SWITCH_INTERVAL:
        sys.setswitchinterval(JOB_SWITCH_INTERVAL)


class Runner:
    """Starts jobs in the background and cancels them; keep one per process (see `shared_runner`).

    With `isolate` (the app's runner, see `shared_runner`), each job runs in a worker process of its own
    (`core.runs.worker`), as fast as on the command line; a job that cannot be pickled, or one given a
    `listener`, runs in a background thread of this process. Starting a job in a thread shortens the process's GIL
    switch interval to JOB_SWITCH_INTERVAL, so that the job's thread gets the GIL back sooner from the threads that
    draw what it reports.

    `max_parallel` caps how many of its jobs compute at once (None: no cap); the others wait as `queued`, in
    start order as far as the OS schedules threads fairly. On a 2-core machine, one job at a time finishes
    each job sooner than several sharing the cores."""

    def __init__(self, store: RunStore | None = None, max_parallel: int | None = None, isolate: bool = False) -> None:
        self.store = store or RunStore()
        self.isolate = isolate
        self._slot = threading.Semaphore(max_parallel) if max_parallel else None
        self._threads: dict[str, tuple[threading.Thread, CancelToken]] = {}
        self._lock = threading.Lock()

    def start(self, job: Job, *, method: str, model: str, params: dict[str, Any] | None = None, seed: int = 0,
              device: str = "cpu", listener: ProgressFn = NO_PROGRESS) -> str:
        """Create the run, start `job` in a daemon thread and return the run id at once."""
        writer = self.store.create(method, model, params, seed, device)
        cancel = CancelToken()
        if self.isolate and listener is NO_PROGRESS:
            target, args = _execute_in_worker, (writer, job, cancel, model, self._slot)
        else:
            _shorten_switch_interval()
            target, args = _execute, (writer, job, cancel, listener, model, self._slot)
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"lethe-run-{writer.id}")
        with self._lock:
            self._threads[writer.id] = (thread, cancel)
        thread.start()
        return writer.id

    def cancel(self, run_id: str) -> None:
        """Ask a run to stop at its next `cancel.raise_if_set()`; works for runs owned by other processes too."""
        with self._lock:
            entry = self._threads.get(run_id)
        if entry is not None and entry[0].is_alive():
            entry[1].set()
        else:
            self.store.request_cancel(run_id)

    def active(self) -> list[str]:
        """Ids of this runner's jobs that are still queued or running."""
        with self._lock:
            return [run_id for run_id, (thread, _) in self._threads.items() if thread.is_alive()]

    def wait(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Block until this runner's job `run_id` ends (or `timeout` passes); return its record."""
        with self._lock:
            entry = self._threads.get(run_id)
        if entry is not None:
            entry[0].join(timeout)
        return self.store.get(run_id)


_SHARED: dict[Path, Runner] = {}
_SHARED_LOCK = threading.Lock()


def shared_runner(root: str | Path | None = None, max_parallel: int | None = None) -> Runner:
    """The one runner of this process for a store root, so every page and session sees and cancels the same jobs.
    It runs each job in a worker process (`Runner(isolate=True)`), so the pages drawing in this process do not slow it.

    `max_parallel` applies when this call creates the runner (the first call for a root)."""
    store = RunStore(root)
    key = store.root.resolve()
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = Runner(store, max_parallel, isolate=True)
        return _SHARED[key]


def run_now(job: Job, *, method: str, model: str, params: dict[str, Any] | None = None, seed: int = 0,
            device: str = "cpu", store: RunStore | None = None, listener: ProgressFn = NO_PROGRESS,
            cancel: CancelToken | None = None) -> RunRecord:
    """Run `job` as a run in this thread (the command line's way); return the finished run's record.

    Failures do not raise: read `record.status` and `record.error`. Ctrl-C marks the run cancelled and re-raises."""
    store = store or RunStore()
    writer = store.create(method, model, params, seed, device)
    _execute(writer, job, cancel or CancelToken(), listener, model)
    record = store.get(writer.id)
    if record.status_doc.get("status") != writer.status_doc.get("status"):  # the folder became unwritable
        record = dataclasses.replace(record, status_doc=writer.status_doc)
    return record
