"""The verdict card every method page and the Runs page draw for a finished run (`core.runs.verdict`)."""

from __future__ import annotations

import streamlit as st

from core.runs import RunRecord
from core.runs.verdict import Measure, Verdict, time_text, verdict_of
from core.viz.verdict import proof_figure


def _metric(col, m: Measure) -> None:
    """st.metric with the after value (and its ± interval), the change and the before value under it (a measure
    with no before, such as an acceptance rate or a rank agreement, shows its value alone)."""
    colour = "off" if m.improved is None else ("normal" if m.better == "higher" else "inverse")
    before = "" if m.before is None else f"before: {m.text(m.before, m.before_pm)}"
    col.metric(m.name, m.text(m.after, m.after_pm), m.change_text() or None, delta_color=colour,
               help="\n\n".join(filter(None, (m.note, before))) or None)
    if before:
        col.caption(before)


def verdict_card(run: RunRecord, key: str) -> Verdict | None:
    """Draw the run's verdict (request, headline before -> after, quality cost, time, reading, proof picture).

    Returns the verdict, or None (nothing drawn) for a run that has not succeeded or a method without one."""
    verdict = verdict_of(run)
    if verdict is None:
        return None
    with st.container(border=True, key=f"{key}_verdict_{run.id}"):
        st.markdown(f"##### Verdict: {verdict.request}")
        st.markdown(f"**{verdict.reading}**")
        quality = list(verdict.quality)[:3]
        cols = st.columns([3] + [2] * len(quality) + [2])
        if verdict.headline is not None:
            _metric(cols[0], verdict.headline)
        for col, m in zip(cols[1:], quality):
            _metric(col, m)
        cols[-1].metric("time", time_text(verdict.seconds), help="The method's own time (set-up and the before/after "
                        "measurements excluded where the method reports it so).")
        for note in verdict.notes:
            st.caption(note)
        if verdict.proof is not None:
            st.plotly_chart(proof_figure(verdict.proof, title=verdict.proof.title), key=f"{key}_proof_{run.id}",
                            width="stretch")
    return verdict
