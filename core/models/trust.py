"""Which user factories a saved model may name: nothing is trusted unless the person running Lethe says so.

A card whose architecture is `factory:pkg.module:fn` asks Lethe to import `pkg.module` and call `fn`, i.e. to
run code that the card's author chose. A saved folder or an upload is data, so such a card is refused unless its
module was trusted deliberately, the convention of `trust_remote_code` in the Hugging Face libraries:

- `LETHE_TRUST_FACTORIES=pkg.module,other` in the environment of the command line or of the app's server;
- `--trust-factory pkg.module` on the command line (`trusting(...)` from Python).

Trusting a package (`examples`) trusts its sub-modules (`examples.my_gan`). A factory spec that a person types
(`python -m core sample pkg.module:fn`, `load_model("pkg.module:fn")`) needs no trust: they chose to run it.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterable, Iterator

from core.errors import ModelSpecError

ENV = "LETHE_TRUST_FACTORIES"

_granted: list[str] = []  # modules trusted for the duration of a `trusting(...)` block


class UntrustedFactory(ModelSpecError):
    """A saved card names a factory whose module nobody trusted; `module` is that module."""

    module: str = ""


def trusted_modules() -> tuple[str, ...]:
    """The modules trusted now: those in $LETHE_TRUST_FACTORIES plus those of enclosing `trusting` blocks."""
    from_env = (m.strip() for m in os.environ.get(ENV, "").split(","))
    return tuple(dict.fromkeys([m for m in from_env if m] + _granted))


@contextlib.contextmanager
def trusting(modules: Iterable[str]) -> Iterator[None]:
    """Trust the factories of `modules` (and their sub-modules) inside the block only."""
    added = [m.strip() for m in modules if m and m.strip()]
    _granted.extend(added)
    try:
        yield
    finally:
        for module in added:
            _granted.remove(module)


def is_trusted(module: str) -> bool:
    """True if `module` or one of its parent packages is trusted."""
    return any(module == t or module.startswith(t + ".") for t in trusted_modules())


def require_trusted(factory: str, where: str) -> None:
    """Raise UntrustedFactory unless the module of `factory` (`pkg.module:fn`) is trusted."""
    module = factory.partition(":")[0]
    if not is_trusted(module):
        error = UntrustedFactory(
            f"The model card of {where} names the factory {factory!r}; loading it would import and run "
            f"{module!r}, code chosen by whoever wrote the card, so Lethe refused.",
            f"If you trust {module!r}, say so deliberately: on the command line add --trust-factory {module}, or "
            f"start Lethe (command line or app server) with {ENV}={module} in the environment.",
        )
        error.module = module
        raise error
