"""Shared test setup: keep every test's run store and selections out of the repository folders."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_lethe_home(tmp_path, monkeypatch):
    """Each test gets its own LETHE_HOME and run store, so tests never see each other's files."""
    monkeypatch.setenv("LETHE_HOME", str(tmp_path / "lethe-home"))
    monkeypatch.setenv("LETHE_RUNS", str(tmp_path / "runs"))
    torch.manual_seed(0)
