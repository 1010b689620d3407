"""Figures of an influence run (Terashita et al., ICLR 2021, Fig. 1-3): pure functions of the tables a run saves.

Influence is shown in the sign users read (`core.methods.influence.sign_rule`): V with j - V without j.

- `influence_histogram`: the distribution of the estimated influence over the training set.
- `influence_map`: 2-D training points coloured by influence over the generator's samples (Fig. 3a).
- `estimated_vs_true`: estimated against true influence of the verified targets, with tau and Jaccard (Sec. 5.1).
- `cleansing_figure`: the test metric before and after removing each selector's instances (Sec. 5.2, Fig. 2).
- `agreement_figure`: Kendall tau and Jaccard (mean +- std over seeds) against k, with random ranking (Fig. 1).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.viz.figures import PALETTE, _layout

SELECTOR_LABELS = {"influence": "Influence (ours)", "dloss": "Influence on D loss", "isolation-forest":
                   "Isolation forest", "random": "Random", "none": "No removal"}
SELECTOR_COLOURS = {"influence": PALETTE[3], "dloss": PALETTE[1], "isolation-forest": PALETTE[2],
                    "random": PALETTE[9], "none": PALETTE[0]}


def influence_histogram(values: Sequence[float], metric_name: str, title: str = "") -> go.Figure:
    """Histogram of the estimated influence of every training instance."""
    values = np.asarray(values, dtype=float)
    fig = go.Figure(go.Histogram(x=values, nbinsx=60, marker_color=PALETTE[0], name="instances"))
    fig.add_vline(x=0.0, line_color="#555", line_dash="dot")
    fig.update_xaxes(title=f"influence on {metric_name} (V with j - V without j)")
    fig.update_yaxes(title="training instances")
    return _layout(fig, title, height=300)


def influence_map(points: np.ndarray, values: Sequence[float], samples: np.ndarray | None = None,
                  harmful_positive: bool = False, title: str = "") -> go.Figure:
    """Training points coloured by influence (red = harmful, blue = helpful, whatever the metric's direction),
    over a density contour of the generator's samples: the paper's Fig. 3a."""
    values = np.asarray(values, dtype=float)
    limit = float(np.quantile(np.abs(values), 0.98)) or 1.0
    blue, red = "#2166ac", "#b2182b"
    scale = [[0, blue], [0.5, "#f7f7f7"], [1, red]] if harmful_positive else [[0, red], [0.5, "#f7f7f7"], [1, blue]]
    fig = go.Figure()
    if samples is not None:
        fig.add_trace(go.Histogram2dContour(x=samples[:, 0], y=samples[:, 1], colorscale=[[0, "#999"], [1, "#111"]],
                                            showscale=False, contours=dict(coloring="lines"), line=dict(width=1.5),
                                            name="generator samples (density)", showlegend=True, ncontours=8,
                                            hoverinfo="skip"))
    fig.add_trace(go.Scattergl(
        x=points[:, 0], y=points[:, 1], mode="markers", name="training instances", customdata=np.arange(len(points)),
        marker=dict(size=4, color=values, cmin=-limit, cmax=limit,
                    colorscale=scale,
                    colorbar=dict(title="influence", thickness=12)),
        hovertemplate="#%{customdata}<br>influence %{marker.color:.3g}<extra></extra>"))
    fig.update_xaxes(title="x1")
    fig.update_yaxes(title="x2", scaleanchor="x", scaleratio=1)
    return _layout(fig, title, height=460)


def estimated_vs_true(table: pd.DataFrame, tau: float, jaccard: float, metric_name: str,
                      title: str = "") -> go.Figure:
    """Scatter of estimated against true influence (columns `estimated`, `true`, `instance`) with y = x."""
    est, true = table["estimated"].to_numpy(float), table["true"].to_numpy(float)
    lo, hi = float(min(est.min(), true.min())), float(max(est.max(), true.max()))
    fig = go.Figure([
        go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(color="#999", dash="dot"), name="y = x"),
        go.Scatter(x=true, y=est, mode="markers", marker=dict(color=PALETTE[0], size=7), name="targets",
                   customdata=table["instance"], hovertemplate="#%{customdata}<br>true %{x:.3g}<br>"
                                                                "estimated %{y:.3g}<extra></extra>"),
    ])
    fig.update_xaxes(title=f"true influence on {metric_name} (counterfactual replay)")
    fig.update_yaxes(title="estimated influence")
    return _layout(fig, title or f"Kendall tau {tau:.2f} · Jaccard {jaccard:.2f}", height=380)


def cleansing_figure(table: pd.DataFrame, metric_name: str, title: str = "") -> go.Figure:
    """Bars of the test metric after removal per selector (columns `selector`, `after`, `before`), the traced
    model's value as a line."""
    fig = go.Figure(go.Bar(
        x=[SELECTOR_LABELS.get(s, s) for s in table["selector"]], y=table["after"],
        marker_color=[SELECTOR_COLOURS.get(s, PALETTE[0]) for s in table["selector"]], name="after removal",
        text=[f"{v:.4g}" for v in table["after"]], textposition="outside"))
    before = float(table["before"].iloc[0])
    fig.add_hline(y=before, line_dash="dot", line_color="#333", annotation_text=f"before {before:.4g}")
    spread = float(np.ptp(np.r_[table["after"].to_numpy(float), before])) or abs(before) * 0.01 or 1.0
    low, high = min(table["after"].min(), before), max(table["after"].max(), before)
    fig.update_yaxes(title=f"test {metric_name}", range=[low - spread, high + spread])
    return _layout(fig, title, height=340)


def agreement_figure(table: pd.DataFrame, title: str = "") -> go.Figure:
    """Fig. 1: mean +- std over seeds of Kendall tau and Jaccard against k (columns `k`, `seed`, `tau`,
    `jaccard`, `tau_random`, `jaccard_random`), the estimate beside random ranking."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Kendall's tau", "Jaccard index (20 critical)"))
    stats = table.groupby("k").agg(["mean", "std"])
    for col, (name, random_name) in enumerate((("tau", "tau_random"), ("jaccard", "jaccard_random")), start=1):
        for key, label, colour in ((name, "estimated influence", PALETTE[3]), (random_name, "random", PALETTE[9])):
            fig.add_trace(go.Scatter(x=stats.index, y=stats[key]["mean"], error_y=dict(array=stats[key]["std"]),
                                     mode="lines+markers", name=label, line_color=colour, showlegend=col == 1),
                          row=1, col=col)
        fig.update_xaxes(title="traced epochs k", row=1, col=col)
    return _layout(fig, title, height=340)
