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
                f"The model card {where} lacks {sorted(missing)}.",
                "A card needs at least name, family and architecture; re-save the model with Lethe.",
            )
        return cls(**{k: v for k, v in raw.items() if k in known})

    @classmethod
    def read(cls, path: Path) -> "ModelCard":
        try:
            raw = json.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise BadCheckpoint(f"No model card at {path}.", "Each saved model folder holds card.json.") from exc
        except json.JSONDecodeError as exc:
            raise BadCheckpoint(
                f"The model card {path} is not valid JSON ({exc.msg} at line {exc.lineno}).",
                "Restore the file from the run or zoo folder it came from.",
            ) from exc
        if not isinstance(raw, dict):
            raise BadCheckpoint(f"The model card {path} is not a JSON object.", "Re-save the model with Lethe.")
        return cls.from_dict(raw, str(path))

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
