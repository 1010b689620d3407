"""Bounds on what a saved model card may ask for, checked before any module is built.

A card's hyperparameters decide how large the modules are and how many of them there are, so a hostile card
(a width of 10^9, a flow with 10^7 couplings) could make Lethe allocate gigabytes or loop for hours before the
weights are even read. Every built-in architecture therefore declares here the family it belongs to, the
hyperparameters it reads with their types and ranges, and the data shapes it accepts; anything else is refused.
The ranges are generous (far above every zoo model) but finite; the exact memory check is
`core.models.checkpoint`'s comparison of the architecture's tensor shapes with the weights file's header.
Cards that name a trusted user factory are the factory's business and are not checked here, nor are
architectures registered from Python at run time (`core.models.registry.register`: code someone chose to run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.errors import BadCheckpoint
from core.models.card import ModelCard
from core.models.degradations import degradation_names
from core.models.registry import is_registered

# A sample's shape decides activation memory when the model runs (a flow's parameters do not depend on H and W, so
# the weights file cannot bound it): up to 1024 x 1024 RGB (CelebA-HQ), far above every zoo model.
MAX_DIM = 1024  # largest image side / point dimension a card may declare
MAX_VALUES = 3 * 1024 * 1024  # largest number of values in one sample (C x H x W)
MAX_CLASSES = 100_000
MAX_NAME = 200  # characters of one class name


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its type (`int`, `float`, `str`, `list`) and what it may hold."""

    kind: type
    low: float = -math.inf
    high: float = math.inf
    choices: tuple[str, ...] = ()  # allowed strings (kind str) or list items (kind list)
    max_items: int = 0  # kind list: at most this many items

    def problem(self, value: Any) -> str | None:
        """Why `value` is not allowed, or None if it is."""
        if self.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"must be a number, got {_short(value)}"
            if self.kind is int and (not math.isfinite(value) or value != int(value)):
                return f"must be a whole number, got {_short(value)}"
            if not (math.isfinite(value) and self.low <= value <= self.high):
                return f"must be between {_num(self.low)} and {_num(self.high)}, got {_short(value)}"
            return None
        if self.kind is str:
            if not isinstance(value, str):
                return f"must be a string, got {_short(value)}"
            return None if not self.choices or value in self.choices else \
                f"must be one of {', '.join(self.choices)}, got {_short(value)}"
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"must be a list of strings, got {_short(value)}"
        if len(value) > self.max_items:
            return f"may hold at most {self.max_items} items, got {len(value)}"
        if any(len(v) > MAX_NAME for v in value):
            return f"items may be at most {MAX_NAME} characters long"
        bad = [v for v in value if self.choices and v not in self.choices]
        return f"holds unknown items {', '.join(map(_short, bad[:3]))} (known: {', '.join(self.choices)})" if bad \
            else None


@dataclass(frozen=True)
class Schema:
    """What one architecture accepts: its family, its hyperparameters and the rank of its data shape."""

    family: str
    params: dict[str, Param]
    data_rank: tuple[int, ...] = (1, 3)  # allowed len(card.data_shape); 0 in the tuple allows an empty shape


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


_CHANNELS = Param(int, 1, 16)
_WIDTH = Param(int, 1, 2048)
_LATENT = Param(int, 1, 8192)
_HIDDEN = Param(int, 1, 16384)
_CLASSES = Param(int, 1, MAX_CLASSES)
_NAMES = Param(list, max_items=MAX_CLASSES)
_KIND = Param(str, choices=("labels", "attributes", "embedding"))

SCHEMAS: dict[str, Schema] = {
    "dcgan28": Schema("gan", {"latent_dim": _LATENT, "width": _WIDTH, "channels": _CHANNELS,
                              "d_norm": Param(str, choices=("batch", "spectral")), "fc_width": Param(int, 0, 16384)},
                      (0, 3)),
    "fcgan": Schema("gan", {"latent_dim": _LATENT, "g_hidden": _HIDDEN, "d_hidden": _HIDDEN,
                            "dim": Param(int, 1, MAX_DIM)}, (0, 1)),
    "acgan28": Schema("gan", {"latent_dim": _LATENT, "num_classes": Param(int, 1, 10_000),
                              "fc_width": Param(int, 1, 16384), "width": _WIDTH, "channels": _CHANNELS}, (0, 3)),
    "fc-acgan": Schema("gan", {"latent_dim": _LATENT, "num_classes": Param(int, 1, 10_000), "hidden": _HIDDEN,
                               "dim": Param(int, 1, MAX_DIM)}, (0, 1)),
    "glow": Schema("flow", {"levels": Param(int, 1, 8), "steps": Param(int, 1, 64), "hidden": _WIDTH,
                            "alpha": Param(float, 0.0, 0.49), "n_bits": Param(int, 0, 16),
                            "split_prior": Param(int, 0, 1)}, (3,)),
    "realnvp2d": Schema("flow", {"couplings": Param(int, 1, 256), "hidden": _HIDDEN}, (1,)),
    "conv-i2i": Schema("i2i", {"in_channels": _CHANNELS, "width": _WIDTH, "latent_channels": _WIDTH,
                               "degradations": Param(list, choices=degradation_names(), max_items=64)}, (0, 3)),
    "lenet5": Schema("classifier", {"in_channels": _CHANNELS, "num_classes": _CLASSES,
                                    "image_size": Param(int, 8, MAX_DIM), "class_names": _NAMES, "kind": _KIND},
                     (0, 3)),
    "small-cnn": Schema("classifier", {"in_channels": _CHANNELS, "num_outputs": _CLASSES,
                                       "image_size": Param(int, 8, MAX_DIM), "width": _WIDTH,
                                       "feature_dim": _HIDDEN, "kind": _KIND, "scale": Param(float, 1e-3, 1e3),
                                       "class_names": _NAMES}, (0, 3)),
}
SCHEMAS["dcgan32"] = SCHEMAS["dcgan28"]
REQUIRED = {"small-cnn": ("num_outputs",)}  # read without a default by the builder


def check_card(card: ModelCard, where: str) -> None:
    """Raise BadCheckpoint unless `card` names a built-in architecture of its family with bounded
    hyperparameters and a sane data shape. Cards naming a factory are not checked (see `core.models.trust`)."""
    if card.architecture.startswith("factory:"):
        return
    fix = "Fix card.json, or save the model again with Lethe."
    schema = SCHEMAS.get(card.architecture)
    if schema is None and is_registered(card.architecture):
        return  # registered from Python at run time (code someone ran): bounded by the allocation budget only
    if schema is None:
        raise BadCheckpoint(f"The model card of {where} names an unknown architecture {_short(card.architecture)}.",
                            f"Known architectures: {', '.join(sorted(SCHEMAS))}.")
    if card.family != schema.family:
        raise BadCheckpoint(f"The model card of {where} says family {_short(card.family)}, but architecture "
                            f"{card.architecture!r} is a {schema.family}.", fix)
    unknown = sorted(set(card.hparams) - set(schema.params))
    if unknown:
        raise BadCheckpoint(f"The model card of {where} has hyperparameters {card.architecture!r} does not take: "
                            f"{', '.join(map(_short, unknown[:5]))}{' ...' if len(unknown) > 5 else ''}.",
                            f"{card.architecture} takes {', '.join(schema.params)}. {fix}")
    missing = [k for k in REQUIRED.get(card.architecture, ()) if k not in card.hparams]
    if missing:
        raise BadCheckpoint(f"The model card of {where} lacks the hyperparameter(s) {', '.join(missing)}.", fix)
    for key, value in card.hparams.items():
        problem = schema.params[key].problem(value)
        if problem:
            raise BadCheckpoint(f"Hyperparameter {key!r} in the model card of {where} {problem}.", fix)
    _check_data_shape(card, schema, where, fix)


def _check_data_shape(card: ModelCard, schema: Schema, where: str, fix: str) -> None:
    shape = card.data_shape
    if len(shape) not in schema.data_rank and not (shape == [] and 0 in schema.data_rank):
        wanted = " or ".join("[]" if r == 0 else f"{r} numbers" for r in schema.data_rank)
        raise BadCheckpoint(f"The model card of {where} has data_shape {_short(shape)}; {card.architecture} needs "
                            f"{wanted}.", fix)
    if any(not 1 <= d <= MAX_DIM for d in shape) or math.prod(shape) > MAX_VALUES:
        raise BadCheckpoint(f"The model card of {where} has data_shape {_short(shape)}; each size must be between 1 "
                            f"and {MAX_DIM} and a sample at most {MAX_VALUES} values.", fix)
