"""Which zoo entry's evaluator measures a given model: the zoo model itself, the one it was edited from, or
the entry of the same family and dataset (used by `python -m core eval` and the app's on-demand metrics);
and which of an entry's floors a set of measured metrics misses."""

from __future__ import annotations

from pathlib import Path

from core.errors import LetheError
from core.models.card import ModelCard
from core.zoo.registry import ZOO, ZooEntry, zoo_folder


def floor_failures(entry: ZooEntry, metrics: dict[str, float]) -> list[str]:
    """The floors of zoo `entry` that `metrics` does not meet, as readable strings (empty when all are met)."""
    return ModelCard(entry.name, entry.family, "", metrics=metrics, floors=dict(entry.floors)).floor_failures()


def card_dataset(card: ModelCard) -> str | None:
    """The dataset name a card records (`data["dataset"]`, or `data["name"]`)."""
    return card.data.get("dataset") or card.data.get("name")


def _shipped_architecture(entry: ZooEntry) -> str | None:
    card_path = zoo_folder(entry.name) / "card.json"
    return ModelCard.read(card_path).architecture if card_path.is_file() else None


def entry_for(card: ModelCard, spec: str | None = None, like: str | None = None) -> ZooEntry:
    """The zoo entry whose evaluator fits the model with `card` (loaded from `spec`).

    Order: `like` (an explicit zoo name), the spec or card name when it is a zoo name of the same family, the
    nearest zoo ancestor through `card.parent` (saved parents are followed), then the unique entry with the same
    family and dataset. Ties are broken by the shipped architecture, then by the training recipe the card records;
    entries left tied that share one evaluator measure the model identically, so the first registered of them is
    taken (`toy-gan` and `influence-fcgan` are both FCGANs on gaussian2d, measured by `evaluate_toy_gan`).
    Raises LetheError when none fit, or several with different evaluators."""
    if like is not None:
        if like not in ZOO:
            raise LetheError(f"{like!r} is not a zoo model.", f"Zoo models: {', '.join(ZOO)}.")
        return ZOO[like]
    for name in (spec, card.name):
        if name in ZOO and ZOO[name].family == card.family:
            return ZOO[name]
    parent, seen = card.parent, set()
    while parent and parent not in seen:
        seen.add(parent)
        if parent in ZOO:
            return ZOO[parent]
        parent_card = Path(parent) / "card.json"
        parent = ModelCard.read(parent_card).parent if parent_card.is_file() else None
    dataset = card_dataset(card)
    matches = [e for e in ZOO.values() if e.family == card.family and e.dataset == dataset]
    if len(matches) > 1:
        same_arch = [e for e in matches if _shipped_architecture(e) == card.architecture]
        matches = same_arch or matches
        same_recipe = [e for e in matches if e.recipe == card.training.get("recipe")]
        matches = same_recipe or matches
        if len({e.evaluator for e in matches}) == 1:
            matches = matches[:1]
    if len(matches) == 1:
        return matches[0]
    found = ", ".join(e.name for e in matches) or "none"
    raise LetheError(
        f"Cannot tell which zoo evaluator fits model {card.name!r} (family {card.family}, dataset {dataset}; "
        f"candidates: {found}).",
        "Name the zoo model whose metrics apply, e.g. `python -m core eval MODEL --like mnist-dcgan`.",
    )


def zoo_classifier(dataset: str | None, kind: str = "labels") -> str | None:
    """The shipped zoo classifier of `kind` ("labels", "attributes" or "embedding") trained on `dataset`, or None:
    the judge whose verdicts (invalidity, IS, FID features, attributes) Lethe uses for that dataset."""
    for entry in ZOO.values():
        card_path = zoo_folder(entry.name) / "card.json"
        if entry.family == "classifier" and entry.dataset == dataset and card_path.is_file():
            if ModelCard.read(card_path).hparams.get("kind", "labels") == kind:
                return entry.name
    return None
