"""Probe on load: run a freshly loaded user model on a tiny batch and check it keeps its bundle's promises.

A factory (`pkg.module:fn`) can return a bundle whose card says one thing and whose modules do another; every
method would then fail deep inside a run, far from the cause. Two samples through the model right after loading
check what the bundle contracts promise (design guide, "Model families"): output shape equals `data_shape`, and a
generator's output lies in its `pixel_range` (so Lethe's [0, 1] images are images).
"""

from __future__ import annotations

import torch

from core.errors import ModelSpecError
from core.models.bundles import Bundle, ClassifierBundle, FlowBundle, GANBundle, I2IBundle

SLACK = 1e-3  # tolerance on the pixel range (tanh outputs touch their bounds in float32)


def probe(bundle: Bundle, name: str) -> None:
    """Raise ModelSpecError naming `name` unless the bundle's model runs on two inputs with the promised shapes
    and ranges. Runs under no_grad on the bundle's device."""
    shape = tuple(bundle.card.data_shape)
    if not shape:
        raise ModelSpecError(f"{name} returned a bundle whose card has no data_shape.",
                             "Set card.data_shape to one sample's shape, e.g. [1, 28, 28] or [2].")
    try:
        with torch.no_grad():
            out, unit = _run(bundle, shape)
    except ModelSpecError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's modules failed on a batch of the declared shape
        raise ModelSpecError(f"{name}: the model fails on a batch of shape {(2, *shape)}: "
                             f"{type(exc).__name__}: {str(exc)[:300]}",
                             "Make data_shape (and latent_dim) in the bundle match what the modules take.") from exc
    if out is None:
        return
    if tuple(out.shape[1:]) != shape:
        raise ModelSpecError(f"{name}: the model's output has shape {tuple(out.shape[1:])} per sample, but its "
                             f"card says data_shape {list(shape)}.",
                             "Make the card's data_shape the shape the model produces.")
    if unit and out.numel() and (out.min() < -SLACK or out.max() > 1 + SLACK or not torch.isfinite(out).all()):
        lo, hi = getattr(bundle, "pixel_range", None) or (0.0, 1.0)
        raise ModelSpecError(f"{name}: the model's outputs do not lie in its pixel_range [{lo}, {hi}] "
                             f"(mapped to [0, 1] they span {float(out.min()):.3g} to {float(out.max()):.3g}).",
                             "Set pixel_range to what the generator produces (e.g. (-1, 1) after tanh, (0, 1) "
                             "after sigmoid).")


def _run(bundle: Bundle, shape: tuple[int, ...]) -> tuple[torch.Tensor | None, bool]:
    """(sample-shaped output of two inputs or None, whether it must lie in [0, 1]) for each family."""
    device = bundle.device
    bundle.eval()
    if isinstance(bundle, GANBundle):
        z = bundle.sample_latent(2, torch.Generator().manual_seed(0))
        y = bundle.sample_labels(2, torch.Generator().manual_seed(0))
        return bundle.generate(z, y), bundle.pixel_range is not None
    if isinstance(bundle, FlowBundle):
        x = torch.full((2, *shape), 0.5, device=device)
        log_prob = bundle.log_prob(x)
        if tuple(log_prob.shape) != (2,):
            raise ModelSpecError(f"log_prob returned shape {tuple(log_prob.shape)} for 2 samples, not (2,).",
                                 "log_prob must return one log-density per sample.")
        z = torch.zeros((2, *bundle.flow.latent_shape), device=device)
        return bundle.inverse(z), False
    if isinstance(bundle, I2IBundle):
        return bundle.restore(torch.full((2, *shape), 0.5, device=device)), True
    if isinstance(bundle, ClassifierBundle):
        logits = bundle.logits(torch.full((2, *shape), 0.5, device=device))
        if bundle.class_names and tuple(logits.shape) != (2, len(bundle.class_names)):
            raise ModelSpecError(f"the classifier returns logits of shape {tuple(logits.shape)} for 2 inputs, but "
                                 f"names {len(bundle.class_names)} classes.", "Make class_names match the outputs.")
    return None, False  # a classifier's output is class logits, checked above
