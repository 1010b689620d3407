"""Jobs that carry a model across processes as (card, state dict), the way Lethe saves one.

A spawned worker receives its job by pickling, and PyTorch refuses to pickle a parametrized module (spectral norm,
as in `influence-dcgan`'s discriminator: "only supported through state_dict()"). The influence jobs therefore
send each bundle as its card and its tensors and rebuild it in the worker with `core.models.registry.build`, as
`load_bundle` does for a saved folder; tensors keep their dtype, so the rebuilt bundle equals the original.
"""

from __future__ import annotations

from typing import Any

from core.models.bundles import Bundle
from core.models.checkpoint import bundle_state
from core.models.registry import build

BUNDLE_FIELDS = ("bundle", "judge")  # the fields of an influence job that may hold a bundle


def _packed(bundle: Bundle) -> tuple:
    return ("lethe-bundle", bundle.card, {k: v.detach().cpu() for k, v in bundle_state(bundle).items()})


def _unpacked(packed: tuple) -> Bundle:
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
    """Mixin for a job dataclass: pickles its `BUNDLE_FIELDS` as (card, state) and rebuilds them on unpickling."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in BUNDLE_FIELDS:
            if isinstance(state.get(name), Bundle):
                state[name] = _packed(state[name])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in BUNDLE_FIELDS:
            if isinstance(state.get(name), tuple) and state[name][:1] == ("lethe-bundle",):
                state[name] = _unpacked(state[name])
        self.__dict__.update(state)
