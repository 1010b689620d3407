"""What a model "looks like": the same fixed-seed preview for every family, shown by the Explore page, the home
page and the quickstart notebook.

- GAN: samples from fixed latents (seed), optionally all of one class for a conditional GAN.
- Flow: samples at a temperature (Glow-style z ~ N(0, T^2 I)).
- Image-to-image: held-out images, their degraded versions and the restorations, row by row.
- Classifier: held-out images captioned with the predicted label (or the attributes predicted true).
- 2-D / 1-D toys: a point cloud of samples, drawn next to the training data.

The result is data (`Preview`), so a page draws it with `st.image` and a notebook with `core.viz.figures`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from core.errors import LetheError
from core.models.bundles import Bundle, ClassifierBundle, FlowBundle, GANBundle, I2IBundle


@dataclass
class Preview:
    """Images (N x C x H x W in [0, 1]) or points (N x D) with one caption per item; `ncol` suggests a layout."""

    images: np.ndarray | None = None
    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    captions: list[str] = field(default_factory=list)
    ncol: int = 8
    note: str = ""

    @property
    def is_points(self) -> bool:
        return self.points is not None


def _is_image_model(bundle: Bundle) -> bool:
    return len(bundle.data_shape) == 3


def _class_name(bundle: Bundle, k: int) -> str:
    names = bundle.card.hparams.get("class_names") or getattr(bundle, "class_names", ())
    return str(names[k]) if k < len(names) else str(k)


def default_temperature(bundle: Bundle) -> float:
    """0.7 for image flows (Glow shows its samples at T = 0.7: T = 1 reaches into the flow's noisy tails),
    1.0 for everything else."""
    return 0.7 if isinstance(bundle, FlowBundle) and _is_image_model(bundle) else 1.0


@torch.no_grad()
def preview(
    bundle: Bundle,
    n: int = 32,
    seed: int = 0,
    temperature: float | None = None,
    label: int | None = None,
    data=None,
    n_points: int = 2000,
) -> Preview:
    """A fixed-seed look at `bundle` (see the module docstring); `data` is the held-out split for i2i/classifiers."""
    if isinstance(bundle, GANBundle):
        if label is not None and not bundle.conditional:
            raise LetheError(f"{bundle.card.name} is not conditional; it cannot sample one class.", "Leave the class empty.")
        count = n if _is_image_model(bundle) else n_points
        labels = None if label is None else torch.full((count,), int(label), dtype=torch.long)
        x, y = bundle.sample(count, seed=seed, labels=labels)
        y_np = None if y is None else y.numpy()
        captions = [] if y_np is None else [f"class {_class_name(bundle, int(k))}" for k in y_np]
        if not _is_image_model(bundle):
            return Preview(points=x.numpy(), labels=y_np, captions=captions)
        note = "each sample is captioned by the class it was asked for" if captions else ""
        return Preview(images=x.numpy(), labels=y_np, captions=captions, note=note)
    if isinstance(bundle, FlowBundle):
        count = n if _is_image_model(bundle) else n_points
        temperature = default_temperature(bundle) if temperature is None else temperature
        x = bundle.sample(count, seed=seed, temperature=temperature)
        if not _is_image_model(bundle):
            return Preview(points=x.numpy(), note=f"temperature {temperature:g}")
        return Preview(images=x.numpy(), note=f"temperature {temperature:g}")
    if data is None:
        raise LetheError(f"A preview of {bundle.card.name} needs held-out data.", "Pass data=core.data.load(name, 'test').")
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(data), generator=gen)[:n]
    x = data.x[rows].to(bundle.device)
    if isinstance(bundle, ClassifierBundle):
        pred = bundle.predict(x)
        if bundle.kind == "attributes":
            names = bundle.class_names
            captions = [", ".join(nm for nm, on in zip(names, p.tolist()) if on) or "none" for p in pred]
        else:
            captions = [_class_name(bundle, int(k)) for k in pred]
        return Preview(images=x.cpu().numpy(), labels=None if bundle.kind == "attributes" else pred.numpy(),
                       captions=captions, note="held-out images, captioned with the prediction")
    if isinstance(bundle, I2IBundle):
        return _i2i_preview(bundle, x, seed)
    raise LetheError(f"Lethe cannot preview a {type(bundle).__name__}.", "Load a GAN, flow, i2i or classifier bundle.")


def _i2i_preview(bundle: I2IBundle, x: torch.Tensor, seed: int) -> Preview:
    """One row per degradation: (original, degraded, restored) for up to 4 held-out images."""
    from core.models.degradations import degrade

    x = x[:4]
    tiles, captions = [], []
    for name in bundle.degradations:
        degraded, _ = degrade(x, name, generator=torch.Generator().manual_seed(seed))
        restored = bundle.restore(degraded).clamp(0, 1)
        for orig, deg, res in zip(x, degraded, restored):
            tiles += [orig.cpu(), deg.cpu(), res.cpu()]
            captions += ["original", name, "restored"]
    return Preview(images=torch.stack(tiles).numpy(), captions=captions, ncol=3 * len(x),
                   note="each triple: held-out image, its degradation, the model's restoration")
