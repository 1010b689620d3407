"""What unlearning did, measured on held-out images (Li et al., ICLR 2024, Sec. 4.1, Fig. 4, App. E.2).

For each degradation and each held-out set (retain, forget, and with a proxy retain set of other classes of the
model's own data, `unseen`: the kept classes the proxy never showed, the paper's retain set of Sec. 4.3) the
completed images are compared with their ground truth x. A completion is T(x) with its removed pixels painted by D(E(T(x))) (`I2IBundle.inpaint`), as the paper's
models complete an image: MAGE keeps the visible tokens and Palette the known pixels, so only the hole can change.
Our conv encoder-decoder repaints the whole image; measuring D(E(T(x))) whole would count the blur an edited
encoder adds to the pixels the user supplied (on synthfaces at alpha 1.0: -4.6 dB outside the hole, -1.3 dB in it).
- `fid_{set}[{kind}]`: FID on the judge's feature layer (the dataset's Lethe classifier, named in `judge`,
  standing in for Inception), completions against ground truths; `is_{set}[{kind}]` the judge's IS of the
  completions; `cos_{set}[{kind}]` the mean cosine similarity of the judge's features of each completion and its
  ground truth (standing in for CLIP); `psnr_{set}[{kind}]` the mean PSNR (dB) of the completion (its error
  lies in the hole).
- For people (an identity judge): `recognised_{set}[{kind}]`, the share of completions the identity judge assigns
  to the right person, and `recognised_noise_{set}[{kind}]`, the same share on the degraded image with its hole
  filled by noise (what the unmasked context alone reveals; it does not depend on the model).
- Cross-validation (App. E.2, Table E.4): the centre of each first completion (centre crop) is kept and the
  *original* model paints the rest (outpaint); `cv_fid_{set}`, `cv_cos_{set}`, `cv_psnr_{set}` judge that second
  completion against the ground truth. If the unlearned model filled the centre with noise unrelated to the
  person, the second completion cannot find the person again.

Degradations are the model's own plus `center-small`, the paper's 4x4-of-16x16-patch setting (Table 2) scaled to
our sizes: a centre square of a quarter of the side. `center` is Table 1's 8x8 setting (half the side). Every
model sees the same masks (fixed seed per degradation), so before/after differences are the model's.
"""

from __future__ import annotations

import numpy as np
import torch

from core.data.base import ImageData
from core.metrics.quality import fid_from_features, inception_score, metric_name
from core.models.bundles import ClassifierBundle, I2IBundle
from core.models.degradations import FILL, degrade
from core.methods.unlearning.algorithm import draw_noise

EVAL_SEED = 1234
SMALL = "center-small"
SETS = ("retain", "forget", "unseen")
CV_KIND = "center"


def eval_kinds(bundle: I2IBundle) -> tuple[str, ...]:
    """The degradations measured for `bundle`: its own, with `center-small` after `center`."""
    kinds = list(bundle.degradations)
    if "center" in kinds:
        kinds.insert(kinds.index("center") + 1, SMALL)
    return tuple(kinds)


def degrade_for_eval(x: torch.Tensor, kind: str, seed: int = EVAL_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(T(x), mask) with the same masks for every model: a generator seeded per call; `center-small` removes the
    centre square of a quarter of the side."""
    if kind != SMALL:
        return degrade(x, kind, torch.Generator().manual_seed(seed))
    n, _, h, w = x.shape
    mask = torch.zeros(n, 1, h, w, dtype=torch.bool, device=x.device)
    mask[:, :, 3 * h // 8 : 3 * h // 8 + h // 4, 3 * w // 8 : 3 * w // 8 + w // 4] = True
    return torch.where(mask, torch.full_like(x, FILL), x), mask


@torch.no_grad()
def complete(bundle: I2IBundle, x: torch.Tensor, kind: str, seed: int = EVAL_SEED,
             batch_size: int = 500) -> torch.Tensor:
    """The completions `bundle.inpaint(T(x), mask)` on the CPU for images x in [0, 1], in batches, with the fixed
    masks of `degrade_for_eval`: the model paints the hole, the pixels it was shown stay."""
    bundle.eval()
    xd, mask = degrade_for_eval(x, kind, seed)
    return torch.cat([bundle.inpaint(xd[i : i + batch_size].to(bundle.device),
                                     mask[i : i + batch_size].to(bundle.device)).cpu()
                      for i in range(0, len(x), batch_size)])


@torch.no_grad()
def cross_validate(first: torch.Tensor, original: I2IBundle) -> torch.Tensor:
    """App. E.2: keep the centre of the first completion, let the original model paint everything else."""
    return complete(original, first, "outpaint")


def psnr(out: torch.Tensor, x: torch.Tensor) -> float:
    """Mean whole-image PSNR (dB) of images in [0, 1], each capped at 60 dB."""
    mse = ((out - x) ** 2).flatten(1).mean(1).clamp_min(1e-6)
    return float((10 * torch.log10(1 / mse)).mean())


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cosine similarity of paired feature rows."""
    return float(torch.nn.functional.cosine_similarity(a.flatten(1), b.flatten(1), dim=1).mean())


def quality(out: torch.Tensor, x: torch.Tensor, judge: ClassifierBundle) -> dict[str, float]:
    """FID, IS and feature cosine of completions `out` against ground truths `x` on `judge`, and their PSNR."""
    logits, feats = judge.logits_and_features(out)
    ref = judge.features(x)
    return {"fid": fid_from_features(feats, ref), "is": inception_score(logits, splits=1).mean,
            "cos": cosine(feats, ref), "psnr": psnr(out, x)}


def recognised(images: torch.Tensor, identities: torch.Tensor, judge: ClassifierBundle) -> float:
    """Share of images the identity judge assigns to their own identity."""
    return float((judge.logits(images).argmax(1) == identities).float().mean())


def noise_filled(data: ImageData, kind: str, mean: torch.Tensor, std: torch.Tensor,
                 seed: int = EVAL_SEED) -> torch.Tensor:
    """The degraded images with their hole filled by noise (eq. 10's noise, clipped to [0, 1])."""
    _, mask = degrade_for_eval(data.x, kind, seed)
    n = draw_noise(data.x, "normalised", mean, std, torch.Generator().manual_seed(seed)).clamp(0, 1)
    return torch.where(mask, n, data.x)


def evaluate(bundle: I2IBundle, eval_sets: dict[str, ImageData], judge: ClassifierBundle,
             identity: ClassifierBundle | None = None, original: I2IBundle | None = None,
             pixel_stats: tuple[torch.Tensor, torch.Tensor] | None = None,
             kinds: tuple[str, ...] | None = None) -> dict[str, float]:
    """Every measurement of the module docstring for `bundle` on `eval_sets` ({"retain": ..., "forget": ...}).
    `identity` adds the recognition rates (with `pixel_stats` for the noise-filled reference); `original` adds
    the cross-validation of App. E.2."""
    out: dict[str, float] = {}
    for kind in kinds or eval_kinds(bundle):
        for name, data in eval_sets.items():
            first = complete(bundle, data.x, kind)
            for key, value in quality(first, data.x, judge).items():
                out[f"{key}_{name}[{kind}]"] = value
            if identity is not None and data.identities is not None:
                out[f"recognised_{name}[{kind}]"] = recognised(first, data.identities, identity)
                if pixel_stats is not None:
                    filled = noise_filled(data, kind, *pixel_stats)
                    out[f"recognised_noise_{name}[{kind}]"] = recognised(filled, data.identities, identity)
            if original is not None and kind == CV_KIND:
                second = cross_validate(first, original)
                q = quality(second, data.x, judge)
                out.update({f"cv_fid_{name}": q["fid"], f"cv_cos_{name}": q["cos"], f"cv_psnr_{name}": q["psnr"]})
    return out


def judge_label(judge: ClassifierBundle) -> str:
    """How FID and IS are named here: FID[<judge>] as elsewhere in Lethe."""
    return metric_name("FID", judge).removeprefix("FID")


def embedding_points(bundle: I2IBundle, eval_sets: dict[str, ImageData], judge: ClassifierBundle,
                     kind: str = "center", n: int = 50) -> tuple[np.ndarray, list[str]]:
    """Judge features of up to `n` completions and their ground truths per set (Fig. 4), and a label per row
    ("retain: completed", "retain: ground truth", ...), ready for `core.viz.embedding.project`."""
    feats, labels = [], []
    for name, data in eval_sets.items():
        x = data.x[:n]
        for what, images in (("ground truth", x), ("completed", complete(bundle, x, kind))):
            feats.append(judge.features(images).numpy())
            labels += [f"{name}: {what}"] * len(x)
    return np.concatenate(feats), labels
