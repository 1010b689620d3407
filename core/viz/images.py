"""Image grids and thumbnails as plain arrays, so the app, notebooks and the CLI show the same pictures.

Everything here takes images the way bundles return them (float N x C x H x W in [0, 1], torch or numpy) and
returns uint8 H x W x 3 arrays (or PNG bytes), which `st.image`, PIL and plotly's `go.Image` all accept.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image

from core.errors import ShapeMismatch


def as_numpy_images(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float N x C x H x W in [0, 1] as a numpy array (C is 1 or 3); raises on other shapes."""
    arr = images.detach().cpu().float().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, np.float32)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise ShapeMismatch(
            f"Expected images of shape N x C x H x W with C = 1 or 3, got {arr.shape}.",
            "2-D toy data is drawn with core.viz.figures.scatter_figure instead of an image grid.",
        )
    return np.clip(arr, 0.0, 1.0)


def to_uint8_rgb(image: np.ndarray | torch.Tensor, scale: int = 1) -> np.ndarray:
    """One C x H x W image in [0, 1] as H x W x 3 uint8, enlarged `scale` times by pixel repetition.

    Pixel repetition (not interpolation) keeps 28x28 digits crisp when a browser shows them at 3x."""
    arr = as_numpy_images(image)[0]
    if arr.shape[0] == 1:
        arr = np.repeat(arr, 3, axis=0)
    out = (arr.transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8)
    if scale > 1:
        out = out.repeat(scale, axis=0).repeat(scale, axis=1)
    return out


def thumbnails(images: torch.Tensor | np.ndarray, scale: int = 1) -> list[np.ndarray]:
    """Each image as its own H x W x 3 uint8 array (for galleries that put one image per tile)."""
    return [to_uint8_rgb(img, scale) for img in as_numpy_images(images)]


def image_grid(
    images: torch.Tensor | np.ndarray, ncol: int | None = None, pad: int = 2, pad_value: float = 1.0, scale: int = 1
) -> np.ndarray:
    """Tile N images into one H x W x 3 uint8 array, `ncol` per row (default: close to square)."""
    arr = as_numpy_images(images)
    n, c, h, w = arr.shape
    if n == 0:
        raise ShapeMismatch("There are no images to draw.", "Ask for at least one sample.")
    ncol = ncol or math.ceil(math.sqrt(n))
    nrow = math.ceil(n / ncol)
    grid = np.full((3, nrow * (h + pad) + pad, ncol * (w + pad) + pad), pad_value, np.float32)
    for i, img in enumerate(arr):
        r, col = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, top : top + h, left : left + w] = img if c == 3 else np.repeat(img, 3, axis=0)
    return to_uint8_rgb(grid, scale)


def png_bytes(rgb: np.ndarray) -> bytes:
    """An H x W x 3 uint8 array encoded as PNG (for downloads and saved figures)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()
