"""The event log of a run: one JSON line per `ProgressEvent`, images kept in `.npy` files beside it.

A line is written, flushed and fsynced before the job continues, so a run killed at any moment keeps every event
that was reported before the kill; a half-written last line (the kill landed mid-write) is skipped on reading.
Images are never inlined: an event's `images` field names a file relative to the run folder.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

EVENT_COLUMNS = ("seq", "step", "total", "stage", "message", "time", "elapsed", "images")


def jsonable(value: Any) -> Any:
    """`value` as plain JSON types: dataclasses and mappings become dicts, paths strings, tensors and numpy
    values numbers or lists; anything else becomes its `repr`, so a config is always recorded, never refused."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "detach") and hasattr(value, "tolist"):  # a torch tensor, without importing torch here
        return jsonable(value.detach().cpu().tolist())
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    return repr(value)


def strict_json(value: Any) -> Any:
    """Like `jsonable`, with NaN and infinities as None, for output that other tools must parse (`--json`)."""
    value = jsonable(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strict_json(v) for v in value]
    return value


@dataclass
class _Tail:
    """What has been read of one event log: its inode, the offset after the last whole line, the records so far."""

    inode: int
    offset: int
    records: list[dict[str, Any]]


_TAILS: OrderedDict[Path, _Tail] = OrderedDict()
_TAILS_LOCK = threading.Lock()
_TAILS_KEPT = 16  # event logs remembered (the live views of a few runs); the oldest is forgotten first


def read_event_records(path: Path) -> list[dict[str, Any]]:
    """Every complete event line of `path` (none if the file is missing); a truncated last line is skipped.

    The log is only ever appended to, so only the bytes after the last whole line read before are parsed: a live
    view that rereads a long run every 2 s parses each event once, not once per redraw (it shares the process, and
    the GIL, with the run it watches). A log that shrank or was replaced is read again from the start. The
    records are shared between readers: do not modify them."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            inode = os.fstat(fh.fileno()).st_ino
            with _TAILS_LOCK:
                tail = _TAILS.get(path)
                if tail is None or tail.inode != inode or os.fstat(fh.fileno()).st_size < tail.offset:
                    tail = _Tail(inode, 0, [])
                _TAILS[path] = tail
                _TAILS.move_to_end(path)
                while len(_TAILS) > _TAILS_KEPT:
                    _TAILS.popitem(last=False)
                fh.seek(tail.offset)
                chunk = fh.read()
                whole = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written is read next time
                for line in whole.splitlines():
                    try:
                        tail.records.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue  # only the line a kill interrupted can be incomplete
                tail.offset += len(whole)
                return list(tail.records)
    except FileNotFoundError:
        return []


def events_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per event: `EVENT_COLUMNS` then one column per metric name (NaN where an event lacks it)."""
    rows = [{**{c: r.get(c) for c in EVENT_COLUMNS}, **r.get("metrics", {})} for r in records]
    return pd.DataFrame(rows, columns=None if rows else list(EVENT_COLUMNS))


def load_images(run_path: Path, relative: str) -> np.ndarray:
    """The N x C x H x W float32 array an event's `images` field names."""
    return np.load(Path(run_path) / relative, allow_pickle=False)
