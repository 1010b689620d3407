"""The verdict of a redaction run (`core.runs.verdict`): invalidity before -> after is the headline (paper Sec. IV),
IS and FID are the quality cost, and the class shares before/after are the picture that proves a label is gone."""

from __future__ import annotations

import pandas as pd

from core.runs.store import RunRecord
from core.runs.verdict import Fields, Measure, Proof, Verdict, binomial_pm, number, register_verdict
from core.runs.words import forget_words, model_words

FID_NOTE = ("FID is measured against the training data *without* Ω (App. D), so a model that stops generating Ω "
            "moves closer to that reference: FID falling after a redaction is expected, not a free gain.")


def invalidity_measure(metrics: dict) -> Measure:
    """Invalidity before/after with a 95% half-width: the upper end of a Wilson interval when the run recorded
    one (`invalidity_after_upper`), else 1.96 binomial standard errors."""
    n = number(metrics, "eval_samples")
    values = {}
    for when in ("before", "after"):
        p = number(metrics, f"invalidity_{when}")
        upper = number(metrics, f"invalidity_{when}_upper")
        pm = (upper - p) if (upper is not None and p is not None) else binomial_pm(
            p, n, number(metrics, f"invalidity_{when}_se"))
        values[when] = (p, pm)
    return Measure("invalidity", values["before"][0], values["after"][0], values["before"][1], values["after"][1],
                   better="lower", percent=True, note="share of generated samples that fall in Ω")


def quality_measures(metrics: dict) -> list[Measure]:
    """IS (higher is better) and FID against X minus Ω (lower is better), as the run named them."""
    out = []
    if number(metrics, "is_before") is not None:
        out.append(Measure(str(metrics.get("is_metric") or "IS"), number(metrics, "is_before"),
                           number(metrics, "is_after"), better="higher"))
    if number(metrics, "fid_before") is not None:
        out.append(Measure(str(metrics.get("fid_metric") or "FID"), number(metrics, "fid_before"),
                           number(metrics, "fid_after"), better="lower", note=FID_NOTE))
    return out


def class_share_proof(run: RunRecord, forget: str) -> Proof | None:
    """Class shares before/after from the run's figures/class_shares.csv (None if the run saved none)."""
    path = run.path / "figures" / "class_shares.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path, dtype={"class": str})
    forgotten = []
    for part in forget.split("+"):
        key, _, value = part.strip().partition("=")
        if key == "label":
            forgotten += [v.strip() for v in value.split(",")]
    names = table["class"].tolist()
    forgotten = [names[int(v)] if v.isdigit() and int(v) < len(names) else v for v in forgotten]
    return Proof("shares", "class shares of generated samples, before and after",
                 {"classes": names, "before": table["before"].tolist(), "after": table["after"].tolist(),
                  "forgotten": forgotten})


@register_verdict("redact")
def redaction_verdict(run: RunRecord) -> Verdict:
    params, metrics = run.config.get("params", {}), run.metrics
    forget = str(params.get("forget", ""))
    deletion = params.get("baseline") == "deletion"
    model = model_words(run.config.get("model", ""))
    request = (f"retrain {model} without {forget_words(forget)} (deletion baseline)" if deletion
               else f"forget {forget_words(forget)} of {model}")
    fields = Fields(request, invalidity_measure(metrics), quality_measures(metrics),
                    proof=class_share_proof(run, forget))
    if any(q.note == FID_NOTE for q in fields.quality):
        fields.notes.append(FID_NOTE)
    if fields.headline.after is not None and fields.headline.after_pm is not None:
        fields.notes.append(f"Invalidity is measured on {int(number(metrics, 'eval_samples') or 0):,} samples "
                            "(± is a 95% interval).")
    return fields.build(run, number(metrics, "seconds"))
