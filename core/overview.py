"""What a loaded model is and what Lethe can do with it: the one answer `python -m core show SPEC` prints and
the app's sidebar draws.

`model_overview(bundle, spec)` returns plain data: the card's facts, which networks are present (G and D for a
GAN, the flow, encoder and decoder, the classifier's head), the data shape and pixel range, the training data
the card names and the zoo judges known for it, and for every verb whether it applies and, if not, why.
"""

from __future__ import annotations

from typing import Any

from core.models.bundles import Bundle, ClassifierBundle, FlowBundle, GANBundle, I2IBundle


def _networks(bundle: Bundle) -> dict[str, Any]:
    if isinstance(bundle, GANBundle):
        return {"generator": True, "discriminator": bundle.discriminator is not None, "latent_dim": bundle.latent_dim,
                "latent_shape": list(bundle.latent_shape) if bundle.latent_shape else [bundle.latent_dim],
                "classes": bundle.num_classes}
    if isinstance(bundle, FlowBundle):
        return {"flow": True, "n_bits": bundle.n_bits}
    if isinstance(bundle, I2IBundle):
        return {"encoder": True, "decoder": True, "degradations": list(bundle.degradations)}
    if isinstance(bundle, ClassifierBundle):
        return {"kind": bundle.kind, "classes": len(bundle.class_names), "class_names": list(bundle.class_names)[:20],
                "feature_layer": callable(getattr(bundle.net, "features", None))}
    return {}


def _pixel_range(bundle: Bundle) -> list[float] | None:
    """The range the model's own networks read and write; flows, I2I models and classifiers work on [0, 1]."""
    if isinstance(bundle, GANBundle):
        return list(bundle.pixel_range) if bundle.pixel_range is not None else None
    if isinstance(bundle, FlowBundle) and bundle.n_bits == 0:
        return None
    return [0.0, 1.0] if len(bundle.data_shape) == 3 else None


def _builtin_verbs(bundle: Bundle, spec: str) -> list[dict[str, Any]]:
    from core.errors import LetheError
    from core.zoo.lookup import entry_for

    verbs = []
    sample_why = [] if isinstance(bundle, (GANBundle, FlowBundle)) else [
        f"it is a {bundle.family} model, which does not generate samples"]
    verbs.append({"verb": "sample", "applies": not sample_why, "why_not": sample_why})
    try:
        entry = entry_for(bundle.card, spec)
        eval_why: list[str] = []
        note = f"measured like {entry.name}"
    except LetheError:
        eval_why, note = ["no zoo evaluator fits its family and data: pass --like ZOO_NAME"], ""
    verbs.append({"verb": "eval", "applies": not eval_why, "why_not": eval_why, "note": note})
    if isinstance(bundle, ClassifierBundle):
        why = [] if callable(getattr(bundle.net, "features", None)) else ["its network has no features(x) layer"]
        verbs.append({"verb": "--judge", "applies": not why, "why_not": why,
                      "note": f"judges {bundle.kind} (invalidity, IS/FID features)"})
    return verbs


def model_overview(bundle: Bundle, spec: str) -> dict[str, Any]:
    """Card, networks present, data shape, pixel range, training data and its zoo judges, and each verb with
    `applies` and `why_not` (the pieces the model lacks, worded with command-line flags)."""
    from core.cli.methods import discover
    from core.zoo.lookup import card_dataset, zoo_classifier

    card = bundle.card
    dataset = card_dataset(card)
    judges = {kind: zoo_classifier(dataset, kind) for kind in ("labels", "attributes", "embedding")} if dataset else {}
    verbs = _builtin_verbs(bundle, spec)
    for verb in discover():
        why = verb.missing(bundle)
        verbs.append({"verb": verb.name, "applies": not why, "why_not": why,
                      "note": "takes --data and --judge" if verb.takes_data and not why else ""})
    return {
        "spec": spec, "name": card.name, "family": card.family, "architecture": card.architecture,
        "description": card.description, "data_shape": list(bundle.data_shape), "pixel_range": _pixel_range(bundle),
        "dataset": dataset, "judges": {k: v for k, v in judges.items() if v}, "parent": card.parent,
        "metrics": dict(card.metrics), "networks": _networks(bundle), "verbs": verbs,
    }


def overview_lines(overview: dict[str, Any]) -> list[str]:
    """The overview as readable lines (the CLI prints them; the sidebar shows the same facts)."""
    shape = "x".join(map(str, overview["data_shape"])) or "?"
    rng = overview["pixel_range"]
    nets = ", ".join(f"{k} {'yes' if v is True else 'no' if v is False else v}" for k, v in overview["networks"].items()
                     if k != "class_names")
    judges = ", ".join(f"{k}: {v}" for k, v in overview["judges"].items()) or "none in the zoo (pass --judge)"
    lines = [f"{overview['name']} · {overview['family']} · {overview['architecture']}",
             f"  data shape {shape}, pixel range {rng if rng else 'raw values'}",
             f"  networks: {nets}",
             f"  trained on: {overview['dataset'] or 'not named on the card (pass --data)'}",
             f"  judges: {judges}"]
    if overview["description"]:
        lines.append(f"  {overview['description']}")
    lines.append("verbs:")
    for v in overview["verbs"]:
        state = "yes" if v["applies"] else "no "
        reason = "; ".join(v["why_not"]) if v["why_not"] else v.get("note", "")
        lines.append(f"  {state} {v['verb']:<8} {reason}".rstrip())
    return lines
