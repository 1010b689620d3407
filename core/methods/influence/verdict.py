"""The verdict of an influence run (`core.runs.verdict`).

An estimate ranks training instances; whether the ranking is right is only known once it is checked, so the
headline is the strongest check the run holds:
- cleansing (Sec. 5.2): the test metric before -> after removing the n_h most harmful instances by influence,
  with the random-removal baseline as the yardstick; proof: the test metric after each selector;
- verification (Sec. 5.1): Kendall's tau between estimated and true (counterfactual) influence, with the Jaccard
  index of the critical instances; proof: estimated against true influence;
- an estimate alone: the metric V it credits, with the most harmful instances and what the estimate cost
  (inference time over trace time, the paper's Table 2 ratio).
"""

from __future__ import annotations

import math

import pandas as pd

from core.methods.influence.metrics import HIGHER_IS_BETTER
from core.runs.store import RunRecord
from core.runs.verdict import Fields, Measure, Proof, Verdict, Z95, number, register_verdict
from core.runs.words import model_words

SELECTOR_WORDS = {"influence": "by influence", "dloss": "by D-loss influence", "isolation-forest": "isolation forest",
                  "random": "random", "none": "nothing removed"}


def _table(run: RunRecord, name: str) -> pd.DataFrame | None:
    path = run.path / "figures" / f"{name}.csv"
    return pd.read_csv(path) if path.is_file() else None


def tau_pm(n: int) -> float | None:
    """95% half-width of Kendall's tau for n pairs under no association (its null standard error): a tau outside
    ± this is unlikely to be chance."""
    return Z95 * math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1))) if n > 1 else None


def cleansing_fields(run: RunRecord, metrics: dict, name: str, better: str) -> Fields | None:
    metric = metrics.get("metric", "")
    before = number(metrics, f"test_{metric}_before")
    after = number(metrics, f"test_{metric}_after[influence]")
    if before is None or after is None:
        return None
    n_h = int(number(metrics, "cleanse_n_h") or 0)
    headline = Measure(f"test {name}, removing {n_h} by influence", before, after, better=better, digits=4)
    quality = [Measure(f"test {name}, removing {n_h} at random", before, random, better=better, digits=4)
               for random in [number(metrics, f"test_{metric}_after[random]")] if random is not None]
    table = _table(run, "cleansing")
    proof = None if table is None else Proof(
        "bars", f"test {name} after removing {n_h} instances, per selector",
        {"categories": ["before removal", *(SELECTOR_WORDS.get(s, s) for s in table["selector"])],
         "series": {f"test {name}": [before, *table["after"].tolist()]},
         "axis": f"test {name}", "highlight": [SELECTOR_WORDS["influence"]]})
    return Fields("", headline, quality, proof=proof)


def verification_fields(run: RunRecord, metrics: dict) -> Fields | None:
    tau = number(metrics, "kendall_tau")
    if tau is None:
        return None
    n = int(number(metrics, "verified_targets") or 0)
    headline = Measure("Kendall τ, estimated vs true influence", None, tau, after_pm=tau_pm(n), better="higher",
                       digits=3, note="rank agreement with counterfactual retraining without each target; ± is the "
                                      "95% range of tau when there is no agreement")
    quality = [Measure("Jaccard of the critical instances", None, number(metrics, "jaccard"), better="higher",
                       digits=3)]
    table = _table(run, "verification")
    proof = None if table is None else Proof(
        "scatter", "estimated against true influence of each verified instance",
        {"x": table["true"].tolist(), "y": table["estimated"].tolist(), "x_title": "true influence (retrained)",
         "y_title": "estimated influence", "name": "verified instances"})
    return Fields("", headline, quality, proof=proof,
                  extra=f"τ = {tau:.2f} over {n} instances" + (" (beyond chance)" if tau_pm(n) and tau > tau_pm(n)
                                                               else " (within chance)"))


@register_verdict("influence")
def influence_verdict(run: RunRecord) -> Verdict:
    params, metrics = run.config.get("params", {}) or {}, run.metrics
    model = model_words(run.config.get("model", ""))
    name = str(metrics.get("metric_name") or metrics.get("metric", "V"))
    better = "higher" if HIGHER_IS_BETTER.get(str(metrics.get("metric")), True) else "lower"
    checked = [f for f in (cleansing_fields(run, metrics, name, better), verification_fields(run, metrics)) if f]
    follow_up = params.get("of_run")
    request = (f"check influence estimate {follow_up} of {model} on {name}" if follow_up
               else f"rank the training instances of {model} by influence on {name}")
    if checked:
        fields = checked[0]
        fields.request = request
        for other in checked[1:]:  # both checks ran: the second one's numbers join the quality columns
            fields.quality += [m for m in (other.headline, *other.quality) if m is not None]
            fields.extra = "; ".join(filter(None, [fields.extra, other.extra]))
    else:
        headline = Measure(name, None, number(metrics, "metric_value"), better=better, digits=4,
                           note="V on Z' and D'_x after the traced epochs")
        fields = Fields(request, headline)
    harmful = metrics.get("most_harmful_ids")
    if harmful:
        fields.notes.append(f"Most harmful instances (ids): {', '.join(map(str, harmful[:10]))}.")
    ratio = number(metrics, "inference_over_trace")
    if ratio is not None:
        fields.notes.append(f"Estimating took {ratio:.2f}x the traced epochs ({int(number(metrics, 'steps') or 0):,} "
                            "steps).")
    if not follow_up and not checked:
        fields.extra = (f"{name} = {fields.headline.text(fields.headline.after)} after the traced epochs; not verified "
                        "yet: verify or cleanse it to know how far to trust the ranking")
    if params.get("data"):
        fields.notes.append(f"Training images: {params['data']}; held-out: {params.get('heldout')}.")
    seconds = sum(filter(None, (number(metrics, k) for k in ("trace_seconds", "inference_seconds", "verify_seconds",
                                                               "cleanse_seconds"))))
    return fields.build(run, seconds or None)
