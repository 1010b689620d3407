"""A user's own training images, named by a *data spec*: a folder of images, a zip of one, or an `.npz`.

Layouts (the design guide's "data spec"):
- a folder with one sub-folder per class, as torchvision's `ImageFolder` reads it: labels are the sub-folders'
  indices in sorted order and their names are the class names;
- a flat folder of images (no labels);
- a `.zip` of either layout (what the Data page's upload takes), read entry by entry without unpacking;
- an `.npz` with `images` (N x H x W, N x H x W x C or N x C x H x W; uint8 0-255, or float in [0, 1] or
  [-1, 1]) and optional `labels` (N ints), `class_names`, `attributes` (N x A, 0/1) with `attribute_names`,
  and `identities` (N ints). It is read with `allow_pickle=False`: an npz is data, never code. For the
  low-dimensional models (the 2-D toys), the npz holds `points` instead (N x D floats, kept as they are; an
  N x D `images` array is read the same way), with the same optional columns.

Every image becomes float32 C x H x W in [0, 1], Lethe's image convention. Given the model's `shape`, images are
resized (antialiased) to its H x W; channels are checked: grey images are repeated for an RGB model, colour
images for a grey model are refused (unless their channels are equal), and the message says which. Bounds keep a
hostile or mistaken input from exhausting memory: at most `LETHE_MAX_IMAGES` images (default 200,000), image files
of at most `LETHE_MAX_IMAGE_BYTES` (default 20 MB) and `MAX_PIXELS` pixels (PIL's decompression-bomb guard set
to that value and turned into an error), and an npz whose arrays add up to at most `LETHE_MAX_DATA_BYTES`
(default 2 GB) before anything is decompressed. The dataset's name is the spec's absolute path, so a forget set
saved on it names the same images tomorrow; ids are row numbers in sorted file order.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import numpy as np
import torch
from torch.nn import functional as F

from core.data.base import ImageData
from core.errors import ZIP_MEMBER_ERRORS, DatasetNotFound, LetheError, ShapeMismatch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
MAX_PIXELS = 4096 * 4096  # per image; far above any training image a CPU method uses, far below a bomb


def _limit(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return max(1, int(value))
    except ValueError:
        raise LetheError(f"{name}={value!r} is not an integer.", f"Unset {name} or give a whole number.") from None


def max_images() -> int:
    return _limit("LETHE_MAX_IMAGES", 200_000)


def max_image_bytes() -> int:
    return _limit("LETHE_MAX_IMAGE_BYTES", 20 * 2**20)


def max_data_bytes() -> int:
    return _limit("LETHE_MAX_DATA_BYTES", 2 * 2**30)


def is_data_path(spec: str) -> bool:
    """Whether `spec` names a user's data (an existing path, or anything ending in .npz / .zip) rather than one
    of Lethe's dataset names."""
    return Path(spec).suffix.lower() in (".npz", ".zip") or os.sep in spec or Path(spec).exists()


def data_name(spec: str | os.PathLike) -> str:
    """The stable name of a user's dataset: the spec's absolute path."""
    return str(Path(spec).expanduser().resolve())


# --- reading image files ----------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """One image file: where it is (for messages), its class folder ('' when flat) and a way to read its bytes."""

    where: str
    folder: str
    read: Callable[[], bytes]  #, capped at max_image_bytes()


def _capped_read(stream: io.BufferedIOBase, where: str) -> bytes:
    """Read at most the byte cap (+1 to notice a larger file); bigger files are refused as read, whatever a header
    or directory listing claims."""
    cap = max_image_bytes()
    payload = stream.read(cap + 1)
    if len(payload) > cap:
        raise LetheError(f"the image {where} is larger than {cap:,} bytes.",
                         "Resize your images (training images are usually tiny), or raise LETHE_MAX_IMAGE_BYTES.")
    return payload


def _is_image(name: str) -> bool:
    base = PurePosixPath(name).name
    return not base.startswith(".") and PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def _folder_entries(root: Path) -> list[_Entry]:
    entries = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file() or not _is_image(path.name):
            continue
        if len(rel.parts) > 2:
            raise LetheError(f"{path} is nested {len(rel.parts) - 1} folders deep in {root}.",
                             "Use one sub-folder per class (ImageFolder layout) or a flat folder of images.")

        def read(p: Path = path) -> bytes:
            with open(p, "rb") as f:
                return _capped_read(f, str(p))

        entries.append(_Entry(str(path), rel.parts[0] if len(rel.parts) == 2 else "", read))
        if len(entries) > max_images():
            raise _too_many(root)
    return entries


def _zip_entries(archive: zipfile.ZipFile, where: Path) -> list[_Entry]:
    infos = [i for i in archive.infolist() if not i.is_dir() and _is_image(i.filename)
             and not i.filename.startswith("__MACOSX/")]
    if len(infos) > max_images():
        raise _too_many(where)
    parts = [PurePosixPath(i.filename).parts for i in infos]
    # a zip of a folder holds one top-level folder: strip it, so zip(faces/) reads like faces/ itself
    common = parts[0][0] if parts and all(len(p) > 1 and p[0] == parts[0][0] for p in parts) else None
    entries = []
    for info, p in sorted(zip(infos, parts), key=lambda ip: ip[0].filename):
        rel = p[1:] if common is not None else p
        if len(rel) > 2:
            raise LetheError(f"{info.filename} is nested too deep in {where.name}.",
                             "Zip one sub-folder per class (ImageFolder layout) or a flat folder of images.")
        if info.flag_bits & 0x1:
            raise LetheError(f"{info.filename} in {where.name} is encrypted.", "Zip the images without a password.")

        def read(i: zipfile.ZipInfo = info) -> bytes:
            try:
                with archive.open(i) as f:
                    return _capped_read(f, f"{i.filename} in {where.name}")
            except (*ZIP_MEMBER_ERRORS, OSError) as exc:
                raise LetheError(f"cannot read {i.filename} from {where.name} ({exc}).",
                                 "Re-create the zip with ordinary (deflate) compression.") from exc

        entries.append(_Entry(f"{info.filename} in {where.name}", rel[0] if len(rel) == 2 else "", read))
    return entries


def _too_many(where: Path) -> LetheError:
    return LetheError(f"{where} holds more than {max_images():,} images.",
                      "Use a subset, or raise LETHE_MAX_IMAGES if you have the memory.")


def _decode(entry: _Entry) -> np.ndarray:
    """H x W x C uint8 pixels of one image, grey (C = 1) or RGB (C = 3, alpha dropped); a header announcing more
    than MAX_PIXELS pixels is refused before the pixels are decoded."""
    from PIL import Image

    payload = entry.read()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS
            try:
                with Image.open(io.BytesIO(payload)) as img:
                    if img.width * img.height > MAX_PIXELS:
                        raise LetheError(f"{entry.where} is {img.width}x{img.height} pixels, more than Lethe decodes "
                                         f"({MAX_PIXELS:,}).", "Resize your images before giving them to Lethe.")
                    img.seek(0)
                    img = img.convert("L" if img.mode in ("1", "L", "I", "I;16", "F") else "RGB")
                    pixels = np.array(img, dtype=np.uint8)
            finally:
                Image.MAX_IMAGE_PIXELS = previous
    except LetheError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise LetheError(f"{entry.where} looks like a decompression bomb ({exc}).",
                         "Give Lethe ordinary images of a few hundred pixels a side.") from exc
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for a file that is not an image
        raise LetheError(f"{entry.where} is not an image Lethe can read ({type(exc).__name__}: {exc}).",
                         f"Remove it, or convert it to PNG; readable types: {', '.join(IMAGE_SUFFIXES)}.") from exc
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _from_entries(entries: list[_Entry], where: Path, shape: tuple[int, ...] | None) -> ImageData:
    if not entries:
        raise DatasetNotFound(f"{where} holds no images.",
                              f"Put images ({', '.join(IMAGE_SUFFIXES)}) in it, flat or one sub-folder per class.")
    folders = sorted({e.folder for e in entries})
    if "" in folders and len(folders) > 1:
        loose = next(e.where for e in entries if not e.folder)
        raise LetheError(f"{where} mixes class sub-folders with loose images (e.g. {loose}).",
                         "Move every image into a class sub-folder, or use a flat folder without sub-folders.")
    images = [_decode(e) for e in entries]
    sizes = {im.shape[:2] for im in images}
    if shape is None and len(sizes) > 1:
        raise ShapeMismatch(f"the images in {where} have {len(sizes)} different sizes (e.g. "
                            f"{', '.join('x'.join(map(str, s)) for s in list(sizes)[:3])}).",
                            "Load them for a model (its size is used), or resize them to one size.")
    x = torch.cat([fit_images(torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255.0, shape, e.where)
                   for im, e in zip(images, entries)])
    labels, class_names = None, ()
    if folders != [""]:
        index = {f: k for k, f in enumerate(folders)}
        labels = torch.tensor([index[e.folder] for e in entries], dtype=torch.long)
        class_names = tuple(folders)
    return ImageData(data_name(where), "train", x, torch.arange(len(x)), labels=labels, class_names=class_names,
                     meta={"source": str(where), "layout": "flat" if labels is None else "image-folder"})


# --- channels, size and pixel range -----------------------------------------------------------------------------


def fit_images(x: torch.Tensor, shape: tuple[int, ...] | None, where: str) -> torch.Tensor:
    """N x C x H x W in [0, 1] fitted to a model's `shape` (C, H, W): resized with antialiasing, grey repeated to
    RGB; colour into a grey model is a ShapeMismatch unless the channels are equal (grey saved as RGB)."""
    if shape is None:
        return x.contiguous()
    if len(shape) != 3:
        raise ShapeMismatch(f"the model works on {'x'.join(map(str, shape))}-D points, not images like {where}.",
                            f"Give this model an .npz with a `points` array of N x {'x'.join(map(str, shape))} "
                            "numbers, or pick an image model.")
    c, h, w = shape
    if x.shape[1] != c:
        if x.shape[1] == 1 and c == 3:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] == 3 and c == 1 and bool((x[:, :1] == x[:, 1:]).all()):
            x = x[:, :1]
        else:
            raise ShapeMismatch(f"{where} has {x.shape[1]} channel(s) but the model works on {c}.",
                                "Convert the images (grey: 1 channel, colour: 3), or pick a model of their kind.")
    if tuple(x.shape[2:]) != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return x.contiguous()


def _unit_range(images: np.ndarray, where: str) -> torch.Tensor:
    """Pixels as float32 in [0, 1]: uint8 / 255, floats in [0, 1] as they are, floats in [-1, 1] mapped."""
    if images.dtype == np.uint8:
        return torch.from_numpy(images.astype(np.float32) / 255.0)
    if images.dtype.kind not in "fiub":
        raise LetheError(f"`images` in {where} has dtype {images.dtype}.", "Store uint8 (0-255) or float pixels.")
    x = torch.from_numpy(images.astype(np.float32))
    if not bool(torch.isfinite(x).all()):
        raise LetheError(f"`images` in {where} holds NaN or infinite values.", "Clean the array before loading it.")
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0.0 and hi <= 1.0:
        return x
    if lo >= -1.0 and hi <= 1.0:
        return (x + 1.0) / 2.0
    raise LetheError(f"`images` in {where} range over [{lo:g}, {hi:g}], not a pixel range Lethe knows.",
                     "Store uint8 pixels 0-255, or floats in [0, 1] or [-1, 1].")


def _nchw(images: np.ndarray, where: str) -> np.ndarray:
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4:
        if images.shape[1] in (1, 3):
            return images
        if images.shape[3] in (1, 3):
            return images.transpose(0, 3, 1, 2)
    raise ShapeMismatch(f"`images` in {where} has shape {images.shape}.",
                        "Store N x H x W (grey), N x H x W x C or N x C x H x W with C = 1 or 3.")


# --- .npz -------------------------------------------------------------------------------------------------------

_NPZ_KEYS = ("images", "points", "labels", "class_names", "attributes", "attribute_names", "identities")


def _load_npz(path: Path, shape: tuple[int, ...] | None) -> ImageData:
    where = path.name
    try:
        with zipfile.ZipFile(path) as archive:
            claimed = sum(i.file_size for i in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise LetheError(f"{where} is not an .npz file ({exc}).", "Save it with numpy.savez.") from exc
    if claimed > max_data_bytes():
        raise LetheError(f"{where} unpacks to {claimed / 2**30:.1f} GB, more than {max_data_bytes() / 2**30:.1f} GB.",
                         "Use a subset, or raise LETHE_MAX_DATA_BYTES if you have the memory.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files if k in _NPZ_KEYS}
            unknown = sorted(set(npz.files) - set(_NPZ_KEYS))
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        if isinstance(exc, ValueError) and "pickle" in str(exc):  # object arrays need pickle, which is refused
            raise LetheError(f"{where} holds an array Lethe will not read ({exc}).",
                             "Store plain numeric arrays, and names as a string array (numpy dtype 'U').") from exc
        # anything else is a broken member, e.g. an .npy header whose shape the data does not fill
        raise LetheError(f"{where} is corrupt ({exc}).", "Save it again with numpy.savez.") from exc
    if "images" in arrays and "points" in arrays:
        raise LetheError(f"{where} has both `images` and `points`.", "Keep one of them: images, or N x D points.")
    key = "points" if "points" in arrays else "images"
    if key not in arrays:
        raise LetheError(f"{where} has no `images` or `points` array (it has "
                         f"{', '.join(sorted(set(arrays) | set(unknown)))}).",
                         f"Save images under the key `images` (or N x D points under `points`); optional keys: "
                         f"{', '.join(_NPZ_KEYS[2:])}.")
    images = arrays[key]
    n = len(images)
    if n > max_images():
        raise _too_many(path)
    if key == "points" or images.ndim == 2:
        x = _points(images, shape, where)
    else:
        x = fit_images(_unit_range(_nchw(images, where), where), shape, where)
    labels = _column(arrays, "labels", n, where)
    identities = _column(arrays, "identities", n, where)
    attributes, attribute_names = None, ()
    if "attributes" in arrays:
        a = arrays["attributes"]
        if a.ndim != 2 or len(a) != n or not np.isin(a, (0, 1)).all():
            raise LetheError(f"`attributes` in {where} must be N x A with 0/1 entries (got shape {a.shape}).",
                             "One row per image, one column per attribute, 1 where it holds.")
        attributes = torch.from_numpy(a.astype(bool))
        attribute_names = _names(arrays, "attribute_names", a.shape[1], where, "attr")
    class_names = ()
    if labels is not None:
        class_names = _names(arrays, "class_names", int(labels.max()) + 1, where, "")
    return ImageData(data_name(path), "train", x, torch.arange(n), labels=labels, class_names=class_names,
                     attributes=attributes, attribute_names=attribute_names, identities=identities,
                     meta={"source": str(path), "layout": "npz" if x.dim() > 2 else "npz-points",
                           "ignored_keys": unknown})


def _points(points: np.ndarray, shape: tuple[int, ...] | None, where: str) -> torch.Tensor:
    """N x D points as float32, unchanged (a 2-D toy's data has no pixel range); D must be the model's."""
    if points.ndim != 2 or points.dtype.kind not in "fiu":
        raise ShapeMismatch(f"the points in {where} must be an N x D array of numbers (got {points.dtype} "
                            f"{points.shape}).", "Store one row per point, one column per coordinate.")
    x = torch.from_numpy(points.astype(np.float32))
    if not bool(torch.isfinite(x).all()):
        raise LetheError(f"the points in {where} hold NaN or infinite values.", "Clean the array before loading it.")
    if shape is not None and len(shape) != 1:
        raise ShapeMismatch(f"{where} holds {x.shape[1]}-D points, but the model works on "
                            f"{'x'.join(map(str, shape))} images.",
                            "Points are for the low-dimensional models (toy-flow, toy-gan); give this model images "
                            "(a folder, a zip or an npz with `images`).")
    if shape is not None and x.shape[1] != shape[0]:
        raise ShapeMismatch(f"{where} holds {x.shape[1]}-D points, but the model works on {shape[0]}-D points.",
                            f"Store N x {shape[0]} points.")
    return x.contiguous()


def _column(arrays: dict[str, np.ndarray], key: str, n: int, where: str) -> torch.Tensor | None:
    if key not in arrays:
        return None
    v = arrays[key]
    if v.shape != (n,) or v.dtype.kind not in "iu" or (n and v.min() < 0):
        raise LetheError(f"`{key}` in {where} must be {n} non-negative integers, one per image (got {v.dtype} "
                         f"{v.shape}).", f"Store `{key}` as an integer array of length {n}.")
    return torch.from_numpy(v.astype(np.int64))


def _names(arrays: dict[str, np.ndarray], key: str, count: int, where: str, prefix: str) -> tuple[str, ...]:
    if key not in arrays:
        return tuple(f"{prefix}{k}" for k in range(count))
    names = [str(s) for s in arrays[key].reshape(-1)]
    if len(names) < count or any(not s for s in names):
        raise LetheError(f"`{key}` in {where} names {len(names)} columns but {count} are used.",
                         f"Give one non-empty name per column in `{key}`.")
    return tuple(names)


# --- the entry point --------------------------------------------------------------------------------------------


def load_user_data(spec: str | os.PathLike, shape: Iterable[int] | None = None) -> ImageData:
    """The images a data spec names (a folder, a .zip of one, or an .npz), in [0, 1] and fitted to `shape`
    (a model's data shape; None keeps the images' own size, which must then be one size)."""
    path = Path(spec).expanduser()
    target = tuple(int(s) for s in shape) if shape is not None else None
    if not path.exists():
        raise DatasetNotFound(f"there is no file or folder {spec}.",
                              "Pass --data a folder of images (flat or one sub-folder per class), a .zip of one, "
                              "or an .npz with an `images` array.")
    if path.is_dir():
        return _from_entries(_folder_entries(path), path, target)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path, target)
    if suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                return _from_entries(_zip_entries(archive, path), path, target)
        except zipfile.BadZipFile as exc:
            raise LetheError(f"{path.name} is not a zip file ({exc}).", "Zip a folder of images.") from exc
    raise LetheError(f"{spec} is neither a folder, a .zip nor an .npz.",
                     "Pass a folder of images (flat or one sub-folder per class), a .zip of one, or an .npz.")



# --- held-out images --------------------------------------------------------------------------------------------


def load_heldout(spec: str | os.PathLike, train: ImageData) -> ImageData:
    """The user's held-out images (ones the model was NOT trained on) as the `test` split of `train`, the user's
    training data: same dataset name, shape and columns, so a selection on the training data picks its held-out
    counterparts (an identity's other images, a label's test images: taming's D'_F) and `--remember test` has
    images to remember. Labels are matched to the training data's classes by name (a held-out folder may lack a
    class); an image that is also in the training data is refused, because a held-out measurement on it would
    not be held out."""
    held = load_user_data(spec, train.shape)
    where = Path(spec).name
    labels = held.labels
    if labels is not None:
        if train.labels is None:
            raise LetheError(f"the held-out images {where} have classes but the training data {Path(train.name).name} "
                             "has none.", "Give both with labels (class sub-folders or a `labels` array), or neither.")
        index = {name: k for k, name in enumerate(train.class_names)}
        unknown = [name for name in held.class_names if name not in index]
        if unknown:
            raise LetheError(f"the held-out images {where} have classes the training data does not: "
                             f"{', '.join(unknown[:5])}.", f"Use the training data's classes: "
                                                           f"{', '.join(train.class_names[:10])}.")
        labels = torch.tensor([index[name] for name in held.class_names])[labels]
    if held.attributes is not None and tuple(held.attribute_names) != tuple(train.attribute_names):
        raise LetheError(f"the held-out images {where} name attributes {', '.join(held.attribute_names)}, the "
                         f"training data {', '.join(train.attribute_names) or 'none'}.",
                         "Store the same attribute columns, in the same order, in both.")
    shared = _shared_rows(train.x, held.x)
    if shared:
        held_row, train_row = shared[0]
        raise LetheError(f"{len(shared)} of the {len(held)} held-out images in {where} are also in the training data "
                         f"(e.g. held-out image {held_row} is training image {train_row}).",
                         "Held-out images must be images the model was not trained on: remove them from one of "
                         "the two.")
    return ImageData(train.name, "test", held.x, held.ids, labels=labels, class_names=train.class_names,
                     attributes=held.attributes, attribute_names=held.attribute_names, identities=held.identities,
                     meta={**held.meta, "heldout_of": train.name})


def _shared_rows(train: torch.Tensor, held: torch.Tensor) -> list[tuple[int, int]]:
    """(held-out row, training row) for every held-out sample byte-identical to a training sample."""
    seen = {hashlib.blake2b(row.numpy().tobytes(), digest_size=16).digest(): k for k, row in enumerate(train)}
    digests = (hashlib.blake2b(row.numpy().tobytes(), digest_size=16).digest() for row in held)
    return [(k, seen[d]) for k, d in enumerate(digests) if d in seen]
