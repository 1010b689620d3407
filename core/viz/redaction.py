"""Figures of data redaction (the app's Redact page and notebooks/redaction.ipynb draw these).

- `invalidity_figure`: invalidity against epochs for one or several runs, with a +-1 standard-error band and
  deletion baselines as dashed levels (paper Fig. 2, Fig. 6, Table III/VI side by side);
- `metric_figure`: any other per-checkpoint metric (IS, FID) against epochs (Fig. 5); `losses_figure`: D and G
  losses;
- `film_figure`: the redaction film, one row per latent, one column per checkpoint (Fig. 3);
- `redaction_score_figure`: RS(x) against D0(x) with the least-squares line and R^2 (Fig. 4);
- `label_difficulty_figure`: mean redaction score per label (Fig. 12);
- `deletion_vs_redaction_figure`: the 1-D example of Fig. 1.
"""

from __future__ import annotations

import base64
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.methods.redaction.scores import LinearFit
from core.methods.redaction.toy1d import DeletionVersusRedaction
from core.viz.figures import PALETTE, _layout
from core.viz.images import image_grid, png_bytes


def _legend(fig: go.Figure, entries: int) -> go.Figure:
    """The legend (above the plot, as `_layout` puts it) only when there is a choice."""
    fig.update_layout(showlegend=entries > 1)
    return fig


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def invalidity_figure(runs: Mapping[str, pd.DataFrame], baselines: Mapping[str, float] | None = None,
                      log_y: bool = True, title: str = "") -> go.Figure:
    """Invalidity (columns `epoch`, `invalidity`, optional `invalidity_se`) per run, with +-1 SE bands.

    On a log axis a zero invalidity cannot be drawn; it is plotted at half of 1/n's order (the smallest positive
    value seen), and the hover text says 0."""
    fig = go.Figure()
    positive = [h["invalidity"][h["invalidity"] > 0].min() for h in runs.values() if (h["invalidity"] > 0).any()]
    floor = min(positive) / 2 if positive else 1e-5
    for i, (name, h) in enumerate(runs.items()):
        colour = PALETTE[i % len(PALETTE)]
        y = h["invalidity"].to_numpy(dtype=float)
        shown = np.maximum(y, floor) if log_y else y
        if "invalidity_se" in h:
            se = 1.96 * h["invalidity_se"].to_numpy(dtype=float)  # a 95% band
            lo = np.maximum(y - se, floor) if log_y else y - se
            fig.add_trace(go.Scatter(x=np.r_[h["epoch"], h["epoch"][::-1]], y=np.r_[shown + se, lo[::-1]],
                                     fill="toself", fillcolor=_rgba(colour, 0.18), mode="lines", line=dict(width=0),
                                     hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=h["epoch"], y=shown, mode="lines+markers", name=name, line=dict(color=colour),
                                 customdata=y, hovertemplate="epoch %{x:.2f}<br>invalidity %{customdata:.2e}"))
    for j, (name, value) in enumerate((baselines or {}).items()):
        fig.add_hline(y=max(value, floor) if log_y else value, line=dict(dash="dash", color=PALETTE[-1 - j % 3]),
                      annotation_text=f"{name}: {value:.2e}", annotation_position="top right")
    fig.update_xaxes(title="epochs of redaction")
    fig.update_yaxes(title="invalidity (fraction of samples in Ω)", type="log" if log_y else "linear")
    return _legend(_layout(fig, title, height=360), len(runs))


def metric_figure(runs: Mapping[str, pd.DataFrame], metric: str, baselines: Mapping[str, float] | None = None,
                  title: str = "") -> go.Figure:
    """One metric (a column of each run's history) against epochs; deletion baselines as dashed levels."""
    fig = go.Figure()
    for i, (name, h) in enumerate(runs.items()):
        if metric in h and h[metric].notna().any():
            rows = h[h[metric].notna()]
            fig.add_trace(go.Scatter(x=rows["epoch"], y=rows[metric], mode="lines+markers", name=name,
                                     line=dict(color=PALETTE[i % len(PALETTE)])))
    for j, (name, value) in enumerate((baselines or {}).items()):
        fig.add_hline(y=value, line=dict(dash="dash", color=PALETTE[-1 - j % 3]), annotation_text=f"{name}: {value:.3g}")
    fig.update_xaxes(title="epochs of redaction")
    fig.update_yaxes(title=metric)
    return _legend(_layout(fig, title, height=320), len(runs))


def losses_figure(history: pd.DataFrame, title: str = "") -> go.Figure:
    """The discriminator's and generator's mean losses between checkpoints (eq. 3's game), against epochs."""
    fig = go.Figure()
    for i, (column, name) in enumerate((("loss_d", "D loss"), ("loss_g", "G loss"))):
        if column in history and history[column].notna().any():
            rows = history[history[column].notna()]
            fig.add_trace(go.Scatter(x=rows["epoch"], y=rows[column], mode="lines+markers", name=name,
                                     line=dict(color=PALETTE[i + 2])))
    fig.update_xaxes(title="epochs of redaction")
    fig.update_yaxes(title="loss")
    return _legend(_layout(fig, title, height=320), 2)


def film_figure(frames: np.ndarray, epochs: Sequence[float], scale: int = 2, title: str = "") -> go.Figure:
    """The redaction film: `frames` is film_size x checkpoints x C x H x W; column j is labelled with epochs[j]."""
    rows, cols = frames.shape[:2]
    grid = image_grid(frames.reshape(rows * cols, *frames.shape[2:]), ncol=cols, scale=scale)
    width = frames.shape[-1] * scale
    pad = 2 * scale
    # The grid travels as a PNG data URI (tens of kB) rather than a pixel array (about 1 MB of JSON), because the
    # app redraws this figure every second while a run is live.
    uri = "data:image/png;base64," + base64.b64encode(png_bytes(grid)).decode()
    fig = go.Figure(go.Image(source=uri, hoverinfo="skip"))
    centres = [pad + j * (width + pad) + width / 2 for j in range(cols)]
    fig.update_xaxes(tickvals=centres, ticktext=[f"{e:.2g}" for e in epochs], title="epoch", showgrid=False)
    fig.update_yaxes(visible=False)
    fig = _layout(fig, title, height=min(900, grid.shape[0] + 80))
    fig.update_layout(margin=dict(l=10, r=10, t=40 if title else 10, b=40))
    return fig


def redaction_score_figure(scores: pd.DataFrame, fit: LinearFit, column: str = "rs", title: str = "") -> go.Figure:
    """RS(x) (or RS_rel) against the pre-trained D0(x), one point per sample of X ∩ Omega, with the fitted line."""
    fig = go.Figure(go.Scattergl(
        x=scores["d0"], y=scores[column], mode="markers", name="samples", marker=dict(size=5, color=PALETTE[0],
                                                                                   opacity=0.6),
        customdata=scores["id"], hovertemplate="id %{customdata}<br>D0 %{x:.3f}<br>score %{y:.3f}"))
    xs = np.linspace(float(scores["d0"].min()), float(scores["d0"].max()), 50)
    fig.add_trace(go.Scatter(x=xs, y=fit.slope * xs + fit.intercept, mode="lines", name=f"linear fit (R² = {fit.r2:.2f})",
                             line=dict(color=PALETTE[3])))
    fig.update_xaxes(title="pre-trained D0(x)")
    fig.update_yaxes(title="redaction score " + ("RS_rel(x)" if column == "rs_rel" else "RS(x) = D0(x) − D'(x)"))
    fig.update_layout(showlegend=True)
    return _layout(fig, title, height=360)


def label_difficulty_figure(table: pd.DataFrame, title: str = "") -> go.Figure:
    """Mean redaction score per label, hardest to redact (smallest score) on the left (App. G-B)."""
    fig = go.Figure(go.Bar(x=[str(v) for v in table["label"]], y=table["mean_rs"], marker_color=PALETTE[0]))
    fig.update_xaxes(title="label (hardest to redact first)", type="category")
    fig.update_yaxes(title="mean redaction score")
    return _layout(fig, title, height=300)


def deletion_vs_redaction_figure(result: DeletionVersusRedaction, title: str = "") -> go.Figure:
    """Fig. 1: data density, the pre-trained and re-trained Gaussian fits, the redaction target, the samples."""
    fig = go.Figure()
    styles = {"p_data": dict(color=PALETTE[0]), "pre-trained A(X)": dict(color=PALETTE[2]),
              "re-trained A(X minus X')": dict(color=PALETTE[3]),
              "redaction target p_data restricted": dict(color=PALETTE[1], dash="dash")}
    for name, density in result.densities.items():
        mass = result.omega_mass[name]
        fig.add_trace(go.Scatter(x=result.grid, y=density, mode="lines", name=f"{name} (mass on Ω {mass:.3f})",
                                 line=styles.get(name, {})))
    for inside, label, colour in ((True, "deleted samples X' (in Ω)", PALETTE[0]),
                                  (False, "remaining samples", PALETTE[1])):
        pts = result.samples[result.in_omega == inside]
        fig.add_trace(go.Scatter(x=pts, y=np.full(len(pts), -0.02), mode="markers", name=label,
                                 marker=dict(color=colour, size=7, symbol="line-ns-open")))
    for edge in (-result.bound, result.bound):
        fig.add_vline(x=edge, line=dict(color="#888", dash="dot"))
    fig.update_xaxes(title="x")
    fig.update_yaxes(title="density")
    return _layout(fig, title, height=360)
