"""The data-deletion baseline (paper Sec. II-C, IV-A "Comparison to data deletion", Table VI): retrain the GAN
from scratch, with the recipe its zoo entry was trained by, on the training set minus the redaction set.

Deletion approximates A(X minus X'), redaction targets p_data restricted to the complement of Omega; the paper's
point (Fig. 1, Tables III and VI) is that the first does not imply the second. The baseline uses the zoo recipe's
own epochs (the paper's baseline uses its full 200-epoch schedule), unless `epochs` asks for fewer, which is
recorded on the card.

Two variants of what is deleted (`DELETION_VARIANTS`):
- "exact": X ∩ Omega, the samples the redaction set names (Table VI);
- "correlated": X ∩ Omega and every training sample correlated with one of them (Table III: "we re-train the
  model after deleting correlated samples ... defined as those having a cosine similarity <= 0.25 with some
  sample in Omega"). Read literally, a similarity of at most 0.25 with *some* member would delete nearly all of
  X, so Lethe reads 0.25 as the cosine *distance* 1 - cos: a sample is deleted when its cosine similarity with
  some member is at least 0.75. The vectors are the images with each image's mean pixel subtracted, so the
  cosine is the images' Pearson correlation, which is what "correlated" names. On the bundled MNIST, label 0
  (400 members) adds 60 samples, mostly 6s, 1s and 8s (measured).
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from typing import Any, Callable

import torch
from torch.nn import functional as F

from core.errors import EmptySelection, LetheError
from core.methods.redaction.averaging import short_horizon_decay
from core.models.bundles import GANBundle
from core.models.registry import build
from core.progress import NO_PROGRESS, CancelToken, ProgressFn
from core.zoo import gans as zoo_gans
from core.zoo.lookup import entry_for

#: zoo recipe -> (its recipe object, the fit function that trains a fresh bundle on any tensor x)
RECIPES: dict[str, tuple[Callable[[], Any], Callable[..., float]]] = {
    "core.zoo.gans:train_mnist_dcgan": (zoo_gans.DCGANRecipe, zoo_gans.fit_dcgan),
    "core.zoo.gans:train_synthfaces_dcgan": (lambda: zoo_gans.SYNTHFACES_DCGAN, zoo_gans.fit_dcgan),
    "core.zoo.gans:train_toy_gan": (zoo_gans.ToyGANRecipe, zoo_gans.fit_toy_gan),
}


def zoo_recipe(gan: GANBundle) -> tuple[str, Any, Callable[..., float]]:
    """(zoo recipe path, recipe object, fit function) of the zoo entry `gan` belongs to (itself or an ancestor)."""
    entry = entry_for(gan.card)
    if entry.recipe not in RECIPES:
        raise LetheError(f"Lethe does not know how to retrain {entry.name!r} from scratch.",
                         "The deletion baseline supports the zoo GANs trained by core.zoo.gans recipes.")
    make, fit = RECIPES[entry.recipe]
    return entry.recipe, make(), fit


DELETION_VARIANTS = ("exact", "correlated")
CORRELATED_DISTANCE = 0.25  # Table III: cosine distance to some member of Omega (see the module docstring)
COSINE_SLACK = 1e-6  # float32 rounding: a perfectly correlated pair's cosine can read a few ulps under 1


def check_variant(variant: str, is_image: bool, max_distance: float = CORRELATED_DISTANCE) -> None:
    """Raise LetheError, before any retraining, for an unknown variant or a correlated deletion that cannot work:
    a distance outside [0, 1), or data that are not images (two centred coordinates correlate at +-1)."""
    if variant not in DELETION_VARIANTS:
        raise LetheError(f"unknown deletion variant {variant!r}.", f"Use one of {', '.join(DELETION_VARIANTS)}.")
    if variant != "correlated":
        return
    if not 0.0 <= max_distance < 1.0:
        raise LetheError(f"correlated deletion needs a cosine distance in [0, 1), got {max_distance}.",
                         "Use the paper's 0.25 (correlation >= 0.75) or a smaller distance.")
    if not is_image:
        raise LetheError("correlated deletion compares images pixel by pixel; these data are points, whose "
                         "correlations are all +-1.", "Use --deletion-variant exact for a toy GAN.")


def correlated_with(x: torch.Tensor, members: torch.Tensor, max_distance: float = CORRELATED_DISTANCE,
                    chunk: int = 2048) -> torch.Tensor:
    """Bool mask over the rows of x (images): True for the members and for every row whose Pearson correlation
    with some member is at least 1 - `max_distance` (the cosine of the mean-centred images)."""
    check_variant("correlated", x.dim() == 4, max_distance)
    flat = x.flatten(1).float()
    unit = F.normalize(flat - flat.mean(1, keepdim=True), dim=1)
    anchors = unit[members.bool()]
    mask = members.bool().clone()
    if len(anchors) == 0:
        return mask
    for i in range(0, len(unit), chunk):
        mask[i : i + chunk] |= (unit[i : i + chunk] @ anchors.T).max(1).values >= 1.0 - max_distance - COSINE_SLACK
    return mask


def deleted_rows(x: torch.Tensor, members: torch.Tensor, variant: str = "exact",
                 max_distance: float = CORRELATED_DISTANCE) -> torch.Tensor:
    """The training rows the deletion baseline removes: the members ("exact") or the members and the samples
    correlated with them ("correlated", Table III)."""
    check_variant(variant, x.dim() == 4, max_distance)
    return correlated_with(x, members, max_distance) if variant == "correlated" else members.bool()


def _short_average(recipe: Any, n: int) -> Any:
    """A recipe whose moving average of G (if any) forgets its random start within a shortened run.

    The zoo's averaged G (decay 0.995, started from the initial weights) needs about a thousand steps to leave the
    initialisation behind; a retrain of a few epochs would hand back an almost untrained G. The decay is lowered
    so that its horizon 1 / (1 - decay) is at most a tenth of the run's generator steps."""
    decay = getattr(recipe, "ema", 0.0)
    if not decay:
        return recipe
    steps = recipe.epochs * (n // recipe.batch_size) * getattr(recipe, "k_g", 1)
    return replace(recipe, ema=short_horizon_decay(decay, steps))


def retrain_without(
    gan: GANBundle,
    x_retain: torch.Tensor,
    seed: int = 0,
    epochs: int | None = None,
    progress: ProgressFn = NO_PROGRESS,
    cancel: CancelToken | None = None,
) -> tuple[GANBundle, float]:
    """A freshly initialised GAN of `gan`'s architecture trained by its zoo recipe on `x_retain` (X minus the
    deleted samples); returns (model, training seconds). `gan` itself is only read for its card."""
    recipe_path, recipe, fit = zoo_recipe(gan)
    if epochs is not None:
        if epochs < 1:
            raise LetheError("the deletion baseline needs at least 1 epoch.", "Pass epochs >= 1 or leave it unset.")
        recipe = replace(recipe, epochs=epochs)
        recipe = _short_average(recipe, len(x_retain))
    if len(x_retain) < getattr(recipe, "batch_size", 1):
        raise EmptySelection(f"only {len(x_retain)} samples remain after deletion.", "Delete fewer samples.")
    card = copy.deepcopy(gan.card)
    card.name, card.parent, card.metrics, card.floors = f"{gan.card.name}-deletion", gan.card.name, {}, {}
    torch.manual_seed(seed)
    model: GANBundle = build(card).to(gan.device)  # type: ignore[assignment]
    start = time.perf_counter()
    fit(model, x_retain, recipe, seed, progress, cancel or CancelToken())
    seconds = time.perf_counter() - start
    card.training = {"method": "deletion baseline (retrain from scratch)", "recipe": recipe_path,
                     "epochs": recipe.epochs, "size": len(x_retain), "seed": seed, "seconds": round(seconds, 3),
                     "generator_ema": getattr(recipe, "ema", None)}
    card.description = (f"{gan.card.name}'s architecture retrained from scratch by {recipe_path} on {len(x_retain)} "
                        f"training samples, {recipe.epochs} epochs (data-deletion baseline).")
    return model.eval(), seconds
