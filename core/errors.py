"""Errors a user can act on.

Every error Lethe raises on bad input is a `LetheError`: it carries what went wrong (`message`) and what to do
about it (`hint`), so the app, the CLI and notebooks can show a clear message instead of a traceback.
"""

from __future__ import annotations

import zipfile
import zlib

# What reading one member of an untrusted zip can raise: a bad CRC or header (BadZipFile), a garbled deflate stream
# (zlib.error), an unknown compression method (NotImplementedError), an encrypted member (RuntimeError), a truncated
# archive (EOFError), a bad member record (ValueError). Both zip readers (model uploads, image data) catch these.
ZIP_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, ValueError)


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
