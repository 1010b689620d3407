"""GOLD figures (Mo et al. 2019): the histograms of the estimator's two terms (Fig. 1a), curves of a training run
(Fig. 1b-c, 4) and the 2-D pool with each round's queries (Fig. 3)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.viz.figures import PALETTE, _layout, _np, legend_right


def terms_histogram_figure(terms: Mapping[str, Mapping[str, Sequence[float]]], title: str = "") -> go.Figure:
    """Fig. 1a: histograms of the marginal term log D_G/(1-D_G) (left) and the conditional term log D_C(c|x)
    (right), one colour per sample set (e.g. generated, real). `terms` = {set: {"marginal": [...],
    "conditional": [...]}}; each panel shares its bins across sets so the densities compare."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=["marginal: log D_G / (1 − D_G)", "conditional: log D_C(c | x)"])
    for col, term in enumerate(("marginal", "conditional"), start=1):
        pooled = np.concatenate([_np(v[term]) for v in terms.values()] + [np.zeros(0)])
        edges = np.histogram_bin_edges(pooled, bins=40) if len(pooled) else np.linspace(0, 1, 41)
        for i, (name, values) in enumerate(terms.items()):
            density, _ = np.histogram(_np(values[term]), edges, density=True)
            fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=density, width=edges[1] - edges[0], opacity=0.6,
                                 name=name, legendgroup=name, showlegend=col == 1,
                                 marker_color=PALETTE[i % len(PALETTE)]), row=1, col=col)
    fig.update_layout(barmode="overlay")
    fig.update_yaxes(title_text="density", col=1)
    return legend_right(_layout(fig, title or "GOLD's two terms (Fig. 1a)", height=340))


def pool_queries_figure(x: np.ndarray, labels: np.ndarray, known: np.ndarray, rounds: np.ndarray,
                        title: str = "") -> go.Figure:
    """Fig. 3: the 2-D pool (grey: unlabelled), the labels known at the start (black) and the points each round
    queried (one colour per round, numbered)."""
    x, labels, known, rounds = _np(x), _np(labels), _np(known).astype(bool), _np(rounds)
    fig = go.Figure(go.Scatter(x=x[~known, 0], y=x[~known, 1], mode="markers", name="unlabelled pool",
                               marker=dict(size=4, color="#c8c8c8")))
    start = known & (rounds == 0)
    fig.add_trace(go.Scatter(x=x[start, 0], y=x[start, 1], mode="markers", name="labelled at start",
                             marker=dict(size=10, color="#111111", symbol=np.where(labels[start] == 1, "diamond", "circle"))))
    for r in sorted(set(rounds[known & (rounds > 0)].tolist())):
        pick = known & (rounds == r)
        fig.add_trace(go.Scatter(x=x[pick, 0], y=x[pick, 1], mode="markers+text", name=f"round {r} queries",
                                 text=[str(r)] * int(pick.sum()), textposition="top center",
                                 marker=dict(size=11, color=PALETTE[(r - 1) % len(PALETTE)],
                                             symbol=np.where(labels[pick] == 1, "diamond", "circle"))))
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return _layout(fig, title or "Queried points per round (Fig. 3)", height=420)


def score_scatter_figure(x, values, name: str, title: str = "") -> go.Figure:
    """2-D samples coloured by a GOLD value (the toy model's version of Fig. 2's sorted grids)."""
    x, values = _np(x), _np(values)
    fig = go.Figure(go.Scattergl(x=x[:, 0], y=x[:, 1], mode="markers", name=name,
                                 marker=dict(size=5, color=values, colorscale="RdBu", showscale=True,
                                             colorbar=dict(title=name))))
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return _layout(fig, title or f"generated samples coloured by {name}", height=420)
