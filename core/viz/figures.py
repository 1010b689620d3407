"""Plotly figures as pure functions of data: the app and the notebooks draw exactly these.

No function here touches global plotting state; each returns a new `go.Figure`.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from core.viz.images import image_grid

# A qualitative palette that stays readable on white and in grey-scale screenshots.
PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2", "#FF9DA6", "#9D755D",
           "#BAB0AC")
SELECTED = "#111111"  # forget-set rings: black, so they never read as a class colour


def _np(values: torch.Tensor | np.ndarray | Sequence) -> np.ndarray:
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def _layout(fig: go.Figure, title: str = "", height: int | None = None) -> go.Figure:
    # The legend sits in a row above the plot, under the title: below the plot it collided with the x-axis title
    # (Streamlit's chart theme draws a legend placed below the axis inside the plot instead).
    fig.update_layout(
        title=title or None, template="plotly_white", height=height,
        margin=dict(l=10, r=10, t=(40 if title else 10) + 28, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0, xanchor="left"),
    )
    return fig


def legend_right(fig: go.Figure) -> go.Figure:
    """A vertical legend right of the plot, for figures whose subplot titles occupy the row above the plots."""
    fig.update_layout(legend=dict(orientation="v", x=1.01, xanchor="left", y=1, yanchor="top"),
                      margin=dict(t=40 if fig.layout.title.text else 10))
    return fig


def grid_figure(images: torch.Tensor | np.ndarray, ncol: int | None = None, title: str = "", scale: int = 1) -> go.Figure:
    """A tiled image grid as a figure without axes (for notebooks and saved run figures)."""
    grid = image_grid(images, ncol=ncol, scale=scale)
    fig = go.Figure(go.Image(z=grid, hoverinfo="skip"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, height=min(900, grid.shape[0] + (60 if title else 20)))


def scatter_figure(
    clouds: Mapping[str, torch.Tensor | np.ndarray],
    labels: Mapping[str, torch.Tensor | np.ndarray | None] | None = None,
    label_names: Sequence[str] = (),
    title: str = "",
    max_points: int = 4000,
    muted: Sequence[str] = ("training data",),
) -> go.Figure:
    """Named point clouds (N x 2) as one scatter plot, or overlaid histograms for 1-D data (N x 1).

    Used for the papers' 2-D toys: for example {"training data": x, "samples": G(z)}. When `labels` gives a
    cloud's labels, that cloud is split into one trace per label so a forgotten mode is visible at a glance.
    Clouds named in `muted` are drawn in light grey behind the others (the reference, not the subject)."""
    labels = labels or {}
    fig = go.Figure()
    colour = 0
    for name, values in clouds.items():
        if name in muted:
            pts = _np(values).reshape(len(values), -1)[:max_points]
            if pts.shape[1] == 1:
                fig.add_trace(go.Histogram(x=pts[:, 0], name=name, opacity=0.35, marker_color="#9E9E9E",
                                           histnorm="probability density", nbinsx=60))
            else:
                fig.add_trace(go.Scattergl(x=pts[:, 0], y=pts[:, 1], mode="markers", name=name,
                                           marker=dict(size=4, opacity=0.35, color="#9E9E9E")))
            continue
        pts = _np(values).reshape(len(values), -1)[:max_points]
        lab = labels.get(name)
        groups: Iterable[tuple[str, np.ndarray]]
        if lab is None:
            groups = [(name, np.ones(len(pts), bool))]
        else:
            lab = _np(lab)[:max_points]
            groups = [
                (f"{name}: {label_names[k] if k < len(label_names) else k}", lab == k) for k in np.unique(lab)
            ]
        for trace_name, mask in groups:
            col = PALETTE[colour % len(PALETTE)]
            colour += 1
            if pts.shape[1] == 1:
                fig.add_trace(go.Histogram(x=pts[mask, 0], name=trace_name, opacity=0.55, marker_color=col,
                                           histnorm="probability density", nbinsx=60))
            else:
                fig.add_trace(go.Scattergl(x=pts[mask, 0], y=pts[mask, 1], mode="markers", name=trace_name,
                                           marker=dict(size=4, opacity=0.55, color=col)))
    if any(_np(v).reshape(len(v), -1).shape[1] == 1 for v in clouds.values()):
        fig.update_layout(barmode="overlay")
    else:
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return _layout(fig, title, height=480)


def class_share_figure(
    counts: Mapping[str, Sequence[float]], class_names: Sequence[str], title: str = "", band: tuple[float, float] | None = None
) -> go.Figure:
    """Bar chart of class shares (fractions summing to 1) per named source, e.g. training data vs samples.

    `band` draws the acceptable range (for example the 5-15% floor of mnist-dcgan)."""
    fig = go.Figure()
    for i, (name, shares) in enumerate(counts.items()):
        colour = "#9E9E9E" if name == "training data" else PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Bar(x=list(class_names), y=list(shares), name=name, marker_color=colour))
    if band is not None:
        fig.add_hrect(y0=band[0], y1=band[1], fillcolor="#54A24B", opacity=0.18, line_width=0, layer="below")
    fig.update_yaxes(tickformat=".0%", title="share")
    fig.update_xaxes(type="category")
    return _layout(fig, title, height=320)


def embedding_figure(
    coords: np.ndarray,
    ids: Sequence[int] | np.ndarray,
    labels: Sequence[int] | np.ndarray | None = None,
    label_names: Sequence[str] = (),
    selected: Iterable[int] = (),
    title: str = "",
    axis_names: tuple[str, str] = ("component 1", "component 2"),
) -> go.Figure:
    """2-D embedding of a dataset, one point per sample, sample id in `customdata` (read back by `selected_ids`).
    The axes are named (`axis_names`, e.g. PC 1 / PC 2) but carry no ticks: a projection's units mean nothing.

    Points already in the forget set are drawn on top as black rings so a lasso shows what it added."""
    coords = np.asarray(coords, np.float32)
    ids = np.asarray(ids)
    fig = go.Figure()
    if labels is None:
        groups = [("samples", np.ones(len(ids), bool), PALETTE[0])]
    else:
        lab = np.asarray(labels)
        groups = [
            (str(label_names[k]) if k < len(label_names) else str(k), lab == k, PALETTE[i % len(PALETTE)])
            for i, k in enumerate(np.unique(lab))
        ]
    for name, mask, col in groups:
        fig.add_trace(go.Scattergl(
            x=coords[mask, 0], y=coords[mask, 1], mode="markers", name=name, customdata=ids[mask],
            marker=dict(size=5, opacity=0.7, color=col), hovertemplate="id %{customdata}<extra>" + name + "</extra>",
        ))
    chosen = np.isin(ids, np.fromiter(selected, dtype=np.int64, count=-1))
    if chosen.any():
        fig.add_trace(go.Scattergl(
            x=coords[chosen, 0], y=coords[chosen, 1], mode="markers", name="in forget set", customdata=ids[chosen],
            marker=dict(size=7, color="rgba(0,0,0,0)", line=dict(color=SELECTED, width=1)),
            hovertemplate="id %{customdata} (selected)<extra></extra>",
        ))
    fig.update_layout(dragmode="lasso", clickmode="event+select")
    fig.update_xaxes(showticklabels=False, title=axis_names[0])
    fig.update_yaxes(showticklabels=False, title=axis_names[1])
    return _layout(fig, title, height=520)


def selected_ids(selection: Mapping[str, Any] | None) -> list[int]:
    """Sample ids picked in a figure made by `embedding_figure`, from a plotly selection event's `points`."""
    if not selection:
        return []
    out: list[int] = []
    for point in selection.get("points", []) or []:
        data = point.get("customdata")
        if isinstance(data, (list, tuple)):
            data = data[0] if data else None
        if data is not None:
            out.append(int(data))
    return sorted(set(out))


def metric_history(events: pd.DataFrame, ignore: Sequence[str] = ()) -> pd.DataFrame:
    """A run's events (one row per event, one column per metric, as `RunRecord.events()` returns them) as the
    long table `curves_figure` draws: columns `step`, `metric`, `value`; `ignore` names non-metric columns."""
    metric_cols = [c for c in events.columns if c not in ignore and c != "step"]
    if events.empty or not metric_cols:
        return pd.DataFrame(columns=["step", "metric", "value"])
    long = events.melt(id_vars=["step"], value_vars=metric_cols, var_name="metric", value_name="value")
    return long.dropna(subset=["value"]).reset_index(drop=True)


def curves_figure(history: pd.DataFrame, metrics: Sequence[str] | None = None, title: str = "") -> go.Figure:
    """Metric curves from a long table with columns `step`, `metric`, `value` and optionally `run`.

    One line per (run, metric); with several runs the metric picks the dash style so overlaid runs stay legible."""
    fig = go.Figure()
    if history.empty:
        fig.add_annotation(text="no metrics reported yet", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return _layout(fig, title, height=300)
    metrics = list(metrics) if metrics else list(dict.fromkeys(history["metric"]))
    runs = list(dict.fromkeys(history["run"])) if "run" in history else [None]
    dashes = ("solid", "dash", "dot", "dashdot", "longdash")
    for r_i, run in enumerate(runs):
        part = history if run is None else history[history["run"] == run]
        for m_i, metric in enumerate(metrics):
            rows = part[part["metric"] == metric].sort_values("step")
            if rows.empty:
                continue
            name = metric if run is None else f"{run} · {metric}"
            one_run = len(runs) == 1
            colour = PALETTE[(m_i if one_run else r_i) % len(PALETTE)]
            fig.add_trace(go.Scatter(
                x=rows["step"], y=rows["value"], mode="lines+markers" if len(rows) < 30 else "lines", name=name,
                line=dict(color=colour, dash="solid" if one_run else dashes[m_i % len(dashes)]),
            ))
    fig.update_xaxes(title="step")
    fig.update_layout(showlegend=True)  # name the metric even when there is one curve
    if len(metrics) == 1:
        fig.update_yaxes(title=metrics[0])
    return _layout(fig, title, height=340)
