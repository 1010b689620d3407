"""What GOLD's applications buy, measured with the fitting capacity (GOLD paper, Sec. 4; `core.metrics`): the
accuracy on real test images of a LeNet trained only on labelled samples of G.

`rejection_gain` is Table 3 / 4's experiment: one fixed set of samples drawn plainly and one drawn with rejection
sampling (eq. 6), the same size and LeNet budget, from the same seed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from core.metrics.fitting_capacity import fitting_capacity
from core.methods.gold.rejection import rejection_sample
from core.models.bundles import GANBundle
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn

if TYPE_CHECKING:
    import pandas as pd


def rejection_gain(gan: GANBundle, test_x: torch.Tensor, test_y: torch.Tensor, p: float, n: int = 50_000,
                   epochs: int = 40, burn_in_size: int = 50_000, seed: int = 0, progress: ProgressFn = NO_PROGRESS,
                   cancel: CancelToken | None = None) -> dict[str, float]:
    """Fitting capacity of `n` plain samples vs `n` samples accepted by GOLD rejection at percentile `p`, and
    the acceptance rate and sampling seconds of both."""
    start = time.perf_counter()
    plain_x, plain_y = gan.sample(n, seed=seed)
    plain_seconds = time.perf_counter() - start
    progress(ProgressEvent(0, 2 * epochs, stage="rejection sampling", message=f"drawing {n} samples with p={p}"))
    result = rejection_sample(gan, n, p, seed=seed, burn_in_size=burn_in_size, cancel=cancel)
    out = {"acceptance_rate": result.acceptance_rate, "p": p, "n": n, "plain_seconds": plain_seconds,
           "rejection_seconds": result.seconds}

    def staged(offset: int, stage: str) -> ProgressFn:
        return lambda e: progress(ProgressEvent(offset + e.step, 2 * epochs, e.metrics, stage=stage))

    out["fitting_capacity_baseline"] = fitting_capacity(plain_x, plain_y, test_x, test_y, epochs=epochs, seed=seed,
                                                        progress=staged(0, "baseline"), cancel=cancel).value
    out["fitting_capacity_gold"] = fitting_capacity(result.x, result.labels, test_x, test_y, epochs=epochs, seed=seed,
                                                    progress=staged(epochs, "gold rejection"), cancel=cancel).value
    out["fitting_capacity_gain"] = out["fitting_capacity_gold"] - out["fitting_capacity_baseline"]
    return out


def rounds_table(history: pd.DataFrame) -> pd.DataFrame:
    """Active learning's per-round view (Fig. 4 as numbers): one row per round with the labelled-set size, each
    strategy's fitting capacity (%) and the epoch whose model queried and seeded the next round (`best_epoch`: the
    last epoch unless a validation set picked another). `history` is `active_job`'s table, one row per round and
    strategy."""
    import pandas as pd  # noqa: F811 (at run time; the module imports it only for type checking)

    by = {strategy: rows.set_index("round") for strategy, rows in history.groupby("strategy", sort=False)}
    columns = {f"fitting capacity % ({s})": (100 * rows["fitting_capacity"]).round(1) for s, rows in by.items()}
    columns |= {f"epoch used ({s})": rows["best_epoch"] for s, rows in by.items()}
    labelled = history.drop_duplicates("round").set_index("round")["labelled"]
    return pd.concat([labelled, pd.DataFrame(columns)], axis=1).reset_index()
