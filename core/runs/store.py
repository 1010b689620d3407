"""The run store: one folder per run, written so that nothing reported is lost and every file read is whole.

Layout of `<root>/<run id>/`:

    config.json     method, model spec, params, seed, device, start time, versions (python, torch, lethe, git)
    status.json     status (queued|running|succeeded|failed|cancelled), owner pid/host, heartbeat, progress,
                    error {type, message, hint, traceback} for failures; replaced atomically on every change
    events.jsonl    one ProgressEvent per line, appended, flushed and fsynced as it arrives
    events/         images of events (<seq>.npy), named by the event's `images` field
    metrics.json    final metrics of a finished run
    model/          the edited model (save_bundle), so `<root>/<run id>/model` is a loadable model spec
    figures/        final figures: arrays (.npy, plus .png for images), plotly figures (.json), tables (.csv)
    traceback.txt   the full traceback of a failed run
    cancel.request  present when someone asked a run owned by another process to stop

The store's root is an argument, else `$LETHE_RUNS`, else `<repo>/runs` (ignored by git). A run whose status says
queued or running but whose owning process is gone (pid no longer alive on this host, or no heartbeat for
`STALE_SECONDS`) is reported as `interrupted`; its events up to the kill are all there.
"""

from __future__ import annotations

import json
import os
from importlib.metadata import PackageNotFoundError, version
import platform
import re
import secrets
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import core
from core.errors import LetheError
from core.progress import ProgressEvent
from core.runs.events import events_frame, jsonable, load_images, read_event_records

REPO = Path(__file__).resolve().parents[2]
ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "failed", "cancelled")
HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 60.0  # generous: a heartbeat is written every 2 s even while the job computes


def default_root() -> Path:
    """`$LETHE_RUNS` if set, else `<repo>/runs`."""
    return Path(os.environ.get("LETHE_RUNS") or REPO / "runs")


def _utc_iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _atomic_write_json(path: Path, doc: Any) -> None:
    """Write JSON to a temp file in the same folder, fsync, then os.replace: readers see the old or new file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(jsonable(doc), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any]:
    """A run file's JSON document, or {} when it is missing or not JSON (a run being created, a damaged file)."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (distinguishes a reused pid), or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # fields 3.. of proc(5); the command name may contain spaces
    return None if fields[0] in ("Z", "X") else fields[19]


def _process_alive(pid: int, start: str | None) -> bool:
    if Path("/proc/self/stat").exists():
        current = _process_start(pid)
        return current is not None and (start is None or current == start)
    if os.name == "nt":
        return True  # os.kill(pid, 0) would terminate the process on Windows; the heartbeat decides there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(doc: dict[str, Any], now: float | None = None) -> str:
    """The status a reader should show: a queued/running run whose owner is gone is `interrupted`."""
    status = doc.get("status", "interrupted")
    if status not in ACTIVE:
        return status
    now = time.time() if now is None else now
    if now - float(doc.get("heartbeat", 0.0)) > STALE_SECONDS:
        return "interrupted"
    if doc.get("host") == socket.gethostname() and not _process_alive(int(doc.get("pid", -1)), doc.get("proc_start")):
        return "interrupted"
    return status


def _git_commit() -> str:
    """The commit of the Lethe checkout (read from .git without running git), or "" outside a checkout."""
    head = REPO / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if not ref.startswith("ref: "):
            return ref
        name = ref.removeprefix("ref: ")
        loose = REPO / ".git" / name
        if loose.is_file():
            return loose.read_text().strip()
        for line in (REPO / ".git" / "packed-refs").read_text().splitlines():
            if line.endswith(" " + name):
                return line.split()[0]
    except OSError:
        pass
    return ""


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return ""


def versions() -> dict[str, str]:
    """Versions that decide whether a run can be reproduced."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _package_version("torchvision"),
        "numpy": np.__version__,
        "lethe": core.__version__,
        "git": _git_commit(),
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:32] or "run"


class RunWriter:
    """The writing side of one run, used by the job runner; all methods are thread-safe."""

    def __init__(self, path: Path, status: dict[str, Any]) -> None:
        self.path = path
        self.id = path.name
        self._lock = threading.Lock()
        self._status = status
        self._seq = 0
        self._t0 = time.time()
        (path / "events").mkdir(exist_ok=True)
        self._events = open(path / "events.jsonl", "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def _write_status(self) -> None:
        self._status["heartbeat"] = time.time()
        _atomic_write_json(self.path / "status.json", self._status)

    def update_status(self, **fields: Any) -> None:
        """Merge `fields` into status.json (and refresh the heartbeat)."""
        with self._lock:
            self._status.update(fields)
            self._write_status()

    @property
    def status_doc(self) -> dict[str, Any]:
        """A copy of the status as this writer knows it (what status.json holds, unless a write failed)."""
        with self._lock:
            return dict(self._status)

    def update_status_in_memory(self, **fields: Any) -> None:
        """Merge `fields` into the status without writing it (for when the run folder cannot be written)."""
        with self._lock:
            self._status.update(fields)

    def heartbeat(self) -> None:
        """Tell readers the owning process is alive."""
        with self._lock:
            if self._status["status"] in ACTIVE:
                try:
                    self._write_status()
                except OSError:  # an unwritable run folder: the run's own writes report it; a beat may be missed
                    pass

    def append(self, event: ProgressEvent) -> dict[str, Any]:
        """Persist one event (fsynced before returning); its images go to `events/<seq>.npy`."""
        with self._lock:
            self._seq += 1
            now = time.time()
            image_file = None
            if event.images is not None:
                image_file = f"events/{self._seq:06d}.npy"
                np.save(self.path / image_file, np.asarray(event.images, dtype=np.float32), allow_pickle=False)
            record = {
                "seq": self._seq, "step": int(event.step), "total": int(event.total), "stage": event.stage,
                "message": event.message, "time": now, "elapsed": now - self._t0,
                "metrics": jsonable(event.metrics), "images": image_file,
            }
            self._events.write(json.dumps(record) + "\n")
            self._events.flush()
            os.fsync(self._events.fileno())
            self._status.update(step=record["step"], total=record["total"], stage=event.stage, message=event.message)
            self._write_status()
            return record

    @property
    def cancel_requested(self) -> bool:
        """True once another process asked this run to stop (`RunStore.request_cancel`)."""
        return (self.path / "cancel.request").exists()

    def save_metrics(self, metrics: dict[str, Any]) -> None:
        _atomic_write_json(self.path / "metrics.json", metrics)

    def save_figure(self, name: str, value: Any) -> Path:
        """Save one final figure under figures/: arrays as .npy (plus a .png grid when they are images in
        [0, 1]), plotly figures as .json, DataFrames as .csv, dicts/lists as .json, bytes as given."""
        folder = self.path / "figures"
        folder.mkdir(exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray):
            target = folder / f"{stem}.npy"
            np.save(target, value, allow_pickle=False)
            if _is_image_batch(value):
                save_png_grid(value, folder / f"{stem}.png")
            return target
        if isinstance(value, pd.DataFrame):
            target = folder / f"{stem}.csv"
            value.to_csv(target, index=False)
            return target
        if isinstance(value, (bytes, bytearray)):
            target = folder / stem
            target.write_bytes(value)
            return target
        if hasattr(value, "to_json") and hasattr(value, "to_dict"):  # a plotly figure
            target = folder / f"{stem}.json"
            target.write_text(value.to_json())
            return target
        target = folder / f"{stem}.json"
        _atomic_write_json(target, value)
        return target

    def save_traceback(self, text: str) -> Path:
        target = self.path / "traceback.txt"
        target.write_text(text)
        return target

    def close(self) -> None:
        with self._lock:
            self._events.close()


def _is_image_batch(a: np.ndarray) -> bool:
    shape = a.shape[-3:] if a.ndim in (3, 4) else ()
    return bool(shape) and shape[0] in (1, 3) and a.size > 0 and float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def save_png_grid(images: np.ndarray | torch.Tensor, target: Path) -> Path:
    """Save a C x H x W image or an N x C x H x W batch in [0, 1] as one PNG grid, about square."""
    from torchvision.utils import save_image  # imported here: torchvision takes seconds to import

    batch = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if batch.dim() == 3:
        batch = batch[None]
    save_image(batch, target, nrow=max(1, int(np.ceil(np.sqrt(len(batch))))))
    return target


@dataclass
class RunRecord:
    """The reading side of one run: everything on disk, read fresh when the record is made (events on demand)."""

    id: str
    path: Path
    config: dict[str, Any]
    status_doc: dict[str, Any]

    @property
    def status(self) -> str:
        return effective_status(self.status_doc)

    @property
    def error(self) -> dict[str, Any] | None:
        """{type, message, hint, traceback} of a failed run, or a note for an interrupted one."""
        if self.status == "interrupted":
            return {"type": "Interrupted", "message": "The process running this run stopped before it finished.",
                    "hint": "Its events up to the stop are kept; start the run again to finish it.", "traceback": None}
        return self.status_doc.get("error")

    @property
    def started(self) -> float:
        return float(self.status_doc.get("started") or self.status_doc.get("created") or 0.0)

    @property
    def duration(self) -> float:
        """Seconds from start to finish; for an active run, to now; for an interrupted one, to its last heartbeat."""
        start = self.started
        if not start:
            return 0.0
        end = self.status_doc.get("finished")
        if end is None:
            end = time.time() if self.status in ACTIVE else float(self.status_doc.get("heartbeat", start))
        return max(0.0, float(end) - start)

    def event_records(self) -> list[dict[str, Any]]:
        return read_event_records(self.path / "events.jsonl")

    def events(self) -> pd.DataFrame:
        """Metrics per step: one row per event, one column per metric (see `core.runs.events.events_frame`)."""
        return events_frame(self.event_records())

    def images(self, relative: str) -> np.ndarray:
        """The image array an event's `images` field names."""
        return load_images(self.path, relative)

    @property
    def metrics(self) -> dict[str, Any]:
        """Final metrics (empty until the run succeeded)."""
        return read_json(self.path / "metrics.json")

    @property
    def model_spec(self) -> str | None:
        """A model spec for the edited model (a folder path), or None if the run saved no model."""
        folder = self.path / "model"
        return str(folder) if (folder / "card.json").is_file() and (folder / "model.safetensors").is_file() else None

    @property
    def figures(self) -> list[Path]:
        folder = self.path / "figures"
        return sorted(folder.iterdir()) if folder.is_dir() else []

    def table(self, name: str) -> pd.DataFrame | None:
        """The DataFrame a job saved as figure `name` (`save_figure` writes it as figures/<name>.csv), or None."""
        path = self.path / "figures" / f"{name}.csv"
        return pd.read_csv(path) if path.is_file() else None

    @property
    def traceback(self) -> str | None:
        target = self.path / "traceback.txt"
        return target.read_text() if target.is_file() else None

    def summary(self) -> dict[str, Any]:
        """The run as one JSON-ready dict (what `python -m core runs show` prints)."""
        return {
            "id": self.id, "path": str(self.path), "status": self.status, "method": self.config.get("method"),
            "model": self.config.get("model"), "started": self.config.get("started"), "duration": self.duration,
            "step": self.status_doc.get("step"), "total": self.status_doc.get("total"),
            "message": self.status_doc.get("message", ""), "error": self.error, "metrics": self.metrics,
            "model_spec": self.model_spec, "figures": [str(p) for p in self.figures], "config": self.config,
        }


class RunStore:
    """All runs under one root folder."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def create(self, method: str, model: str, params: dict[str, Any] | None = None, seed: int = 0,
               device: str = "cpu") -> RunWriter:
        """Make a new run folder with config.json and a `queued` status owned by this process."""
        self.root.mkdir(parents=True, exist_ok=True)
        now = time.time()
        while True:
            run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}-{_slug(method)}-{secrets.token_hex(3)}"
            try:
                (self.root / run_id).mkdir()
                break
            except FileExistsError:
                continue
        path = self.root / run_id
        config = {
            "id": run_id, "method": method, "model": model, "params": params or {}, "seed": seed,
            "device": str(device), "started": _utc_iso(now), "host": socket.gethostname(), "versions": versions(),
        }
        _atomic_write_json(path / "config.json", config)
        status = {"status": "queued", "pid": os.getpid(), "host": socket.gethostname(),
                  "proc_start": _process_start(os.getpid()), "created": now, "started": None, "finished": None,
                  "step": 0, "total": 0, "stage": "", "message": "", "error": None}
        writer = RunWriter(path, status)
        writer.update_status()
        return writer

    def ids(self) -> list[str]:
        """Run ids, newest first."""
        if not self.root.is_dir():
            return []
        return sorted((p.name for p in self.root.iterdir() if (p / "config.json").is_file()), reverse=True)

    def get(self, run_id: str) -> RunRecord:
        path = self.root / run_id
        if not (path / "config.json").is_file():
            raise LetheError(f"No run {run_id!r} in {self.root}.",
                             "List the runs with `python -m core runs list` (or pass --runs-dir).")
        return RunRecord(run_id, path, read_json(path / "config.json"), read_json(path / "status.json"))

    def runs(self) -> list[RunRecord]:
        return [self.get(run_id) for run_id in self.ids()]

    def index(self) -> pd.DataFrame:
        """One row per run, newest first: id, method, model, status, started, duration, progress, then the
        final numeric metrics (headline metrics) as columns."""
        rows = []
        for run in self.runs():
            headline = {k: v for k, v in run.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            total = run.status_doc.get("total") or 0
            rows.append({
                "id": run.id, "method": run.config.get("method"), "model": run.config.get("model"),
                "status": run.status, "started": pd.Timestamp(run.config.get("started")),
                "duration": run.duration, "progress": (run.status_doc.get("step") or 0) / total if total else None,
                **headline,
            })
        columns = ["id", "method", "model", "status", "started", "duration", "progress"]
        return pd.DataFrame(rows, columns=None if rows else columns)

    def request_cancel(self, run_id: str) -> None:
        """Ask the process that owns `run_id` to stop it (it checks every heartbeat)."""
        run = self.get(run_id)
        if run.status not in ACTIVE:
            raise LetheError(f"Run {run_id} is {run.status}; only a queued or running run can be cancelled.")
        (run.path / "cancel.request").touch()

    def delete(self, run_id: str) -> None:
        """Remove a finished run's folder; active runs must be cancelled first."""
        run = self.get(run_id)
        if run.status in ACTIVE:
            raise LetheError(f"Run {run_id} is still {run.status}.", "Cancel it first, then delete it.")
        shutil.rmtree(run.path)
