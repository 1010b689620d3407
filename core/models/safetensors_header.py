"""Reading a safetensors file's header ourselves, with limits, before trusting any of it.

A safetensors file is an 8-byte little-endian header length, a JSON header mapping each tensor name to its dtype,
shape and byte range, then the raw bytes (https://github.com/huggingface/safetensors#format). Reading only the
header tells Lethe what the file holds, and how much memory it justifies, before a single module is built: the
header must be small, every tensor's byte range must lie inside the file and match its dtype and shape, so the
sizes it claims are backed by bytes actually on disk.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

from core.errors import BadCheckpoint

MAX_HEADER_BYTES = 16 * 1024 * 1024
ITEM_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
              "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as the header describes it."""

    dtype: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def read_header(path: str | Path, where: str) -> dict[str, TensorEntry]:
    """The tensors described by the header of the safetensors file at `path`; BadCheckpoint if the header is
    too large, malformed, or claims bytes the file does not have. `where` names the file in messages."""
    path = Path(path)
    fix = "Save the model again with Lethe (safetensors format), or use an intact copy of the folder."
    size = path.stat().st_size
    with path.open("rb") as fh:
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise BadCheckpoint(f"The weights file of {where} is corrupt or not a safetensors file: it is too short.", fix)
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES or length > size - 8:
            raise BadCheckpoint(f"The weights file of {where} is corrupt or not a safetensors file: it claims a "
                                f"header of {length} bytes (the file has {size}; Lethe reads at most "
                                f"{MAX_HEADER_BYTES >> 20} MB of header).", fix)
        raw = fh.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadCheckpoint(f"The weights file of {where} is corrupt or not a safetensors file: its header is not valid JSON.", fix) from exc
    if not isinstance(header, dict):
        raise BadCheckpoint(f"The weights file of {where} is corrupt or not a safetensors file: its header is not a JSON object.", fix)
    data_bytes = size - 8 - length
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        entries[name] = _entry(name, info, data_bytes, where, fix)
    return entries


def _entry(name: str, info: object, data_bytes: int, where: str, fix: str) -> TensorEntry:
    label = name if len(name) <= 80 else name[:77] + "..."
    if not isinstance(info, dict):
        raise BadCheckpoint(f"The weights file of {where} describes tensor {label!r} badly.", fix)
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    ok_shape = isinstance(shape, list) and len(shape) <= 8 and all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d for d in shape)
    ok_offsets = isinstance(offsets, list) and len(offsets) == 2 and all(
        isinstance(o, int) and not isinstance(o, bool) for o in offsets)
    if dtype not in ITEM_BYTES or not ok_shape or not ok_offsets:
        raise BadCheckpoint(f"The weights file of {where} describes tensor {label!r} badly (dtype, shape or "
                            "byte range missing or malformed).", fix)
    begin, end = offsets
    claimed = math.prod(shape) * ITEM_BYTES[dtype]
    if not 0 <= begin <= end <= data_bytes or end - begin != claimed:
        raise BadCheckpoint(f"The weights file of {where} says tensor {label!r} of shape {tuple(shape)} lies in "
                            f"bytes {begin}-{end}, which the file ({data_bytes} bytes of data) does not back.", fix)
    return TensorEntry(dtype, tuple(shape))
