"""Understanding training data through redaction (paper Sec. IV-C, Fig. 4, App. G).

The redaction score of a sample x in Omega is RS(x) = D0(x) - D'(x): how far the discriminator's output (the
probability "real") fell from the pre-trained D0 to the redacted D'. A larger RS means x was easier to redact.
App. G-C adds the relative score RS_rel(x) = (D0(x) - D'(x)) / D0(x). The paper plots RS against D0(x) with a
least-squares line and its R^2 (Fig. 4; positive slope: on-manifold samples are easier to redact), shows the
easiest and hardest samples (Fig. 10), and averages RS per label for label-level difficulty (App. G-B, Fig. 12).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from core.errors import EmptySelection
from core.models.bundles import GANBundle


@torch.no_grad()
def discriminator_output(gan: GANBundle, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """D(x) = sigmoid(logit) for x in [0, 1], on the CPU."""
    gan.eval()
    return torch.cat([torch.sigmoid(gan.discriminate(x[i : i + batch_size].to(gan.device))[0]).cpu()
                      for i in range(0, len(x), batch_size)])


@dataclass
class LinearFit:
    """y = slope * x + intercept by least squares, with the coefficient of determination R^2."""

    slope: float
    intercept: float
    r2: float


def linear_fit(x: np.ndarray, y: np.ndarray) -> LinearFit:
    """Ordinary least squares of y on x; R^2 = 1 - SS_res / SS_tot (0 when y is constant)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        raise EmptySelection("a linear fit needs at least two samples.", "Score more samples of the redaction set.")
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / ss_tot if ss_tot > 0 else 0.0
    return LinearFit(float(slope), float(intercept), r2)


def redaction_scores(base: GANBundle, redacted: GANBundle, x: torch.Tensor, ids: torch.Tensor | None = None,
                     labels: torch.Tensor | None = None) -> pd.DataFrame:
    """One row per sample: id, label, d0 = D0(x), d_after = D'(x), rs = d0 - d_after, rs_rel = rs / d0."""
    if len(x) == 0:
        raise EmptySelection("no samples to score.", "Score the training samples of the redaction set.")
    d0, d1 = discriminator_output(base, x).numpy(), discriminator_output(redacted, x).numpy()
    frame = pd.DataFrame({"id": np.arange(len(x)) if ids is None else ids.numpy(), "d0": d0, "d_after": d1})
    if labels is not None:
        frame["label"] = labels.numpy()
    frame["rs"] = frame["d0"] - frame["d_after"]
    frame["rs_rel"] = frame["rs"] / frame["d0"].clip(lower=1e-12)
    return frame


def label_difficulty(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean redaction score per label (App. G-B), hardest (smallest mean RS) first."""
    if "label" not in scores:
        raise EmptySelection("the scores carry no labels.", "Pass labels to redaction_scores.")
    table = scores.groupby("label").agg(mean_rs=("rs", "mean"), mean_rs_rel=("rs_rel", "mean"), n=("rs", "size"))
    return table.sort_values("mean_rs").reset_index()


def extremes(scores: pd.DataFrame, k: int = 8, column: str = "rs") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(easiest, hardest): the k samples with the largest and the smallest score in `column` (App. G-A, G-C)."""
    ordered = scores.sort_values(column)
    return ordered.tail(k).iloc[::-1], ordered.head(k)
