"""Reading redaction runs back from the run store: their checkpoint history, film and scores.

A redaction run (`redaction_job` / `deletion_job`, method "redact") reports one event per checkpoint with
`epoch`, `invalidity`, `invalidity_se`, IS/FID and losses, and the film column as the event's images; its
figures/ folder holds `history.csv`, `film.npy` and `redaction_scores.csv`. The app and notebooks read them
here, so a run looks the same live, finished, or opened after a crash.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.runs import RunRecord


def is_redaction(run: RunRecord) -> bool:
    return run.config.get("method") == "redact"


def run_label(run: RunRecord) -> str:
    """A short legend label: the algorithm (or 'deletion'), the set, and the run id's tail."""
    params = run.config.get("params", {})
    kind = "deletion" if params.get("baseline") == "deletion" else params.get("algorithm", "?")
    extra = f" λ={params['lam']:g}" if kind != "deletion" and "lam" in params else ""
    return f"{kind}{extra} · {params.get('redaction_set', params.get('forget', '?'))} · {run.id[-6:]}"


def checkpoint_history(run: RunRecord) -> pd.DataFrame:
    """One row per measured checkpoint (columns epoch, invalidity, invalidity_se, IS/FID, losses, images)."""
    events = run.events()
    if events.empty or "invalidity" not in events:
        return pd.DataFrame(columns=["epoch", "invalidity", "invalidity_se"])
    return events[events["invalidity"].notna()].reset_index(drop=True)


def run_film(run: RunRecord) -> tuple[np.ndarray, list[float]] | None:
    """(frames film_size x checkpoints x C x H x W, epoch of each column) from the events, or None (no images)."""
    history = checkpoint_history(run)
    if "images" not in history:
        return None
    rows = history[history["images"].notna()]
    if rows.empty:
        return None
    columns = [run.images(path) for path in rows["images"]]
    return np.stack(columns, axis=1), [float(e) for e in rows["epoch"]]


def run_scores(run: RunRecord) -> pd.DataFrame | None:
    """The redaction scores of X ∩ Omega a finished redaction run saved, or None."""
    path = run.path / "figures" / "redaction_scores.csv"
    return pd.read_csv(path) if path.is_file() else None
