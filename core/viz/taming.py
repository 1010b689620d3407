"""Figures of a taming run (taming paper, Fig. 1, 2, 4, 5, 6): pure functions of the data a run saves.

- `nll_histogram_figure`: NLL histograms (bits/dim) of the remember and forget sets under the base and the tamed
  model, with each model's threshold mu_R + delta sigma_R (Fig. 1 and 6); non-finite NLLs are counted in the
  legend instead of silently dropped.
- `live_nll_figure`: while a run is going, the normal fit N(mu_R, sigma_R^2) of the remember NLLs, the threshold
  and the spread of the forget images' distances at the latest reported iteration (from scalar live metrics).
- `share_figure`: the share of generated samples carrying the attribute over iterations (Fig. 4).
- `toy_figure`: density and samples of a 2-D flow before and after (Fig. 2).
- `quantile_table`: q before/after and QD per set (Table 1's columns).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.viz.figures import PALETTE, _layout, legend_right

SET_LABELS = {"reference": "D_R (reference)", "remember_eval": "D_R", "forget": "D_F", "holdout": "D'_F",
              "identities": "D_R^id", "neighbours": "D_R^NN"}
SET_COLOURS = {"reference": PALETTE[0], "remember_eval": PALETTE[0], "forget": PALETTE[3], "holdout": PALETTE[1],
               "identities": PALETTE[2], "neighbours": PALETTE[6]}


def _finite(values: Sequence[float]) -> tuple[np.ndarray, int]:
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    ok = np.isfinite(arr)
    return arr[ok], int((~ok).sum())


RUG_BELOW = 50  # sets with fewer NLLs than this are drawn as a rug of ticks, not a histogram


def nll_histogram_figure(data: Mapping[str, Any], sets: Sequence[str] = ("remember_eval", "forget", "holdout"),
                         title: str = "") -> go.Figure:
    """Histograms of NLLs (bits/dim) per set, base model on the left and tamed model on the right, with the
    threshold mu_R + delta sigma_R (dashed) and mu_R (dotted) of each model. Sets of fewer than RUG_BELOW images
    (a person's D_F and D'_F) are drawn as rugs below the axis. `data` is a run's `nlls` figure:
    {"nll": {"base": {set: [...]}, "tamed": {...}}, "stats": {"base": {"mu", "sigma"}, ...}, "delta", ...}."""
    models = [m for m in ("base", "tamed") if m in data.get("nll", {})]
    fig = make_subplots(rows=1, cols=len(models), shared_yaxes=False, horizontal_spacing=0.06,
                        subplot_titles=[f"{m} model" for m in models])
    sign = -1.0 if data.get("direction") == "emphasize" else 1.0
    delta = float(data.get("delta", 4.0))
    for col, model in enumerate(models, start=1):
        present = {key: _finite(data["nll"][model][key]) for key in sets if data["nll"][model].get(key) is not None}
        pooled = np.concatenate([finite for finite, _ in present.values()] + [np.zeros(0)])
        edges = np.histogram_bin_edges(pooled, bins=50) if len(pooled) else np.linspace(0, 1, 51)
        height = max([np.histogram(f, edges, density=True)[0].max() for f, _ in present.values()
                      if len(f) >= RUG_BELOW] + [1.0])
        rugs = 0
        for key, (finite, bad) in present.items():
            name = SET_LABELS.get(key, key) + (f" ({bad} non-finite!)" if bad else "")
            style = dict(name=name, legendgroup=key, showlegend=col == 1, marker_color=SET_COLOURS.get(key, PALETTE[5]))
            if len(finite) >= RUG_BELOW:  # one shared set of bins per model, so the densities compare
                density, _ = np.histogram(finite, edges, density=True)
                fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=density, width=edges[1] - edges[0],
                                     opacity=0.6, **style), row=1, col=col)
            else:  # a few images (one person): a rug of ticks under the axis, one per image, not a spiky density
                rugs += 1
                fig.add_trace(go.Scatter(x=finite, y=np.full(len(finite), -0.08 * height * rugs), mode="markers",
                                         marker_symbol="line-ns-open", marker_size=14, marker_line_width=2,
                                         **style), row=1, col=col)
        stats = data.get("stats", {}).get(model)
        if stats:
            t = stats["mu"] + sign * delta * stats["sigma"]
            fig.add_vline(x=t, line_dash="dash", line_color="#111111", row=1, col=col,
                          annotation_text=f"threshold μ_R{'+' if sign > 0 else '−'}{delta:g}σ_R",
                          annotation_position="top")
            fig.add_vline(x=stats["mu"], line_dash="dot", line_color="#888888", row=1, col=col)
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title_text=f"NLL ({data.get('unit', 'bits/dim')}, lower = more likely)")
    return legend_right(_layout(fig, title or "NLL histograms with the forgetting threshold", height=380))


def live_nll_figure(metrics: Mapping[str, float], delta: float, direction: str = "forget", title: str = "") -> go.Figure:
    """The remember NLLs' normal fit, the threshold and the forget images' NLL range at one iteration, drawn from
    the run's live metrics (mu_R, sigma_R, distance_min/mean/max in sigma_R units)."""
    fig = go.Figure()
    mu, sigma = metrics.get("mu_R"), metrics.get("sigma_R")
    if mu is None or sigma is None or not sigma > 0:
        fig.add_annotation(text="waiting for the first iteration", showarrow=False, x=0.5, y=0.5, xref="paper",
                           yref="paper")
        return _layout(fig, title, height=300)
    sign = -1.0 if direction == "emphasize" else 1.0
    t = mu + sign * delta * sigma
    if metrics.get("threshold") is not None:  # the run's own threshold (a target-share run picks its direction)
        t = float(metrics["threshold"])
        sign = -1.0 if t < mu else 1.0
    xs = np.linspace(mu - 6 * sigma, mu + 7 * sigma, 300)
    ys = np.exp(-0.5 * ((xs - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", fill="tozeroy", name="D_R NLLs (normal fit)",
                             line_color=PALETTE[0]))
    top = float(ys.max())
    if "distance_min" in metrics:
        lo, mid, hi = (t + metrics[k] * sigma for k in ("distance_min", "distance_mean", "distance_max"))
        fig.add_trace(go.Scatter(x=[lo, hi], y=[top * 0.5, top * 0.5], mode="lines+markers", name="D_F NLL range",
                                 line=dict(color=PALETTE[3], width=6)))
        fig.add_trace(go.Scatter(x=[mid], y=[top * 0.5], mode="markers", name="D_F mean",
                                 marker=dict(color=PALETTE[3], size=14, symbol="diamond")))
    fig.add_vline(x=t, line_dash="dash", line_color="#111111",
                  annotation_text=f"threshold μ_R{'+' if sign > 0 else '−'}{delta:g}σ_R")
    fig.update_xaxes(title_text="NLL (bits/dim)")
    fig.update_yaxes(visible=False)
    return _layout(fig, title or "Where the forget images are, relative to the threshold", height=300)


def share_figure(runs: Mapping[str, pd.DataFrame], target: float | None = None, title: str = "") -> go.Figure:
    """Share of generated samples with the attribute over iterations, one line per run (Fig. 4). Each frame has
    columns `step` and `share`."""
    fig = go.Figure()
    for i, (name, frame) in enumerate(runs.items()):
        rows = frame.dropna(subset=["share"]) if "share" in frame else frame.iloc[0:0]
        fig.add_trace(go.Scatter(x=rows["step"] if len(rows) else [], y=rows["share"] if len(rows) else [],
                                 mode="lines+markers", name=name, line_color=PALETTE[i % len(PALETTE)]))
    if target is not None:
        fig.add_hline(y=target, line_dash="dash", annotation_text=f"target {target:g}")
    fig.update_xaxes(title_text="iteration")
    fig.update_yaxes(title_text="share of samples", rangemode="tozero")
    return _layout(fig, title or "Share of generated samples with the attribute", height=320)


def toy_figure(data: Mapping[str, Any], title: str = "") -> go.Figure:
    """Fig. 2: log-density heat maps and samples from the same latents, before and after taming a 2-D flow."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("base", "tamed"), horizontal_spacing=0.08)
    for col, when in enumerate(("before", "after"), start=1):
        grid = data[f"density_{when}"]
        dens = np.exp(np.clip(np.asarray(grid["log_prob"], dtype=float), -30, 10))
        fig.add_trace(go.Heatmap(x=grid["x"], y=grid["y"], z=dens, colorscale="Blues", showscale=False), row=1, col=col)
        pts = np.asarray(data[f"samples_{when}"], dtype=float)
        fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name=f"samples ({when})",
                                 marker=dict(size=3, color=PALETTE[3 if when == "after" else 1], opacity=0.6),
                                 showlegend=col == 1 or True), row=1, col=col)
    fig.update_xaxes(range=[min(data["density_before"]["x"]), max(data["density_before"]["x"])])
    fig.update_yaxes(range=[min(data["density_before"]["y"]), max(data["density_before"]["y"])], scaleanchor="x")
    return legend_right(_layout(fig, title or "Density and samples from the same latents, before and after",
                                height=420))


def quantile_table(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Table 1's view of one run: per set, q before, q after and the quantile drop QD (eq. 14-15)."""
    rows = []
    for key, label, better in (("forget", "D_F", "up"), ("holdout", "D'_F", "up"), ("remember", "D_R", "down"),
                               ("identities", "D_R^id", "down"), ("neighbours", "D_R^NN", "down")):
        if metrics.get(f"q_{key}_before") is None:
            continue
        rows.append({"set": label, "q before": metrics[f"q_{key}_before"], "q after": metrics.get(f"q_{key}_after"),
                     "QD": metrics.get(f"qd_{key}"), "QD should be": "large" if better == "up" else "near 0"})
    return pd.DataFrame(rows)
