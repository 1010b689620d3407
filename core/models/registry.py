"""Architecture registry: a card's `architecture` name -> a builder that makes the bundle with fresh weights.

Architecture modules register their builders with `@register("name")`. Loading a saved model looks the name up
here, builds the modules from the card's hyperparameters, then fills in the weights; no code ever comes from a
weights file. A card whose architecture is `factory:pkg.module:fn` is rebuilt by calling that user factory, but
only when its module is trusted (`core.models.trust`): a card is data, and must not choose which code runs.
"""

from __future__ import annotations

import importlib
from typing import Callable

from core.errors import ModelSpecError
from core.models.bundles import Bundle
from core.models.card import ModelCard
from core.models.trust import require_trusted

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


def is_registered(name: str) -> bool:
    """True if `name` is a registered architecture (built-in or registered from Python)."""
    if name not in ARCHITECTURES:
        _import_architectures()
    return name in ARCHITECTURES


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


def call_factory(path: str, hparams: dict | None = None) -> Bundle:
    """Import and call the user factory `pkg.module:fn` (with `hparams` as keyword arguments); whatever goes
    wrong inside it, or a result that is not a bundle, becomes a ModelSpecError naming the factory."""
    factory = import_factory(path)
    try:
        bundle = factory(**(hparams or {}))
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - user code: any failure is reported as the factory's
        raise ModelSpecError(f"The factory {path!r} failed: {type(exc).__name__}: {str(exc)[:300]}",
                             "Fix the factory (run it in Python to see the traceback); it must return a Lethe "
                             "bundle.") from exc
    if not isinstance(bundle, Bundle):
        raise ModelSpecError(f"The factory {path!r} returned {type(bundle).__name__}, not a Lethe bundle.",
                             "Return core.models.GANBundle(...) (or FlowBundle, I2IBundle, ClassifierBundle); see "
                             "examples/.")
    return bundle


def build(card: ModelCard, where: str | None = None) -> Bundle:
    """A bundle with the card's architecture and freshly initialised weights; the card is attached.

    A `factory:` card is built only if its module is trusted (UntrustedFactory otherwise); `where` names the
    card's source in that message."""
    if card.architecture.startswith("factory:"):
        path = card.architecture.removeprefix("factory:")
        require_trusted(path, where or repr(card.name))
        bundle = call_factory(path, card.hparams)
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
