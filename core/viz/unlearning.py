"""Figures of an image-to-image unlearning run (Li et al., ICLR 2024, Fig. 3 and Fig. 4): pure functions of data.

- `completion_grid`: one row per stage (ground truth, degraded input, original model, unlearned model), the same
  held-out images and masks in every row (Fig. 3).
- `embedding_figure`: 2-D projection of the judge's features of completions and ground truths on the retain and
  forget sets (Fig. 4): after unlearning, retain completions sit on their ground truths, forget completions do not.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from core.viz.figures import PALETTE, _layout
from core.viz.images import image_grid

EMBEDDING_COLOURS = {"retain: ground truth": PALETTE[0], "retain: completed": PALETTE[1],
                     "forget: ground truth": PALETTE[3], "forget: completed": PALETTE[2]}


def completion_grid(rows: Mapping[str, torch.Tensor], scale: int = 2) -> np.ndarray:
    """The rows' images (each N x C x H x W in [0, 1], the same N) tiled one row per entry, in order."""
    images = list(rows.values())
    return image_grid(torch.cat([r.cpu().float().clamp(0, 1) for r in images]), ncol=len(images[0]), scale=scale)


def embedding_figure(coords: np.ndarray, labels: Sequence[str], title: str = "") -> go.Figure:
    """Scatter of N x 2 `coords`, one trace per label (Fig. 4's four groups)."""
    fig = go.Figure()
    labels = np.asarray(labels)
    for i, name in enumerate(dict.fromkeys(labels.tolist())):
        pick = labels == name
        fig.add_trace(go.Scatter(x=coords[pick, 0], y=coords[pick, 1], mode="markers", name=name,
                                 marker=dict(size=7, color=EMBEDDING_COLOURS.get(name, PALETTE[i % len(PALETTE)]),
                                             symbol="circle" if "ground truth" in name else "x")))
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return _layout(fig, title, height=420)
