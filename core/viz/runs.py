"""Run charts as small multiples: one panel per metric, each with its own axis and unit, the method's main metric
first, human names instead of code names, 95% error bands where a run reports a standard error (`<metric>_se`),
and counts (sizes of sets, query counts) left out of the curves (they belong in a table).

    fig = metric_panels({"label 0 · classifier": run.events()}, method="redact")
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.runs.events import EVENT_COLUMNS
from core.viz.figures import PALETTE, _layout, legend_right

LABELS: dict[str, tuple[str, str]] = {
    # redaction (Kong & Chaudhuri 2023)
    "invalidity": ("invalidity (share of samples in Ω)", "%"),
    "loss_d": ("discriminator loss", ""), "loss_g": ("generator loss", ""),
    # taming (Malnick et al. 2024)
    "distance_max_abs": ("max |distance| to threshold, batch", "σ_R"),
    "distance_checked_max_abs": ("max |distance|, eq. 10 check", "σ_R"),
    "distance_mean": ("mean distance to threshold", "σ_R"),
    "distance_min": ("min distance to threshold", "σ_R"),
    "distance_max": ("max distance to threshold", "σ_R"),
    "within_epsilon": ("forget images within ε", "%"),
    "kl_forward": ("KL(base ‖ tamed), remember", "nats"),
    "kl_reverse": ("KL(tamed ‖ base), remember", "nats"),
    "remember_bpd": ("remember images' NLL", "bits/dim"),
    "remember_sigma": ("spread of remember NLLs", "bits/dim"),
    "share": ("share of samples that have it", "%"),
    "share_confident": ("share among samples the judge is sure of", "%"),
    "share_unsure": ("samples the judge is unsure of", "%"),
    "mu_R": ("μ_R: mean remember NLL", "bits/dim"), "sigma_R": ("σ_R: spread of remember NLLs", "bits/dim"),
    "threshold": ("threshold μ_R + δσ_R", "bits/dim"),
    # training
    "loss_train": ("training loss", ""), "accuracy": ("accuracy", "%"),
}
"""Metric name -> (what a person calls it, unit). "%" formats the axis as percentages."""

METHOD_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "tame": {"loss": ("total loss (eq. 12)", ""), "loss_forget": ("forget loss (eq. 9)", ""),
             "loss_remember": ("remember loss (eq. 11)", "")},
}
"""Names that mean something only for one method (a "loss" is eq. 12 for taming, anything elsewhere)."""

NOT_CURVES = {"omega_size", "validity_queries", "epoch", "iteration", "deleted", "real_size"}
"""Counts and x-axes: shown in tables, never drawn as a curve (a count of 400 flattens every other line)."""

MAIN_METRICS: dict[str, tuple[str, ...]] = {
    "redact": ("invalidity", "IS[", "FID["),
    "tame": ("distance_max_abs", "distance_checked_max_abs", "within_epsilon", "share", "kl_forward", "kl_reverse",
             "remember_bpd"),
}
"""Per method, the metrics (or name prefixes) drawn first, in this order; the method's headline is the first."""


def label(metric: str, method: str = "") -> str:
    """A metric's human name with its unit: "invalidity (share of samples in Ω)", "IS[mnist-lenet]"."""
    name, unit = METHOD_LABELS.get(method, {}).get(metric) or LABELS.get(metric, (metric.replace("_", " "), ""))
    return f"{name} ({unit})" if unit and unit != "%" else name


def curve_metrics(frames: Mapping[str, pd.DataFrame], method: str = "") -> list[str]:
    """The metrics to draw, main ones first: every numeric column of the frames except event fields, standard
    errors (drawn as bands) and counts."""
    seen: list[str] = []
    for frame in frames.values():
        for col in frame.columns:
            if (col in EVENT_COLUMNS or col in NOT_CURVES or col.endswith("_se") or col in seen
                    or not pd.api.types.is_numeric_dtype(frame[col]) or frame[col].notna().sum() == 0):
                continue
            seen.append(col)
    order = MAIN_METRICS.get(method, ())

    def rank(metric: str) -> tuple[int, int]:
        for i, key in enumerate(order):
            if metric == key or (key.endswith("[") and metric.startswith(key)):
                return (0, i)
        return (1, seen.index(metric))

    return sorted(seen, key=rank)


def metric_panels(frames: Mapping[str, pd.DataFrame], method: str = "", metrics: Sequence[str] | None = None,
                  columns: int = 3, title: str = "", x: str | None = None) -> go.Figure:
    """Small multiples of runs' metric curves: one panel per metric, one colour per run (legend: the run names).

    `frames` maps a run's name (what was forgotten and how) to its events as `RunRecord.events()` returns them.
    The x axis is `x`, else "epoch" when every frame has it (redaction), else "step"."""
    frames = {name: f for name, f in frames.items() if not f.empty}
    metrics = list(metrics) if metrics is not None else curve_metrics(frames, method)
    if not frames or not metrics:
        fig = go.Figure()
        fig.add_annotation(text="no metrics reported yet", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return _layout(fig, title, height=200)
    x = x or ("epoch" if all("epoch" in f for f in frames.values()) else "step")
    columns = max(1, min(columns, len(metrics)))
    rows = math.ceil(len(metrics) / columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=[label(m, method) for m in metrics],
                        horizontal_spacing=0.07, vertical_spacing=0.32 / rows if rows > 1 else 0.1)
    for r_i, (name, frame) in enumerate(frames.items()):
        colour = PALETTE[r_i % len(PALETTE)]
        for m_i, metric in enumerate(metrics):
            if metric not in frame:
                continue
            part = frame[[c for c in (x, metric, f"{metric}_se") if c in frame]].dropna(subset=[metric])
            if part.empty:
                continue
            part = part.sort_values(x)
            row, col = m_i // columns + 1, m_i % columns + 1
            if f"{metric}_se" in part:
                se = part[f"{metric}_se"].fillna(0) * 1.96
                fig.add_trace(go.Scatter(
                    x=list(part[x]) + list(part[x])[::-1], y=list(part[metric] + se) + list(part[metric] - se)[::-1],
                    fill="toself", fillcolor=colour, opacity=0.18, mode="lines", line=dict(width=0), hoverinfo="skip",
                    showlegend=False, legendgroup=name), row=row, col=col)
            fig.add_trace(go.Scatter(x=part[x], y=part[metric], name=name, legendgroup=name, showlegend=m_i == 0,
                                     mode="lines+markers" if len(part) < 30 else "lines",
                                     line=dict(color=colour), marker=dict(size=5),
                                     hovertemplate=f"{x} %{{x:.3g}}: %{{y:.4g}}<extra>{name}</extra>"),
                          row=row, col=col)
            if LABELS.get(metric, ("", ""))[1] == "%":
                fig.update_yaxes(tickformat=".0%", row=row, col=col)
            fig.update_xaxes(title=x if row == rows else None, row=row, col=col)
    fig.update_annotations(font_size=12)
    fig.update_layout(showlegend=True)
    fig = legend_right(_layout(fig, title, height=70 + 230 * rows))
    fig.update_layout(margin=dict(t=(70 if title else 36)))  # room for the first row's panel titles
    return fig
