"""Bundles that cross process boundaries as (card, state dict), the way Lethe saves one.

A job for `core.runs.executor.run_jobs` travels to a spawned worker (and its result back) by pickling, and PyTorch
refuses to pickle a parametrized module (spectral norm, as in the DCGANs' discriminators: "only supported through
state_dict()"). An object that holds bundles mixes in `PortableBundles`: its bundle fields are pickled as their card
and tensors and rebuilt on unpickling with `core.models.registry.build`, as `load_bundle` rebuilds a saved folder.
Tensors keep their dtype, so the rebuilt bundle computes what the original did; it lives on the CPU.
"""

from __future__ import annotations

from typing import Any, ClassVar

from core.models.bundles import Bundle
from core.models.checkpoint import bundle_state
from core.models.registry import build

_TAG = "lethe-bundle"


def pack(bundle: Bundle) -> tuple:
    """`bundle` as a picklable (tag, card, CPU state dict)."""
    return (_TAG, bundle.card, {k: v.detach().cpu() for k, v in bundle_state(bundle).items()})


def is_packed(value: Any) -> bool:
    return isinstance(value, tuple) and value[:1] == (_TAG,)


def unpack(packed: tuple) -> Bundle:
    """The bundle `pack` packed: built from its card, each module loaded with its tensors in their dtype."""
    _, card, state = packed
    bundle = build(card)
    for name, module in bundle.modules().items():
        prefix = f"{name}."
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        floats = [v.dtype for v in sub.values() if v.is_floating_point()]
        if floats:
            module.to(floats[0])
        module.load_state_dict(sub)
    return bundle


class PortableBundles:
    """Mixin for a job or result class: pickles its `BUNDLE_FIELDS` as (card, state), rebuilds them on unpickling."""

    BUNDLE_FIELDS: ClassVar[tuple[str, ...]] = ("bundle",)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in self.BUNDLE_FIELDS:
            if isinstance(state.get(name), Bundle):
                state[name] = pack(state[name])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in self.BUNDLE_FIELDS:
            if is_packed(state.get(name)):
                state[name] = unpack(state[name])
        self.__dict__.update(state)
