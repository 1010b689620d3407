"""The progress and cancellation contract shared by zoo training, methods and the job runner.

A long computation takes a `progress` callback and a `cancel` token. It calls `progress(ProgressEvent(...))`
after each step and `cancel.raise_if_set()` between steps, so the runner can persist every event and stop the
work cleanly. Both arguments are optional everywhere: `NO_PROGRESS` and `CancelToken()` are the defaults.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from core.errors import Cancelled


@dataclass
class ProgressEvent:
    """One report from a running computation.

    `step` counts from 1 to `total` (total may be 0 when unknown); `metrics` holds scalar curves keyed by name;
    `images` is an optional N x C x H x W float array in [0, 1] (for example a sample grid or a film column);
    `message` is a short human-readable status line.
    """

    step: int
    total: int
    metrics: dict[str, float] = field(default_factory=dict)
    images: np.ndarray | None = None
    message: str = ""
    stage: str = ""


ProgressFn = Callable[[ProgressEvent], Any]


def NO_PROGRESS(event: ProgressEvent) -> None:  # noqa: N802 - a constant-like default callback
    """Progress callback that ignores every event."""


class CancelToken:
    """A thread-safe flag a job checks between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def raise_if_set(self) -> None:
        """Raise `Cancelled` if cancellation was requested; call this between steps."""
        if self._event.is_set():
            raise Cancelled("cancelled by the user")
