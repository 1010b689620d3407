"""Errors a user can act on.

Every error Lethe raises on bad input is a `LetheError`: it carries what went wrong (`message`) and what to do
about it (`hint`), so the app, the CLI and notebooks can show a clear message instead of a traceback.
"""

from __future__ import annotations


class LetheError(Exception):
    """An error caused by input the user can fix; `hint` says how."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class DatasetNotFound(LetheError):
    """A dataset's files are not where Lethe looked."""


class BadCheckpoint(LetheError):
    """A weights file or model card is missing, corrupt, or does not match its architecture."""


class ShapeMismatch(LetheError):
    """A tensor or model does not have the shape an operation needs."""


class EmptySelection(LetheError):
    """A forget or retain selection matched no samples (or all of them, where that makes no sense)."""


class NonFiniteError(LetheError):
    """A loss, parameter or metric became NaN or infinite during a run."""


class ModelSpecError(LetheError):
    """A model spec names no zoo model, saved model or importable factory."""


class Cancelled(Exception):
    """Raised inside a job when its cancel token was set; the runner marks the run cancelled."""
