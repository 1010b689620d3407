"""Architecture registry: a card's `architecture` name -> a builder that makes the bundle with fresh weights.

Architecture modules register their builders with `@register("name")`. Loading a saved model looks the name up
here, builds the modules from the card's hyperparameters, then fills in the weights; no code ever comes from a
weights file. A card whose architecture is `factory:pkg.module:fn` is rebuilt by calling that user factory.
"""

from __future__ import annotations

import importlib
from typing import Callable

from core.errors import ModelSpecError
from core.models.bundles import Bundle
from core.models.card import ModelCard

Builder = Callable[[ModelCard], Bundle]

ARCHITECTURES: dict[str, Builder] = {}

# Modules that define architectures; imported on first lookup so `import core` stays light.
_ARCHITECTURE_MODULES = (
    "core.models.gans",
    "core.models.flows",
    "core.models.i2i",
    "core.models.classifiers",
)


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator: make `builder(card) -> Bundle` loadable under architecture `name`."""

    def wrap(builder: Builder) -> Builder:
        ARCHITECTURES[name] = builder
        return builder

    return wrap


def _import_architectures() -> None:
    for module in _ARCHITECTURE_MODULES:
        importlib.import_module(module)


def import_factory(path: str) -> Callable[..., Bundle]:
    """Import `pkg.module:fn`; raise a clear error if the module or function is missing."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ModelSpecError(f"{path!r} is not of the form package.module:factory.", "Example: examples.my_gan:build")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelSpecError(
            f"Cannot import {module_name!r} ({exc}).", "Make sure the module is on PYTHONPATH (or in the working folder)."
        ) from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelSpecError(f"{module_name!r} has no callable {attr!r}.", "Name a function that returns a Lethe bundle.")
    return factory


def build(card: ModelCard) -> Bundle:
    """A bundle with the card's architecture and freshly initialised weights; the card is attached."""
    if card.architecture.startswith("factory:"):
        bundle = import_factory(card.architecture.removeprefix("factory:"))(**card.hparams)
        bundle.card = card
        return bundle
    if card.architecture not in ARCHITECTURES:
        _import_architectures()
    try:
        builder = ARCHITECTURES[card.architecture]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ModelSpecError(
            f"Unknown architecture {card.architecture!r} in the card of {card.name!r}.", f"Known: {known}."
        ) from None
    return builder(card)
