"""Model cards: the JSON file saved next to every set of weights.

A card says what a model is (family, architecture and its hyperparameters), what it was trained on, with which
seed and for how long, what quality was measured, and the floors that quality must meet. Loading rebuilds the
architecture from the card alone, so the weights file never has to carry code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import BadCheckpoint


MAX_CARD_BYTES = 4 * 1024 * 1024
MAX_LABEL = 200  # characters in a card's name, family or architecture (they appear in messages)


def _label(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= MAX_LABEL


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# What each field of a card read from disk must hold: a card is data from a file, so its types are checked before
# any builder reads it (a null or a string where a number belongs would otherwise end in a traceback).
_FIELD_TYPES = {
    "name": _label, "family": _label, "architecture": _label,
    "hparams": lambda v: isinstance(v, dict), "data": lambda v: isinstance(v, dict),
    "training": lambda v: isinstance(v, dict), "metrics": lambda v: isinstance(v, dict),
    "floors": lambda v: isinstance(v, dict),
    "data_shape": lambda v: isinstance(v, list) and len(v) <= 4 and all(_int(d) for d in v),
    "seed": _int, "description": lambda v: isinstance(v, str), "parent": lambda v: v is None or isinstance(v, str),
    "dtype": lambda v: isinstance(v, str), "lethe_version": lambda v: isinstance(v, str),
}
_FIELD_WANTS = {
    "name": f"a non-empty string of at most {MAX_LABEL} characters", "family": "a short non-empty string",
    "architecture": "a short non-empty string", "hparams": "a JSON object", "data": "a JSON object",
    "training": "a JSON object", "metrics": "a JSON object", "floors": "a JSON object",
    "data_shape": "a list of at most 4 whole numbers", "seed": "a whole number", "description": "a string",
    "parent": "a string or null", "dtype": "a string", "lethe_version": "a string",
}


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=repr) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class ModelCard:
    name: str
    family: str  # gan | flow | i2i | classifier
    architecture: str  # a key of core.models.registry.ARCHITECTURES, or "factory:pkg.mod:fn"
    hparams: dict[str, Any] = field(default_factory=dict)
    data_shape: list[int] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # dataset name, split, size, selection
    seed: int = 0
    training: dict[str, Any] = field(default_factory=dict)  # recipe, epochs, optimiser, seconds
    metrics: dict[str, float] = field(default_factory=dict)  # measured quality, e.g. {"IS[mnist-lenet]": 8.1}
    floors: dict[str, list] = field(default_factory=dict)  # metric -> [op, value], e.g. {"acc": [">=", 0.97]}
    description: str = ""
    parent: str | None = None  # the model spec this one was edited from, if any
    dtype: str = "float32"  # dtype of the stored weights; loading always returns float32
    lethe_version: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "card") -> "ModelCard":
        known = set(cls.__dataclass_fields__)
        missing = {"name", "family", "architecture"} - set(raw)
        if missing:
            raise BadCheckpoint(
                f"The model card of {where} lacks {sorted(missing)}.",
                "A card needs at least name, family and architecture; re-save the model with Lethe.",
            )
        for key, value in raw.items():
            if key in _FIELD_TYPES and not _FIELD_TYPES[key](value):
                raise BadCheckpoint(
                    f"The model card of {where} has a bad {key!r}: {_short(value)} is not {_FIELD_WANTS[key]}.",
                    "Fix card.json, or save the model again with Lethe.",
                )
        return cls(**{k: v for k, v in raw.items() if k in known})

    @classmethod
    def read(cls, path: Path, where: str | None = None) -> "ModelCard":
        """The card at `path`; `where` names its model in messages (default: the path). Cards over
        MAX_CARD_BYTES are refused unread."""
        where = where or str(path)
        try:
            if Path(path).stat().st_size > MAX_CARD_BYTES:
                raise BadCheckpoint(f"The model card of {where} is larger than {MAX_CARD_BYTES >> 20} MB.",
                                    "A card is a short JSON description; save the model again with Lethe.")
            raw = json.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise BadCheckpoint(f"No model card in {where}.", "Each saved model folder holds card.json.") from exc
        except (UnicodeDecodeError, RecursionError) as exc:
            raise BadCheckpoint(f"The model card of {where} is not valid JSON text.",
                                "Save the model again with Lethe.") from exc
        except json.JSONDecodeError as exc:
            raise BadCheckpoint(
                f"The model card of {where} is not valid JSON ({exc.msg} at line {exc.lineno}).",
                "Use an intact copy of card.json, or save the model again with Lethe.",
            ) from exc
        if not isinstance(raw, dict):
            raise BadCheckpoint(f"The model card of {where} is not a JSON object.", "Save the model again with Lethe.")
        return cls.from_dict(raw, where)

    def floor_failures(self, measured: dict[str, float] | None = None) -> list[str]:
        """The floors that `measured` (default: the card's own metrics) does not meet, as readable strings."""
        measured = self.metrics if measured is None else measured
        failures = []
        for metric, (op, bound) in self.floors.items():
            value = measured.get(metric)
            ok = value is not None and (value >= bound if op == ">=" else value <= bound)
            if not ok:
                failures.append(f"{metric} = {value} does not satisfy {op} {bound}")
        return failures
