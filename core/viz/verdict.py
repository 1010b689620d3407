"""The picture that proves a run's verdict (`core.runs.verdict.Proof`), the same on every page and in notebooks.

- "shares": class shares of generated samples before and after, side by side per class; the forgotten classes are
  drawn in red so "class 0 fell to about 1%" reads at a glance.
- "nll": per model (base, tamed), the remember images' NLLs as a box, each forget image as a dot, and the model's
  threshold mu_R + delta sigma_R as a dashed tick: a forgotten person's dots sit at or past the tick.
- "bars": one quantity per category for two or more series side by side (an unlearned model's FID on forget and
  retain images against the original's; the test metric after each cleansing selector); highlighted categories
  are labelled with their values.
- "curves": one line per series over a shared x axis (fitting capacity per epoch, plain and GOLD re-weighted).
- "scatter": points against the y = x line (estimated against true influence: on the line is a perfect estimate).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.runs.verdict import Proof
from core.viz.figures import PALETTE, _layout

BEFORE, AFTER, FORGOTTEN = "#9E9E9E", PALETTE[0], PALETTE[3]


def shares_figure(data: dict, title: str = "") -> go.Figure:
    classes = [str(c) for c in data["classes"]]
    forgotten = {str(c) for c in data.get("forgotten", [])}
    after_colours = [FORGOTTEN if c in forgotten else AFTER for c in classes]
    fig = go.Figure([
        go.Bar(x=classes, y=data["before"], name="before", marker_color=BEFORE,
               hovertemplate="class %{x}: %{y:.1%} before<extra></extra>"),
        go.Bar(x=classes, y=data["after"], name="after" + (" (forgotten in red)" if forgotten else ""),
               marker_color=after_colours, hovertemplate="class %{x}: %{y:.1%} after<extra></extra>",
               text=[f"{a:.1%}" if c in forgotten else "" for c, a in zip(classes, data["after"])],
               textposition="outside", textfont=dict(color=FORGOTTEN)),
    ])
    fig.update_layout(barmode="group")
    fig.update_xaxes(type="category", title="class (as the label classifier reads the sample)")
    fig.update_yaxes(tickformat=".0%", title="share of samples", rangemode="tozero")
    return _layout(fig, title, height=300)


def _finite(values) -> np.ndarray:
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    return arr[np.isfinite(arr)]


def nll_figure(data: dict, title: str = "") -> go.Figure:
    fig = go.Figure()
    sign = -1.0 if data.get("direction") == "emphasize" else 1.0
    delta = float(data.get("delta", 4.0))
    rows = [m for m in ("base", "tamed") if m in data.get("nll", {})]
    names = {"base": "before (base model)", "tamed": "after (tamed model)"}
    for i, model in enumerate(rows):
        nll = data["nll"][model]
        y = names[model]
        remember = _finite(nll.get("reference") or nll.get("remember_eval") or [])
        fig.add_trace(go.Box(x=remember, y=[y] * len(remember), name="remember images (D_R)", orientation="h",
                             marker_color=PALETTE[0], boxpoints=False, legendgroup="r", showlegend=i == 0))
        forget = _finite(nll.get("forget") or [])
        fig.add_trace(go.Scatter(x=forget, y=[y] * len(forget), mode="markers", name="forget images (D_F)",
                                 marker=dict(color=PALETTE[3], size=9, symbol="circle-open", line=dict(width=2)),
                                 legendgroup="f", showlegend=i == 0,
                                 hovertemplate="NLL %{x:.3f} bits/dim<extra>forget image</extra>"))
        st = data.get("stats", {}).get(model)
        if st:
            t = st["mu"] + sign * delta * st["sigma"]
            fig.add_trace(go.Scatter(x=[t, t], y=[y, y], mode="markers", name=f"threshold μ_R {'+' if sign > 0 else '−'} "
                                     f"{delta:g} σ_R", marker=dict(symbol="line-ns", size=34, color="#111111",
                                                                   line=dict(width=3, color="#111111")),
                                     legendgroup="t", showlegend=i == 0,
                                     hovertemplate=f"threshold {t:.3f} bits/dim<extra>{model}</extra>"))
    fig.update_xaxes(title=f"NLL ({data.get('unit', 'bits/dim')}); higher = less likely")
    fig.update_yaxes(categoryorder="array", categoryarray=[names[m] for m in reversed(rows)])
    return _layout(fig, title, height=260)


def bars_figure(data: dict, title: str = "") -> go.Figure:
    """data = {"categories": [...], "series": {name: [value per category]}, "axis": y title, "highlight": [...]}."""
    categories = [str(c) for c in data["categories"]]
    highlight = {str(c) for c in data.get("highlight", [])}
    colours = [BEFORE, AFTER, *PALETTE[1:]]
    fig = go.Figure([
        go.Bar(x=categories, y=values, name=name, marker_color=colours[i % len(colours)],
               text=[f"{v:.3g}" if c in highlight and v is not None else "" for c, v in zip(categories, values)],
               textposition="outside", hovertemplate=f"{name}, %{{x}}: %{{y:.4g}}<extra></extra>")
        for i, (name, values) in enumerate(data["series"].items())])
    fig.update_layout(barmode="group")
    fig.update_xaxes(type="category", title=data.get("x_title", ""))
    fig.update_yaxes(title=data.get("axis", ""), rangemode="tozero")
    return _layout(fig, title, height=300)


def curves_figure(data: dict, title: str = "") -> go.Figure:
    """data = {"series": {name: {"x": [...], "y": [...]}}, "x_title": ..., "axis": y title, "percent": bool}."""
    fig = go.Figure([go.Scatter(x=line["x"], y=line["y"], name=name, mode="lines+markers",
                                line=dict(color=PALETTE[i % len(PALETTE)]))
                     for i, (name, line) in enumerate(data["series"].items())])
    fig.update_xaxes(title=data.get("x_title", ""))
    fig.update_yaxes(title=data.get("axis", ""), tickformat=".0%" if data.get("percent") else None,
                     range=[0, 1.02] if data.get("percent") else None)
    return _layout(fig, title, height=300)


def scatter_figure(data: dict, title: str = "") -> go.Figure:
    """data = {"x": [...], "y": [...], "x_title": ..., "y_title": ...}; the dashed line is y = x."""
    x, y = _finite(data["x"]), _finite(data["y"])
    span = [float(min(x.min(), y.min())), float(max(x.max(), y.max()))] if len(x) and len(y) else [0.0, 1.0]
    fig = go.Figure([
        go.Scatter(x=span, y=span, mode="lines", name="y = x (perfect estimate)",
                   line=dict(color=BEFORE, dash="dash")),
        go.Scatter(x=data["x"], y=data["y"], mode="markers", name=data.get("name", "instances"),
                   marker=dict(color=AFTER, size=8))])
    fig.update_xaxes(title=data.get("x_title", ""))
    fig.update_yaxes(title=data.get("y_title", ""))
    return _layout(fig, title, height=320)


def proof_figure(proof: Proof, title: str = "") -> go.Figure:
    """The figure for a verdict's proof, by its kind."""
    builders = {"shares": shares_figure, "nll": nll_figure, "bars": bars_figure, "curves": curves_figure,
                "scatter": scatter_figure}
    if proof.kind in builders:
        return builders[proof.kind](dict(proof.data), title)
    raise ValueError(f"no figure for a proof of kind {proof.kind!r}")
