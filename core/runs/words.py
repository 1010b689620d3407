"""Runs described in words for people: what was forgotten (from a `--forget` spec) and of which model."""

from __future__ import annotations

from pathlib import Path

from core.zoo.registry import ZOO


def _part_words(part: str) -> str:
    if part.strip().startswith("samples:"):  # taming's D_F from the flow's own samples
        return f"samples read as '{part.strip()[len('samples:'):].strip()}'"
    key, _, value = part.strip().partition("=")
    value = value.strip()
    if key == "label":
        labels = [v for v in value.split(",") if v]
        return f"label{'s' if len(labels) > 1 else ''} {', '.join(labels)}"
    if key == "identity":
        return f"person {value}"
    if key == "attr":
        return f"attribute '{value}'"
    if key == "ids":
        count = 0
        for chunk in value.split(","):
            lo, _, hi = chunk.partition("-")
            count += (int(hi) - int(lo) + 1) if hi.strip().isdigit() and lo.strip().isdigit() else 1
        return f"{count} picked image{'s' if count != 1 else ''}"
    if key == "saved":
        return f"saved set '{value}'"
    if key == "boundary":
        return f"boundary artifacts ({value or 1} px)"
    if key == "ambiguity":
        return "ambiguous digits"
    return part.strip()


def forget_words(spec: str) -> str:
    """'label=0 + boundary=1' -> 'label 0 and boundary artifacts (1 px)'."""
    parts = [p for p in str(spec).split(" + ") if p.strip()]
    return " and ".join(_part_words(p) for p in parts) or "nothing"


def model_words(spec: str) -> str:
    """A model spec as a name: a zoo name as is, `<root>/<run id>/model` as 'the model of run <run id>', else the
    folder's name."""
    if spec in ZOO:
        return spec
    path = Path(spec)
    if path.name == "model" and path.parent.name:
        return f"the model of run {path.parent.name}"
    return path.name or spec


def run_words(config: dict, run_id: str = "") -> str:
    """A run named by what was forgotten and how: "label 0 · classifier-based · 1a2b3c",
    "person 17 · forget · no-remember · 4d5e6f", "zoo-train mnist-lenet · 7a8b9c"."""
    params = config.get("params", {}) or {}
    method = config.get("method", "")
    how: list[str] = []
    if method == "redact":
        how.append("deletion baseline" if params.get("baseline") == "deletion"
                   else f"{params.get('algorithm', '?')}-based")
    elif method == "tame":
        target = params.get("target_share")
        how.append(f"target share {target:.0%}" if isinstance(target, (int, float)) else
                   str(params.get("direction", "forget")))
        if params.get("ablation") not in (None, "none"):
            how.append(str(params["ablation"]))
    what = forget_words(params["forget"]) if params.get("forget") else f"{method} {model_words(config.get('model', ''))}"
    return " · ".join([what, *how, *([run_id[-6:]] if run_id else [])])


def model_title(card, spec: str) -> str:
    """A model's name for a page title; an edited model says so and names its run:
    "mnist-dcgan (redacted, run 20261201-174319-redact-617c83)"."""
    if not card.parent:
        return card.name
    training = card.training or {}
    method = str(training.get("method", ""))
    kind = ("tamed" if "taming" in training else "redacted" if method == "redaction"
            else "retrained without the set" if method.startswith("deletion") else "edited")
    path = Path(spec)
    run = f", run {path.parent.name}" if path.name == "model" and path.parent.name else ""
    return f"{model_words(card.parent)} ({kind}{run})"
