"""The verdict of a taming run (`core.runs.verdict`).

Headline: for a person, images or a label/attribute forgotten by likelihood, the forget images' likelihood quantile
q (eq. 14: the mean over D_F of 1 - Phi((NLL - mu_R) / sigma_R)) before -> after, with a 95% interval from the
spread of the per-image q; for a run that moves an attribute's share of samples (a target share), that share.
Quality cost: bits/dim on the remember set D_R and FID against D_R. Proof: the forget images' NLLs against the
threshold mu_R + delta sigma_R, base and tamed model (the run's `nlls` figure)."""

from __future__ import annotations

import json
import math

import numpy as np
from scipy import stats

from core.runs.store import RunRecord
from core.methods.taming import best_model_spec
from core.runs.verdict import Fields, Measure, Proof, Verdict, Z95, binomial_pm, number, register_verdict
from core.runs.words import forget_words, model_words

FID_SHARE_NOTE = ("FID is measured against D_R, the data without the forgotten images, so generating less of them "
                  "lowers it by itself; the run also reports FID against all the data")


def _nlls(run: RunRecord) -> dict | None:
    path = run.path / "figures" / "nlls.json"
    return json.loads(path.read_text()) if path.is_file() else None


def quantile_measure(metrics: dict, nlls: dict | None, direction: str) -> Measure:
    """q on D_F before/after (eq. 14), with 95% half-widths from the per-image quantiles when the NLLs were saved."""
    pm = {}
    if nlls:
        for model, when in (("base", "before"), ("tamed", "after")):
            values = np.asarray([v for v in nlls["nll"].get(model, {}).get("forget", []) if v is not None], float)
            values = values[np.isfinite(values)]
            st = nlls.get("stats", {}).get(model)
            if len(values) > 1 and st:
                q = stats.norm.sf(values, loc=st["mu"], scale=st["sigma"])
                pm[when] = Z95 * float(q.std(ddof=1)) / math.sqrt(len(q))
    return Measure("likelihood quantile of the forget images", number(metrics, "q_forget_before"),
                   number(metrics, "q_forget_after"), pm.get("before"), pm.get("after"),
                   better="lower" if direction == "forget" else "higher", percent=True,
                   note="eq. 14: how typical the images are among the remember images (50% = average)")


def share_measure(metrics: dict) -> Measure:
    n = number(metrics, "share_samples")
    before, after = number(metrics, "share_before"), number(metrics, "share_after")
    return Measure(f"share of '{metrics.get('share_attribute', 'attribute')}' in samples", before, after,
                   binomial_pm(before, n), binomial_pm(after, n), better="", percent=True,
                   note=share_note(metrics))


def share_note(metrics: dict) -> str:
    """The data's share as the judge reads it, and how many samples the judge could not call: a share read on
    samples the judge is unsure of is partly a coin-flip (see `ShareJudge`)."""
    parts = []
    if number(metrics, "share_data") is not None:
        parts.append(f"{number(metrics, 'share_data'):.1%} of the training data")
    if number(metrics, "share_unsure_before") is not None:
        parts.append(f"judge unsure of {number(metrics, 'share_unsure_before'):.0%} -> "
                     f"{number(metrics, 'share_unsure_after'):.0%} of samples")
    if number(metrics, "share_confident_before") is not None and number(metrics, "share_confident_after") is not None:
        parts.append(f"among the samples it is sure of {number(metrics, 'share_confident_before'):.1%} -> "
                     f"{number(metrics, 'share_confident_after'):.1%}")
    return "; ".join(parts)


def best_note(metrics: dict, best_spec: str | None) -> str | None:
    """Which model is the run's best by the share (`BestShare`): the final one, or a checkpoint kept beside it."""
    iteration = metrics.get("best_share_iteration")
    if iteration is None:
        return None
    if metrics.get("best_is_final") or best_spec is None:
        return f"Best model: the final one (its share, judged at iteration {iteration}, was the run's best)."
    final = number(metrics, "share_after")
    best = number(metrics, "share_best")
    confident = number(metrics, "share_confident_best")
    return (f"Best model: iteration {iteration} of {metrics.get('iterations')}, kept beside the final one as "
            f"`{best_spec}`; on the evaluation samples its share is {best:.1%} (final {final:.1%})"
            + (f", {confident:.1%} among the samples the judge is sure of" if confident is not None else "")
            + (f"; FID {number(metrics, 'fid_best'):.2f} (final {number(metrics, 'fid_after'):.2f})"
               if number(metrics, "fid_best") is not None else "") + ".")


def quality_measures(metrics: dict) -> list[Measure]:
    out = []
    if number(metrics, "bpd_remember_before") is not None:
        out.append(Measure("bits/dim on D_R", number(metrics, "bpd_remember_before"),
                           number(metrics, "bpd_remember_after"), better="lower", digits=3))
    if number(metrics, "fid_before") is not None:
        out.append(Measure(str(metrics.get("fid_judge") or "FID"), number(metrics, "fid_before"),
                           number(metrics, "fid_after"), better="lower"))
    return out


@register_verdict("tame")
def taming_verdict(run: RunRecord) -> Verdict:
    params, metrics = run.config.get("params", {}), run.metrics
    direction = str(metrics.get("direction") or params.get("direction") or "forget")
    target = number(metrics, "target_share")
    verb = {"forget": "forget", "emphasize": "emphasise"}.get(direction, direction)
    what = forget_words(str(params.get("forget", "")))
    model = model_words(run.config.get("model", ""))
    request = (f"bring the share of {what} in samples of {model} to {target:.0%}" if target is not None
               else f"{verb} {what} in {model}")
    nlls = _nlls(run)
    headline = share_measure(metrics) if target is not None else quantile_measure(metrics, nlls, direction)
    iterations = metrics.get("iterations")
    stop = {"threshold": "reached the threshold", "target_share": "reached the target share",
            "max_iterations": "hit the iteration cap"}.get(str(metrics.get("stop_reason")), str(metrics.get("stop_reason")))
    fields = Fields(request, headline, quality_measures(metrics), extra=f"{stop} after {iterations} iterations")
    if target is None and number(metrics, "share_before") is not None:
        fields.notes.append(f"Share of {metrics.get('share_attribute')} in {int(number(metrics, 'share_samples') or 0):,} "
                            f"samples: {number(metrics, 'share_before'):.1%} -> {number(metrics, 'share_after'):.1%}"
                            + (f" ({share_note(metrics)})." if share_note(metrics) else "."))
    note = best_note(metrics, best_model_spec(run))
    if note:
        fields.notes.append(note)
    if number(metrics, "fid_all_before") is not None:
        fields.notes.append(f"{FID_SHARE_NOTE} ({number(metrics, 'fid_all_before'):.2f} -> "
                            f"{number(metrics, 'fid_all_after'):.2f}).")
    if nlls:
        fields.proof = Proof("nll", "the forget images' NLL against the threshold μ_R + δσ_R", nlls)
    return fields.build(run, number(metrics, "seconds_total") or number(metrics, "seconds"))
