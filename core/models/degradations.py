"""The degradations T of image-to-image unlearning (Li et al., ICLR 2024, Sec. 3 and App. D-E), as data.

An I2I model restores x from T(x): `decoder(encoder(T(x)))`. Keeping T outside the model lets a method compute
`E(T(x))` and `D(E(T(x)))` itself, for the four tasks the paper evaluates:

- `center` (inpainting / "centre crop"): the central square of half the image side is removed (25% of the
  pixels; the paper crops 8x8 of 16x16 patches, i.e. also a quarter of the area).
- `extend` (directional extension / uncropping): a band a quarter of the image wide is removed along one side
  (left, right, up or down, drawn per image; `extend-left` etc. fix the side). The model extends the image.
- `outpaint`: only the central square of half the side is kept (75% removed); the model paints the rest.
- `patches` (MAE-style random masking): the image is cut into `PATCH` x `PATCH` pixel patches and a random
  `PATCH_RATIO` of them (exactly round(ratio * count) per image) is removed.

Removed pixels are replaced by the constant `FILL = 0.5` (mid-grey): on MNIST's black background and white
strokes a grey hole cannot be mistaken for image content. Masks are boolean N x 1 x H x W, True where a pixel
was removed (the region the model must invent, on which `masked` PSNR is measured).
"""

from __future__ import annotations

import torch

from core.errors import LetheError, ShapeMismatch

KINDS: tuple[str, ...] = ("center", "extend", "outpaint", "patches")
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
FILL = 0.5
PATCH = 4
PATCH_RATIO = 0.25
EXTEND_FRACTION = 0.25


def _center_box(h: int, w: int) -> tuple[slice, slice]:
    """Rows and columns of the central square whose side is half the image (h//4 : h//4 + h//2)."""
    return slice(h // 4, h // 4 + h // 2), slice(w // 4, w // 4 + w // 2)


def _side_band(h: int, w: int, direction: str) -> tuple[slice, slice]:
    bh, bw = round(h * EXTEND_FRACTION), round(w * EXTEND_FRACTION)
    return {
        "left": (slice(0, h), slice(0, bw)),
        "right": (slice(0, h), slice(w - bw, w)),
        "up": (slice(0, bh), slice(0, w)),
        "down": (slice(h - bh, h), slice(0, w)),
    }[direction]


def degradation_names() -> tuple[str, ...]:
    """Every accepted `kind`: the four tasks plus the fixed-direction extensions."""
    return KINDS + tuple(f"extend-{d}" for d in DIRECTIONS)


def make_mask(
    kind: str, n: int, h: int, w: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Boolean N x 1 x H x W mask, True where degradation `kind` removes a pixel (built on the CPU)."""
    mask = torch.zeros(n, 1, h, w, dtype=torch.bool)
    if kind == "center":
        rows, cols = _center_box(h, w)
        mask[:, :, rows, cols] = True
    elif kind == "outpaint":
        rows, cols = _center_box(h, w)
        mask[:] = True
        mask[:, :, rows, cols] = False
    elif kind.startswith("extend-") and kind.removeprefix("extend-") in DIRECTIONS:
        rows, cols = _side_band(h, w, kind.removeprefix("extend-"))
        mask[:, :, rows, cols] = True
    elif kind == "extend":
        sides = torch.randint(0, len(DIRECTIONS), (n,), generator=generator)
        for i, side in enumerate(sides.tolist()):
            rows, cols = _side_band(h, w, DIRECTIONS[side])
            mask[i, :, rows, cols] = True
    elif kind == "patches":
        gh, gw = -(-h // PATCH), -(-w // PATCH)
        count = gh * gw
        k = round(PATCH_RATIO * count)
        chosen = torch.rand(n, count, generator=generator).argsort(dim=1)[:, :k]
        grid = torch.zeros(n, count, dtype=torch.bool)
        grid.scatter_(1, chosen, True)
        grid = grid.reshape(n, 1, gh, gw).repeat_interleave(PATCH, 2).repeat_interleave(PATCH, 3)
        mask = grid[:, :, :h, :w].contiguous()
    else:
        raise LetheError(
            f"Unknown degradation {kind!r}.", f"Use one of: {', '.join(degradation_names())}."
        )
    return mask


def degrade(
    x: torch.Tensor, kind: str, generator: torch.Generator | None = None, fill: float = FILL
) -> tuple[torch.Tensor, torch.Tensor]:
    """(T(x), mask): images N x C x H x W in [0, 1] with the removed pixels set to `fill`, and the boolean
    N x 1 x H x W mask of removed pixels (on x's device). Random kinds draw from `generator` (CPU)."""
    if x.dim() != 4:
        raise ShapeMismatch(
            f"Degradations act on image batches N x C x H x W, got shape {tuple(x.shape)}.",
            "Add a batch dimension (x[None]) or pass image data, not 2-D points.",
        )
    n, _, h, w = x.shape
    mask = make_mask(kind, n, h, w, generator).to(x.device)
    return torch.where(mask, torch.full_like(x, fill), x), mask


def degrade_mixed(
    x: torch.Tensor, kinds: tuple[str, ...] = KINDS, generator: torch.Generator | None = None, fill: float = FILL
) -> tuple[torch.Tensor, torch.Tensor]:
    """Like `degrade`, but each image gets a kind drawn uniformly from `kinds` (used to train one model on all
    four tasks)."""
    if x.dim() != 4:
        raise ShapeMismatch(f"Expected N x C x H x W images, got shape {tuple(x.shape)}.", "Pass an image batch.")
    n, _, h, w = x.shape
    which = torch.randint(0, len(kinds), (n,), generator=generator)
    masks = torch.stack([make_mask(k, n, h, w, generator) for k in kinds])
    mask = masks[which, torch.arange(n)].to(x.device)
    return torch.where(mask, torch.full_like(x, fill), x), mask
