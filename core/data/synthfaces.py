"""`synthfaces`: procedurally rendered cartoon faces with known attributes and identities (a stand-in for CelebA).

Why: "forget this person" and "forget / rebalance this attribute" need a face dataset with identities and binary
attributes, but Lethe must run offline and should not need real people's faces. These are drawn in code, fully
vectorised in torch (every shape is a soft signed-distance mask over a whole batch), deterministic from a seed.

What a sample looks like: a head (face width, chin shape and ears per identity) on a neck and shirt in front of a
shaded background; hair (colour; short, side-parted, fringe or long style per identity); eyes (spacing, size, iris
colour per identity; gaze per image) under eyebrows; a nose; a mouth whose curve and opening follow the expression.
Optional beard, glasses (round or square frames), hat (brimmed hat or beanie).

Attributes (column order of `ATTRIBUTES`), and at which level they are drawn:

- identity-level (the same in every image of an identity): `glasses` (~30%), `beard` (~25%, only on the half of
  identities with a "masculine" latent, so it is anti-correlated with `long_hair`), `dark_hair` (~45%, more likely
  on dark skin), `light_skin` (~45%), `long_hair` (~40%).
- image-level (varies within an identity): `smile` (~45%, each identity has its own smiling rate in [0.15, 0.75]),
  `mouth_open` (~27%, more likely when smiling), `hat` (~25%: 30% of identities wear one in 75% of their images,
  the others in 4%).

Within an identity, pose (shift, rotation, scale), lighting (brightness, colour tint, gradient), background,
shirt colour, gaze, eyebrow raise and expression vary; between identities, head shape, eye spacing and size, eye
colour, brows, nose, mouth width, lip colour, skin tone, hair colour and style, and glasses/hat/beard style differ.

Layout: identity `i` owns rows `i * per_identity ... (i + 1) * per_identity - 1` of the full dataset (the ids);
the first `per_identity - n_test` images of each identity are `train`, the rest `test`, so every identity is in
both splits. Pixels are quantised to multiples of 1/255 (so a flow's 8-bit dequantisation applies and the uint8
disk cache is exact).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from core.data.base import ImageData
from core.data.home import cache_dir
from core.errors import LetheError

ATTRIBUTES = ("glasses", "smile", "beard", "hat", "dark_hair", "light_skin", "long_hair", "mouth_open")
IDENTITY_LEVEL = ("glasses", "beard", "dark_hair", "light_skin", "long_hair")
IMAGE_LEVEL = ("smile", "mouth_open", "hat")
RENDER_VERSION = 2  # bump when the drawing changes, so disk caches of older renders are not reused
_CHUNK_PIXELS = 128 * 32 * 32  # pixels per rendering chunk: small enough to stay in cache
_ZOOM, _DROP = 1.25, 0.05  # face units -> canvas: the head fills ~60% of the width, leaving room for a hat

_SKIN_DARK = torch.tensor([[0.30, 0.18, 0.12], [0.52, 0.34, 0.22], [0.66, 0.46, 0.32]])
_SKIN_LIGHT = torch.tensor([[0.80, 0.60, 0.45], [0.93, 0.76, 0.63], [1.00, 0.88, 0.78]])
_HAIR_DARK = torch.tensor([[0.06, 0.05, 0.05], [0.20, 0.12, 0.07], [0.13, 0.10, 0.12], [0.30, 0.18, 0.10]])
_HAIR_LIGHT = torch.tensor([[0.95, 0.82, 0.45], [0.85, 0.42, 0.15], [0.80, 0.80, 0.78], [0.70, 0.52, 0.30],
                            [1.00, 0.92, 0.65]])
_IRIS = torch.tensor([[0.30, 0.18, 0.08], [0.15, 0.40, 0.80], [0.20, 0.55, 0.30], [0.45, 0.35, 0.25]])
_FRAMES = torch.tensor([[0.05, 0.05, 0.05], [0.45, 0.25, 0.10], [0.75, 0.10, 0.10], [0.10, 0.25, 0.70],
                        [0.80, 0.65, 0.20]])
_HATS = torch.tensor([[0.80, 0.15, 0.15], [0.15, 0.30, 0.75], [0.15, 0.55, 0.25], [0.95, 0.75, 0.15],
                      [0.55, 0.20, 0.60], [0.20, 0.20, 0.25], [0.95, 0.50, 0.10]])


@dataclass(frozen=True)
class FaceConfig:
    """Everything that determines the rendered dataset (the cache key)."""

    size: int = 32
    seed: int = 0
    n_identities: int = 500
    per_identity: int = 24
    n_test: int = 4

    def validate(self) -> None:
        if self.size < 16 or self.size > 256:
            raise LetheError(f"synthfaces size {self.size} is out of range.", "Use a size between 16 and 256 (32 or 64).")
        if self.n_identities < 1 or not 0 < self.n_test < self.per_identity:
            raise LetheError(
                f"synthfaces needs n_identities >= 1 and 0 < n_test < per_identity (got {self.n_identities}, "
                f"{self.n_test}, {self.per_identity}).", "Keep at least one train and one test image per identity.")


def _u(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _pick(gen: torch.Generator, palette: torch.Tensor, n: int, jitter: float) -> torch.Tensor:
    rows = palette[torch.randint(0, len(palette), (n,), generator=gen)]
    return (rows + jitter * torch.randn(n, 3, generator=gen)).clamp(0, 1)


def _ramp(palette: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Colours at positions t in [0, 1] along a piecewise-linear ramp through the palette's rows."""
    pos = t * (len(palette) - 1)
    lo = pos.long().clamp(max=len(palette) - 2)
    return torch.lerp(palette[lo], palette[lo + 1], (pos - lo)[:, None])


def _identity_params(cfg: FaceConfig, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Per-identity latents: shape, colours, styles and the identity-level attributes."""
    n = cfg.n_identities
    p: dict[str, torch.Tensor] = {}
    masculine = torch.rand(n, generator=gen) < 0.5
    p["light_skin"] = torch.rand(n, generator=gen) < 0.45
    tone = torch.rand(n, generator=gen)
    # Two well-separated bands of skin tone so the attribute is visible, interpolated inside each band.
    p["skin"] = torch.where(p["light_skin"][:, None], _ramp(_SKIN_LIGHT, tone), _ramp(_SKIN_DARK, tone))
    p["dark_hair"] = torch.rand(n, generator=gen) < torch.where(p["light_skin"], 0.3, 0.6)
    p["hair"] = torch.where(p["dark_hair"][:, None], _pick(gen, _HAIR_DARK, n, 0.03), _pick(gen, _HAIR_LIGHT, n, 0.04))
    p["long_hair"] = torch.rand(n, generator=gen) < torch.where(masculine, 0.15, 0.65)
    p["beard"] = masculine & (torch.rand(n, generator=gen) < 0.5)
    p["glasses"] = torch.rand(n, generator=gen) < 0.3
    p["full_beard"] = torch.rand(n, generator=gen) < 0.6
    p["head_a"] = _u(gen, n, 0.36, 0.50)  # half width
    p["head_b"] = _u(gen, n, 0.50, 0.60)  # half height
    p["jaw"] = _u(gen, n, 0.0, 0.35)  # chin narrowing
    p["ear"] = _u(gen, n, 0.06, 0.11)
    p["eye_dx"] = _u(gen, n, 0.13, 0.21)
    p["eye_y"] = _u(gen, n, -0.10, 0.02)
    p["eye_w"] = _u(gen, n, 0.065, 0.10)
    p["eye_h"] = _u(gen, n, 0.045, 0.07)
    p["iris"] = _pick(gen, _IRIS, n, 0.04)
    p["brow_t"] = _u(gen, n, 0.014, 0.04)
    p["brow_tilt"] = _u(gen, n, -0.35, 0.35)
    p["brow_gap"] = _u(gen, n, 0.09, 0.15)
    p["nose_w"] = _u(gen, n, 0.03, 0.065)
    p["nose_l"] = _u(gen, n, 0.05, 0.11)
    p["mouth_y"] = _u(gen, n, 0.24, 0.34)
    p["mouth_w"] = _u(gen, n, 0.09, 0.17)
    p["lip"] = (torch.tensor([0.70, 0.25, 0.28]) + 0.08 * torch.randn(n, 3, generator=gen)).clamp(0, 1)
    p["hairline"] = _u(gen, n, -0.40, -0.22)
    p["part"] = _u(gen, n, -0.25, 0.25)
    p["hair_style"] = torch.randint(0, 3, (n,), generator=gen)  # 0 flat, 1 side part, 2 wavy fringe
    p["hair_volume"] = _u(gen, n, 0.03, 0.10)
    p["frame"] = _pick(gen, _FRAMES, n, 0.03)
    p["frame_square"] = torch.rand(n, generator=gen) < 0.5
    p["frame_t"] = _u(gen, n, 0.018, 0.032)
    p["hat_wearer"] = torch.rand(n, generator=gen) < 0.3
    p["hat_colour"] = _pick(gen, _HATS, n, 0.05)
    p["beanie"] = torch.rand(n, generator=gen) < 0.5
    p["smile_rate"] = _u(gen, n, 0.15, 0.75)
    return p


def _image_params(cfg: FaceConfig, ident: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Per-image variation: pose, lighting, background, shirt, expression, hat."""
    who = torch.arange(cfg.n_identities).repeat_interleave(cfg.per_identity)
    n = len(who)
    q = {k: v[who] for k, v in ident.items()}
    q["identity"] = who
    q["smile"] = torch.rand(n, generator=gen) < q["smile_rate"]
    q["mouth_open"] = torch.rand(n, generator=gen) < torch.where(q["smile"], 0.45, 0.12)
    q["hat"] = torch.rand(n, generator=gen) < torch.where(q["hat_wearer"], 0.75, 0.04)
    q["tx"] = (0.06 * torch.randn(n, generator=gen)).clamp(-0.15, 0.15)
    q["ty"] = (0.05 * torch.randn(n, generator=gen)).clamp(-0.12, 0.12)
    q["rot"] = (0.10 * torch.randn(n, generator=gen)).clamp(-0.25, 0.25)
    q["scale"] = 1.0 + (0.05 * torch.randn(n, generator=gen)).clamp(-0.12, 0.12)
    q["bright"] = _u(gen, n, 0.82, 1.12)
    q["tint"] = 1.0 + 0.04 * torch.randn(n, 3, generator=gen)
    q["grad"] = 0.12 * torch.randn(n, 2, generator=gen)
    q["bg"] = 0.25 + 0.35 * torch.rand(n, 1, generator=gen) + 0.3 * torch.rand(n, 3, generator=gen)
    q["bg_grad"] = 0.08 * torch.randn(n, 3, generator=gen)
    q["shirt"] = torch.rand(n, 3, generator=gen) * 0.8 + 0.1
    q["gaze"] = (0.25 * torch.randn(n, 2, generator=gen)).clamp(-0.5, 0.5)
    q["brow_raise"] = 0.02 * torch.randn(n, generator=gen)
    q["smile_curve"] = torch.where(q["smile"], _u(gen, n, 0.08, 0.12), _u(gen, n, -0.015, 0.01))
    q["open"] = torch.where(q["mouth_open"], _u(gen, n, 0.035, 0.06), torch.zeros(n))
    q["noise_seed"] = torch.randint(0, 2**31 - 1, (n,), generator=gen)
    return q


# --- drawing primitives on batches: x, y are N x H x W face coordinates, parameters are N x 1 x 1 --------------

def _col(t: torch.Tensor) -> torch.Tensor:
    """N -> N x 1 x 1 (broadcasts against N x H x W maps); N x C -> N x C x 1 x 1 (against images)."""
    return t.reshape(len(t), 1, 1) if t.dim() == 1 else t.reshape(len(t), -1, 1, 1)


def _ellipse(x, y, cx, cy, a, b):
    """Approximate signed distance to an ellipse (negative inside), in face units."""
    return (torch.sqrt(((x - cx) / a) ** 2 + ((y - cy) / b) ** 2) - 1.0) * torch.minimum(a, b)


def _alpha(d: torch.Tensor, aa: torch.Tensor) -> torch.Tensor:
    """Anti-aliased coverage of the region d < 0 (aa = one pixel in face units)."""
    return (0.5 - d / aa).clamp(0, 1)


def _paint(canvas: torch.Tensor, alpha: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """Alpha-composite `colour` (N x 3 or N x 3 x H x W) over `canvas` where `alpha` (N x H x W) covers it."""
    if colour.dim() == 2:
        colour = _col(colour)
    return canvas + alpha[:, None] * (colour - canvas)


def _render(q: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """Render one chunk of faces (all tensors in `q` have the chunk's length) to N x 3 x size x size in [0, 1]."""
    n = len(q["identity"])
    g = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    gy, gx = torch.meshgrid(g, g, indexing="ij")
    gx, gy = gx.expand(n, size, size), gy.expand(n, size, size)
    c = lambda k: _col(q[k].float())  # noqa: E731 - N x 1 x 1 view of a parameter
    # Pose: canvas -> face coordinates (inverse of shift, rotate, scale).
    cos, sin, s = torch.cos(c("rot")), torch.sin(c("rot")), c("scale") * _ZOOM
    dx, dy = gx - c("tx"), gy - c("ty") - _DROP
    x = (cos * dx + sin * dy) / s
    y = (-sin * dx + cos * dy) / s
    aa = (2.0 / size) / s
    one = torch.ones_like(c("scale"))

    # Background: base colour with a per-image vertical gradient.
    canvas = (_col(q["bg"]) + _col(q["bg_grad"]) * gy[:, None]).clamp(0, 1)
    skin, hair, hat = q["skin"], q["hair"], q["hat_colour"]
    A, B = c("head_a"), c("head_b")
    long_hair = c("long_hair")

    # Long hair falls behind the head down to the shoulders.
    d_long = torch.maximum(_ellipse(x, y, 0 * one, 0.12 * one, A + 0.13, B + 0.12), y - 0.78)
    canvas = _paint(canvas, _alpha(d_long, aa) * long_hair, hair * 0.85)
    # Neck and shirt.
    d_neck = torch.maximum((x.abs() - 0.15 * A / 0.43), 0.35 - y)
    canvas = _paint(canvas, _alpha(d_neck, aa), skin * 0.85)
    canvas = _paint(canvas, _alpha(_ellipse(x, y, 0 * one, 1.08 * one, 0.85 * one, 0.42 * one), aa), q["shirt"])
    # Ears, then the head (the chin narrows by `jaw` below the centre line).
    for side in (-1.0, 1.0):
        d_ear = _ellipse(x, y, side * A * 0.97, c("eye_y") + 0.07, c("ear"), c("ear") * 1.5)
        canvas = _paint(canvas, _alpha(d_ear, aa), skin * 0.9)
    narrow = 1.0 - c("jaw") * (y / B).clamp(0, 1) ** 2
    d_head = _ellipse(x / narrow, y, 0 * one, 0 * one, A, B)
    canvas = _paint(canvas, _alpha(d_head, aa), skin)
    # Hair cap: the top of a slightly larger ellipse above a styled hairline.
    part = c("part")
    style = c("hair_style")
    line = c("hairline") + torch.where(style == 1, 0.10 * torch.tanh(6 * (x - part)) * torch.sign(part), 0 * x)
    line = line + torch.where(style == 2, 0.035 * torch.sin(x * 28 + part * 10) + 0.06, 0 * x)
    line = line + 0.12 * (x / A) ** 2  # hair comes down at the temples
    d_cap = torch.maximum(_ellipse(x, y, 0 * one, 0 * one, A + c("hair_volume"), B + c("hair_volume")), y - line)
    canvas = _paint(canvas, _alpha(d_cap, aa), hair)
    # Beard (hair colour, a bit darker): full beard over the jaw, or a goatee on the chin; plus a moustache.
    mouth_y = c("mouth_y")
    d_full = torch.maximum(d_head - 0.01, (mouth_y - 0.10 - 0.25 * x.abs()) - y)
    d_goatee = torch.maximum(torch.maximum(d_head - 0.01, mouth_y + 0.03 - y), x.abs() - 0.13)
    d_beard = torch.where(c("full_beard") > 0, d_full, d_goatee)
    d_moust = _ellipse(x, y, 0 * one, mouth_y - 0.045, c("mouth_w") + 0.02, 0.035 * one)
    beard_alpha = torch.maximum(_alpha(d_beard, aa), _alpha(d_moust, aa)) * c("beard")
    canvas = _paint(canvas, beard_alpha, hair * 0.75)
    # Eyes: white, iris (gaze moves it), pupil.
    ew, eh = c("eye_w"), c("eye_h")
    for side in (-1.0, 1.0):
        ex, ey = side * c("eye_dx"), c("eye_y")
        canvas = _paint(canvas, _alpha(_ellipse(x, y, ex, ey, ew, eh), aa), torch.full((n, 3), 0.97))
        ix, iy = ex + _col(q["gaze"][:, 0]) * ew * 0.5, ey + _col(q["gaze"][:, 1]) * eh * 0.3
        canvas = _paint(canvas, _alpha(_ellipse(x, y, ix, iy, eh * 0.85, eh * 0.85), aa), q["iris"])
        canvas = _paint(canvas, _alpha(_ellipse(x, y, ix, iy, eh * 0.4, eh * 0.4), aa), torch.full((n, 3), 0.02))
        # Eyebrow: a thin tilted bar above the eye.
        by = ey - eh - c("brow_gap") * 0.6 - c("brow_raise") - 0.02
        rx = x - ex
        ry = (y - by) - side * c("brow_tilt") * rx
        d_brow = _ellipse(rx, ry, 0 * one, 0 * one, ew * 1.25, c("brow_t"))
        canvas = _paint(canvas, _alpha(d_brow, aa), hair * 0.7)
    # Nose: a soft shadow shape.
    nose_y = c("eye_y") + 0.5 * (mouth_y - c("eye_y"))
    d_nose = _ellipse(x, y, 0 * one, nose_y, c("nose_w"), c("nose_l"))
    canvas = _paint(canvas, _alpha(d_nose, aa) * 0.55, skin * 0.6)
    # Cheeks blush when smiling.
    for side in (-1.0, 1.0):
        d_cheek = _ellipse(x, y, side * (c("eye_dx") + 0.06), mouth_y - 0.08, 0.07 * one, 0.05 * one)
        canvas = _paint(canvas, _alpha(d_cheek, aa) * 0.45 * c("smile"), torch.tensor([[0.95, 0.40, 0.45]]).expand(n, 3))
    # Mouth: centre line y = mouth_y - curve * (x / w)^2 (corners rise when smiling); an open mouth is a dark gap.
    mw = c("mouth_w") * (1 + 0.25 * c("smile"))  # a smile widens the mouth
    t = (x / mw).clamp(-1, 1)
    centre = mouth_y - c("smile_curve") * (t**2 - 0.3)
    half_open = c("open") * (1 - t**2)
    d_lips = torch.maximum((y - centre).abs() - half_open - 0.022, x.abs() - mw)
    canvas = _paint(canvas, _alpha(d_lips, aa), q["lip"])
    d_gap = torch.maximum((y - centre).abs() - half_open + 0.004, x.abs() - mw * 0.9)
    canvas = _paint(canvas, _alpha(d_gap, aa) * (c("open") > 0), torch.tensor([[0.25, 0.05, 0.07]]).expand(n, 3))
    d_teeth = torch.maximum(d_gap, y - (centre - half_open * 0.2))  # upper part of the gap
    canvas = _paint(canvas, _alpha(d_teeth, aa) * (c("open") > 0) * c("smile"), torch.full((n, 3), 0.95))
    # Glasses: two frames (round or square: an L4 "circle") and a bridge; lenses slightly tinted.
    r = ew + 0.035
    for side in (-1.0, 1.0):
        lx, ly = (x - side * c("eye_dx")) / r, (y - c("eye_y")) / (r * 0.85)
        p_norm = torch.where(c("frame_square") > 0, (lx**4 + ly**4) ** 0.25, torch.sqrt(lx**2 + ly**2))
        d_lens = (p_norm - 1.0) * r
        canvas = _paint(canvas, _alpha(d_lens, aa) * 0.18 * c("glasses"), torch.tensor([[0.6, 0.8, 1.0]]).expand(n, 3))
        d_frame = d_lens.abs() - c("frame_t")
        canvas = _paint(canvas, _alpha(d_frame, aa) * c("glasses"), q["frame"])
        # Temple arm from the lens's outer edge to the side of the head.
        outward = side * x
        d_span = torch.maximum(c("eye_dx") + r - outward, outward - A)
        d_arm = torch.maximum((y - c("eye_y") + 0.02).abs() - c("frame_t") * 0.8, d_span)
        canvas = _paint(canvas, _alpha(d_arm, aa) * c("glasses"), q["frame"])
    d_bridge = torch.maximum((y - c("eye_y") + 0.01).abs() - c("frame_t") * 0.8, x.abs() - (c("eye_dx") - r + 0.01))
    canvas = _paint(canvas, _alpha(d_bridge, aa) * c("glasses"), q["frame"])
    # Hat: a crown over the head top; a brimmed hat adds a wide brim, a beanie adds a turned-up band.
    hat_line = c("hairline") - 0.02
    d_crown = torch.maximum(_ellipse(x, y, 0 * one, hat_line - 0.05, A + 0.08, B * 0.75), y - hat_line)
    brimmed = c("beanie") == 0
    d_brim = _ellipse(x, y, 0 * one, hat_line, A + 0.22, 0.055 * one)
    d_band = torch.maximum(torch.maximum(_ellipse(x, y, 0 * one, hat_line - 0.05, A + 0.10, B * 0.78), y - hat_line - 0.01),
                           hat_line - 0.1 - y)
    canvas = _paint(canvas, _alpha(d_crown, aa) * c("hat"), hat)
    canvas = _paint(canvas, _alpha(d_brim, aa) * c("hat") * brimmed, hat * 0.7)
    canvas = _paint(canvas, _alpha(d_band, aa) * c("hat") * ~brimmed, (hat * 0.6 + 0.3).clamp(0, 1))
    # Lighting: brightness, colour tint and a linear gradient across the canvas; then faint sensor noise.
    light = c("bright")[:, None] * _col(q["tint"]) * (1 + _col(q["grad"][:, 0])[:, None] * gx[:, None]
                                                      + _col(q["grad"][:, 1])[:, None] * gy[:, None])
    canvas = canvas * light
    noise = [torch.randn(canvas.shape[1:], generator=torch.Generator().manual_seed(int(k))) for k in q["noise_seed"]]
    canvas = canvas + 0.01 * torch.stack(noise)
    return (canvas.clamp(0, 1) * 255).round() / 255


def dataset_name(size: int) -> str:
    """`synthfaces` at the default 32 x 32, `synthfaces-64` etc. otherwise (selections name their dataset)."""
    return "synthfaces" if size == 32 else f"synthfaces-{size}"


def render(cfg: FaceConfig = FaceConfig()) -> ImageData:
    """Render the whole dataset (`split="all"`): images, attributes and identities, rows ordered by identity."""
    cfg.validate()
    gen = torch.Generator().manual_seed(cfg.seed)
    q = _image_params(cfg, _identity_params(cfg, gen), gen)
    n = len(q["identity"])
    images = torch.empty(n, 3, cfg.size, cfg.size)
    step = max(16, _CHUNK_PIXELS // cfg.size**2)  # bounded temporaries; the result does not depend on it
    # Rendering is many small elementwise ops that gain little from intra-op threads and lose badly to contention on
    # a busy machine (measured on 2 shared cores: 2,400 faces in 1.2 s with one thread, 8 s with two), so render
    # single-threaded and restore the caller's setting.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for start in range(0, n, step):
            chunk = {k: v[start:start + step] for k, v in q.items()}
            images[start:start + step] = _render(chunk, cfg.size)
    finally:
        torch.set_num_threads(threads)
    attributes = torch.stack([q[a].bool() for a in ATTRIBUTES], 1)
    return ImageData(dataset_name(cfg.size), "all", images, torch.arange(n), attributes=attributes, attribute_names=ATTRIBUTES,
                     identities=q["identity"].clone(), meta={"config": cfg, "identity_level": IDENTITY_LEVEL,
                                                             "image_level": IMAGE_LEVEL})


def _disk_path(cfg: FaceConfig) -> Path:
    key = f"v{RENDER_VERSION}-s{cfg.size}-seed{cfg.seed}-{cfg.n_identities}x{cfg.per_identity}-t{cfg.n_test}"
    return cache_dir() / "synthfaces" / f"{key}.safetensors"


def _render_or_read(cfg: FaceConfig, disk_cache: bool) -> ImageData:
    """Render, or read a previous render of the same config from the disk cache (written atomically)."""
    if not disk_cache:
        return render(cfg)
    from safetensors.torch import load_file, save_file

    path = _disk_path(cfg)
    if path.exists():
        t = load_file(str(path))
        return ImageData(dataset_name(cfg.size), "all", t["x"].float() / 255, torch.arange(len(t["x"])),
                         attributes=t["attributes"].bool(), attribute_names=ATTRIBUTES, identities=t["identities"],
                         meta={"config": cfg, "identity_level": IDENTITY_LEVEL, "image_level": IMAGE_LEVEL})
    data = render(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({"x": (data.x * 255).round().to(torch.uint8), "attributes": data.attributes.to(torch.uint8),
               "identities": data.identities}, str(tmp))
    tmp.replace(path)
    return data


@functools.lru_cache(maxsize=4)
def _cached(cfg: FaceConfig, disk_cache: bool) -> ImageData:
    return _render_or_read(cfg, disk_cache)


def load_synthfaces(split: str = "train", size: int = 32, seed: int = 0, n_identities: int = 500,
                    per_identity: int = 24, n_test: int = 4, disk_cache: bool = False) -> ImageData:
    """A synthfaces split: `train` (first per_identity - n_test images of every identity), `test` or `all`.

    The rendered set is cached in memory per configuration; `disk_cache=True` also keeps a uint8 copy under
    `<LETHE_HOME>/cache/synthfaces/` so another process skips rendering."""
    if split not in ("train", "test", "all"):
        raise LetheError(f"unknown split {split!r} for synthfaces.", "Use 'train', 'test' or 'all'.")
    cfg = FaceConfig(size, seed, n_identities, per_identity, n_test)
    cfg.validate()
    data = _cached(cfg, disk_cache)
    if split == "all":
        return data
    k = data.ids % per_identity
    out = data.subset(k < per_identity - n_test if split == "train" else k >= per_identity - n_test)
    out.split = split
    return out


def attribute_level(name: str) -> str:
    """'identity' or 'image': whether attribute `name` is fixed per identity or varies per image."""
    if name in IDENTITY_LEVEL:
        return "identity"
    if name in IMAGE_LEVEL:
        return "image"
    raise LetheError(f"unknown synthfaces attribute {name!r}.", f"Known attributes: {', '.join(ATTRIBUTES)}.")


__all__ = ["ATTRIBUTES", "FaceConfig", "attribute_level", "dataset_name", "load_synthfaces", "render"]
