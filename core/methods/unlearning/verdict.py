"""The verdict of an I2I unlearning run (`core.runs.verdict`).

Headline: FID of the forget images' completions against the forget images (the paper's Table 1 "F" column)
before -> after: unlearning fills the forgotten hole with noise, so it should rise many-fold (the paper reads it as
"forget FID up x k"). Quality cost: FID, IS and PSNR of the retain images' completions, which should stay where
they were; with a proxy retain set of other classes, also on the kept classes the proxy never showed. Proof: FID of
every held-out set before and after, per degradation. All measured on held-out images with the
run's judge; FID on a few hundred images has no closed-form uncertainty, so none is shown.
"""

from __future__ import annotations

from core.methods.unlearning import BEFORE, METHOD_NAMES
from core.runs.store import RunRecord
from core.runs.verdict import Fields, Measure, Proof, Verdict, number, register_verdict
from core.runs.words import forget_words, model_words

UNSEEN = "classes the proxy never showed"


def headline_kind(metrics: dict) -> str | None:
    """The degradation the headline reads: centre crop (the paper's main one) when measured, else the first."""
    kinds = [key[len("fid_forget["):-1] for key in metrics if key.startswith("fid_forget[")]
    return "center" if "center" in kinds else (kinds[0] if kinds else None)


def fid_digits(*values: float | None) -> int:
    """Decimals that show a FID's change: one for the usual tens, three for the small FIDs of a small judge."""
    return 1 if max((abs(v) for v in values if v is not None), default=0.0) >= 10 else 3


def forget_measure(metrics: dict, kind: str) -> Measure:
    before, after = number(metrics, f"{BEFORE}fid_forget[{kind}]"), number(metrics, f"fid_forget[{kind}]")
    return Measure(f"forget FID [{kind}]", before, after, better="higher", digits=fid_digits(before, after),
                   note="FID of the completions of held-out forget images against the images themselves, on the "
                        "judge's features: higher = the forgotten content is no longer painted")


def unseen_measure(metrics: dict, kind: str) -> Measure | None:
    """FID of the completions of held-out kept classes a proxy retain set never showed; None for other runs."""
    before, after = number(metrics, f"{BEFORE}fid_unseen[{kind}]"), number(metrics, f"fid_unseen[{kind}]")
    if after is None:
        return None
    return Measure(f"retain FID [{kind}], {UNSEEN}", before, after, better="lower", digits=fid_digits(before, after))


def retain_measures(metrics: dict, kind: str) -> list[Measure]:
    """FID, IS and PSNR of the completions of held-out retain images (they should not move)."""
    before, after = number(metrics, f"{BEFORE}fid_retain[{kind}]"), number(metrics, f"fid_retain[{kind}]")
    out = [Measure(f"retain FID [{kind}]", before, after, better="lower", digits=fid_digits(before, after))]
    unseen = unseen_measure(metrics, kind)
    if unseen is not None:
        out.append(unseen)
    for key, name, better in (("is", "IS", "higher"), ("psnr", "PSNR (dB)", "higher")):
        if number(metrics, f"{key}_retain[{kind}]") is not None:
            out.append(Measure(f"retain {name}", number(metrics, f"{BEFORE}{key}_retain[{kind}]"),
                               number(metrics, f"{key}_retain[{kind}]"), better=better))
    return out


def fid_proof(metrics: dict) -> Proof | None:
    """FID of forget and retain completions, original vs unlearned, per degradation."""
    kinds = [key[len("fid_forget["):-1] for key in metrics if key.startswith("fid_forget[")]
    categories, before, after = [], [], []
    for kind in kinds:
        for name in ("forget", "retain", "unseen"):
            if f"fid_{name}[{kind}]" not in metrics:  # unseen: proxy runs only
                continue
            categories.append(f"{name} · {kind}")
            before.append(number(metrics, f"{BEFORE}fid_{name}[{kind}]"))
            after.append(number(metrics, f"fid_{name}[{kind}]"))
    if not categories:
        return None
    return Proof("bars", "FID of the completions, original vs unlearned model (forget should rise, retain stay)",
                 {"categories": categories, "series": {"original": before, "unlearned": after},
                  "axis": "FID (lower = closer)", "x_title": "held-out set · degradation",
                  "highlight": [c for c in categories if c.startswith("forget")]})


def change_words(forget: Measure, retain: Measure, unseen: Measure | None = None) -> str:
    """"forget FID x4.2 while retain FID +3%", with "(+9% on the classes the proxy never showed)" for a proxy."""
    parts = []
    if forget.before and forget.after is not None:
        parts.append(f"forget FID ×{forget.after / forget.before:.1f}")
    if retain.relative is not None:
        parts.append(f"retain FID {retain.relative:+.0%}"
                     + (f" ({unseen.relative:+.0%} on the {UNSEEN})" if unseen and unseen.relative is not None else ""))
    return " while ".join(parts)


@register_verdict("unlearn")
def unlearning_verdict(run: RunRecord) -> Verdict:
    params, metrics = run.config.get("params", {}) or {}, run.metrics
    method = METHOD_NAMES.get(params.get("method"), str(params.get("method", "")))
    request = (f"unlearn {forget_words(str(params.get('forget', '')))} from {model_words(run.config.get('model', ''))}"
               f" ({method}, retain set: {params.get('retain', 'train')})")
    kind = headline_kind(metrics)
    if kind is None:
        return Fields(request, notes=["This run recorded no FID of the completions."]).build(
            run, number(metrics, "seconds"))
    headline, quality = forget_measure(metrics, kind), retain_measures(metrics, kind)
    fields = Fields(request, headline, quality, proof=fid_proof(metrics),
                    extra=change_words(headline, quality[0], unseen_measure(metrics, kind)))
    if number(metrics, f"recognised_forget[{kind}]") is not None:
        fields.notes.append(
            f"The identity judge recognises {number(metrics, f'{BEFORE}recognised_forget[{kind}]') or 0:.0%} -> "
            f"{number(metrics, f'recognised_forget[{kind}]'):.0%} of the forgotten people's completions"
            + (f" ({number(metrics, f'recognised_noise_forget[{kind}]'):.0%} from the unmasked context alone)."
               if number(metrics, f"recognised_noise_forget[{kind}]") is not None else "."))
    judge = params.get("judge")
    fields.notes.append(f"Measured on held-out images ({params.get('heldout') or 'the dataset test split'}) with "
                        f"{'the judge ' + judge if judge else 'the zoo judge of the data'}; time is the unlearning "
                        "itself, without the before/after measurements.")
    return fields.build(run, number(metrics, "seconds"))
