"""Model families, architectures, checkpoint I/O and model specs."""

from core.models.bundles import ClassifierBundle, FlowBundle, GANBundle, I2IBundle, Bundle, from_unit, to_unit
from core.models.card import ModelCard
from core.models.checkpoint import load_bundle, save_bundle
from core.models.spec import load_model

__all__ = [
    "Bundle", "ClassifierBundle", "FlowBundle", "GANBundle", "I2IBundle", "ModelCard",
    "from_unit", "to_unit", "load_bundle", "save_bundle", "load_model",
]
