"""The verdict of a GOLD run (`core.runs.verdict`), by action.

- reweight (eq. 5): the fitting capacity (accuracy on real test images of a classifier trained only on samples of
  G, the paper's Sec. 4 measure) of the plainly trained cGAN -> the GOLD re-weighted one, from the same seed;
  proof: both branches' fitting capacity per epoch.
- active (Sec. 3.2): fitting capacity with random queries -> with GOLD queries, at the same labelling budget;
  proof: fitting capacity per round of both strategies.
- rejection fitting capacity (the page's measurement, Tables 3-4): plain samples -> GOLD-accepted samples, with
  the acceptance rate.
- sample (eq. 6): the acceptance rate (no before: rejection sampling changes which samples are kept, not G).
- score (eq. 3): the mean GOLD of the scored samples and the balance of its two terms.

A fitting capacity is one accuracy on the test images; the run does not record their count, so no interval is
shown (the page's caption gives the training budget).
"""

from __future__ import annotations

import pandas as pd

from core.runs.store import RunRecord
from core.runs.verdict import Fields, Measure, Proof, Verdict, number, register_verdict
from core.runs.words import model_words

FC_NOTE = ("fitting capacity: accuracy on the real test images of a classifier trained only on labelled samples "
           "of G (GOLD paper, Sec. 4)")


def fitting_measure(metrics: dict, before_key: str, after_key: str, name: str) -> Measure:
    return Measure(name, number(metrics, before_key), number(metrics, after_key), better="higher", percent=True,
                   note=FC_NOTE)


def _history(run: RunRecord) -> pd.DataFrame | None:
    path = run.path / "figures" / "history.csv"
    return pd.read_csv(path) if path.is_file() else None


def curves_proof(run: RunRecord, by: str, x: str, names: dict[str, str], title: str) -> Proof | None:
    """Fitting capacity against `x` per value of column `by` (branch or strategy), from the run's history."""
    history = _history(run)
    if history is None or "fitting_capacity" not in history or by not in history:
        return None
    series = {}
    for value, label in names.items():
        rows = history[(history[by] == value) & history["fitting_capacity"].notna()]
        if len(rows):
            series[label] = {"x": rows[x].tolist(), "y": rows["fitting_capacity"].tolist()}
    if not series:
        return None
    return Proof("curves", title, {"series": series, "x_title": x.replace("_", " "), "axis": "fitting capacity",
                                   "percent": True})


def _reweight(run: RunRecord, model: str, metrics: dict) -> Fields:
    headline = fitting_measure(metrics, "fitting_capacity_baseline", "fitting_capacity_gold",
                               "fitting capacity, plain -> GOLD re-weighted")
    quality = [Measure("mean GOLD of samples", number(metrics, "gold_mean_baseline"),
                       number(metrics, "gold_mean_gold"), better="higher", note="eq. 3, on fresh samples")]
    fields = Fields(f"re-weight the training of {model}'s architecture with GOLD (eq. 5)", headline, quality,
                    proof=curves_proof(run, "branch", "epoch", {"both": "shared first half", "baseline": "plain",
                                                                 "gold": "GOLD re-weighted"},
                                       "fitting capacity per epoch, plain vs GOLD re-weighted"))
    slow = number(metrics, "epoch_seconds_gold"), number(metrics, "epoch_seconds_plain")
    if None not in slow and slow[1]:
        fields.notes.append(f"A re-weighted epoch took {slow[0] / slow[1]:.2f}x a plain one.")
    return fields


def _active(run: RunRecord, model: str, metrics: dict, params: dict) -> Fields:
    strategy = str(params.get("strategy", "gold"))
    headline = fitting_measure(metrics, "fitting_capacity_random", f"fitting_capacity_{strategy}",
                               f"fitting capacity, random -> {strategy} queries")
    labelled = number(metrics, f"labelled_{strategy}")
    fields = Fields(f"active learning of {model}'s architecture with {strategy.upper()} queries (Sec. 3.2)",
                    headline, extra=f"{int(labelled):,} images labelled" if labelled is not None else "",
                    proof=curves_proof(run, "strategy", "labelled", {strategy: f"{strategy} queries",
                                                                     "random": "random queries"},
                                       "fitting capacity per labelled-set size"))
    return fields


def _rejection(metrics: dict, model: str) -> Fields:
    headline = fitting_measure(metrics, "fitting_capacity_baseline", "fitting_capacity_gold",
                               "fitting capacity, plain -> GOLD-accepted samples")
    rate = number(metrics, "acceptance_rate")
    quality = [Measure("acceptance rate", None, rate, better="", percent=True)] if rate is not None else []
    before, after = headline.before, headline.after
    proof = None if before is None or after is None else Proof(
        "bars", "fitting capacity of plain and of GOLD-accepted samples",
        {"categories": ["plain samples", "GOLD rejection"], "series": {"fitting capacity": [before, after]},
         "axis": "accuracy on real test images", "highlight": ["GOLD rejection"]})
    return Fields(f"measure what GOLD rejection (p = {metrics.get('p')}) buys on {model}", headline, quality,
                  proof=proof)


def _sample(metrics: dict, model: str) -> Fields:
    rate = number(metrics, "acceptance_rate")
    headline = Measure("acceptance rate", None, rate, better="", percent=True,
                       note="accepted / proposed samples (eq. 6)")
    return Fields(f"draw {metrics.get('n')} samples of {model} with GOLD rejection (p = {metrics.get('p')})",
                  headline, extra=f"accepted {metrics.get('n')} of {metrics.get('proposed')} proposed "
                                  f"({rate:.1%})" if rate is not None else "")


def _score(metrics: dict, model: str, params: dict) -> Fields:
    headline = Measure("mean GOLD", None, number(metrics, "gold_mean"), better="", digits=3,
                       note="eq. 3: log D_G/(1 - D_G) + log D_C(c|x); high = under-represented by G")
    ratio = number(metrics, "balance_ratio")
    words = [f"mean GOLD {headline.text(headline.after)} (marginal {number(metrics, 'marginal_mean') or 0:.3f}, "
             f"conditional {number(metrics, 'conditional_mean') or 0:.3f})"]
    if ratio is not None:
        words.append(f"σ_G/σ_C = {ratio:.2f} (eq. 4)")
    return Fields(f"score {metrics.get('n')} {params.get('on', 'generated')} samples of {model} with GOLD",
                  headline, extra="; ".join(words))


@register_verdict("gold")
def gold_verdict(run: RunRecord) -> Verdict:
    params, metrics = run.config.get("params", {}) or {}, run.metrics
    model = model_words(run.config.get("model", ""))
    action = str(params.get("action", ""))
    if action == "reweight":
        fields = _reweight(run, model, metrics)
    elif action == "active":
        fields = _active(run, model, metrics, params)
    elif action == "sample":
        fields = _sample(metrics, model)
    elif action == "score":
        fields = _score(metrics, model, params)
    else:  # the page's "rejection fitting capacity"
        fields = _rejection(metrics, model)
    if params.get("data"):
        fields.notes.append(f"Real images: {params['data']}" + (f"; test images: {params['heldout']}."
                                                                 if params.get("heldout") else "."))
    seconds = number(metrics, "sampling_seconds") if action == "sample" else None
    return fields.build(run, seconds)
