"""Real datasets through torchvision's own loaders, found offline: Fashion-MNIST, full MNIST and CelebA.

Nothing is ever downloaded (`download=False`). Where Lethe looks, in order:

- an explicit `root=` argument: only there (a user who names a folder means that folder);
- otherwise the folder in the environment variable `LETHE_DATA_ROOT`, then Lethe's prepared-data folder
  `<LETHE_HOME>/data/`, then (Fashion-MNIST only) Debian's `dataset-fashion-mnist` package under
  `/usr/share/datasets/fashion-mnist/`.

A root holds torchvision's layout: `ROOT/FashionMNIST/raw/` or `ROOT/MNIST/raw/` (the four IDX files, gunzipped or
`.gz`; the files may also sit directly in ROOT), `ROOT/celeba/` (`img_align_celeba/` plus the five list files).
Gzipped or loose IDX files are prepared once into `<LETHE_HOME>/data/<Class>/raw/`, which torchvision reads. Splits are the official ones: `train` and `test` (CelebA
also `valid`); `all` is train followed by test (ids: a sample's row in that order, CelebA: in file order).

Images are held in memory as float32 in [0, 1], cached once per process and split (Fashion-MNIST train is ~190 MB).
CelebA is centre-cropped to 148 x 148 (the usual aligned-face crop) and resized to `size` (64 by default); since
its 200k images do not fit in memory at float32, `max_images` (default 30,000) keeps the first images of a split
in file order, and the kept count is recorded in `meta`.
"""

from __future__ import annotations

import functools
import gzip
import os
import shutil
import tempfile
from pathlib import Path

import torch

from core.data.base import ImageData
from core.data.home import data_dir
from core.errors import DatasetNotFound, LetheError

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_IDX_SETS = {"fashion-mnist": "FashionMNIST", "mnist-full": "MNIST"}
_CELEBA_FILES = ("list_attr_celeba.txt", "identity_CelebA.txt", "list_bbox_celeba.txt",
                 "list_landmarks_align_celeba.txt", "list_eval_partition.txt")


def _search_roots(root: str | os.PathLike | None) -> list[Path]:
    if root is not None:
        return [Path(root).expanduser()]
    env = os.environ.get("LETHE_DATA_ROOT")
    return ([Path(env).expanduser()] if env else []) + [data_dir()]


def _gunzip_into(sources: dict[str, Path], raw: Path) -> None:
    """Gunzip each IDX file into `raw/` atomically (a temp file renamed into place)."""
    raw.mkdir(parents=True, exist_ok=True)
    for name, src in sources.items():
        fd, tmp = tempfile.mkstemp(dir=raw, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out, gzip.open(src, "rb") as inp:
                shutil.copyfileobj(inp, out)
            os.chmod(tmp, 0o644)
            os.replace(tmp, raw / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _idx_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in `folder` as {name: path} (gunzipped preferred over .gz), or None if any is missing."""
    found = {}
    for name in _IDX:
        plain, gz = folder / name, folder / f"{name}.gz"
        found[name] = plain if plain.is_file() else gz if gz.is_file() else None
    return None if None in found.values() else found


def find_idx_root(name: str, root: str | os.PathLike | None = None) -> Path:
    """A torchvision root whose `<Class>/raw/` holds the gunzipped IDX files of `name`, preparing one if needed."""
    cls = _IDX_SETS[name]
    looked: list[Path] = []
    # (folder, the torchvision root it belongs to): ROOT/<Class>/raw/ is read in place when gunzipped; files directly
    # in ROOT (as Debian lays them out) or gzipped are prepared into <LETHE_HOME>/data/<Class>/raw/ first.
    candidates: list[tuple[Path, Path | None]] = []
    for r in _search_roots(root):
        candidates += [(r / cls / "raw", r), (r, None)]
    if root is None and name == "fashion-mnist":
        candidates.append((DEBIAN_FASHION, None))
    for folder, torch_root in candidates:
        looked.append(folder)
        files = _idx_files(folder)
        if files is None:
            continue
        if torch_root is not None and all(p.suffix != ".gz" for p in files.values()):
            return torch_root
        prepared = data_dir() / cls / "raw"
        _gunzip_into({k: p for k, p in files.items() if p.suffix == ".gz"}, prepared)
        for k, p in files.items():
            if p.suffix != ".gz" and p.parent != prepared:
                shutil.copyfile(p, prepared / k)
        return data_dir()
    how = {
        "fashion-mnist": "Install Debian's package (`apt-get install dataset-fashion-mnist`), or put the four IDX "
                         "files (.gz or gunzipped) in ROOT/FashionMNIST/raw/ (or ROOT itself) and pass root=ROOT "
                         "or set LETHE_DATA_ROOT.",
        "mnist-full": "Put the four MNIST IDX files (.gz or gunzipped) in ROOT/MNIST/raw/ (or ROOT itself) and pass "
                      "root=ROOT or set LETHE_DATA_ROOT (the bundled 5,000-image subset is available as 'mnist').",
    }[name]
    raise DatasetNotFound(f"{name} not found; looked in: {', '.join(str(p) for p in looked)}.", how)


@functools.lru_cache(maxsize=8)
def _idx_split(name: str, torch_root: str, train: bool) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    from torchvision.datasets import MNIST, FashionMNIST

    cls = FashionMNIST if name == "fashion-mnist" else MNIST
    ds = cls(torch_root, train=train, download=False)
    return (ds.data.unsqueeze(1).float() / 255.0, ds.targets.long(), tuple(ds.classes))


def load_idx_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None) -> ImageData:
    """Fashion-MNIST (`fashion-mnist`) or the full MNIST (`mnist-full`): official `train` (60k), `test` (10k), `all`."""
    if split not in ("train", "test", "all"):
        raise LetheError(f"unknown split {split!r} for {name}.", "Use 'train', 'test' or 'all'.")
    torch_root = str(find_idx_root(name, root))
    parts = []
    offset = 0
    for part, train in (("train", True), ("test", False)):
        x, y, classes = _idx_split(name, torch_root, train)
        if split in (part, "all"):
            parts.append((x, y, torch.arange(offset, offset + len(y))))
        offset += len(y)
    x, y, ids = (parts[0] if len(parts) == 1 else tuple(torch.cat(t) for t in zip(*parts)))
    return ImageData(name, split, x, ids, y, classes, meta={"root": torch_root})


def find_celeba_root(root: str | os.PathLike | None = None) -> Path:
    """A torchvision root holding `celeba/img_align_celeba/` and the five CelebA list files."""
    looked = []
    for r in _search_roots(root):
        folder = r / "celeba"
        looked.append(folder)
        if (folder / "img_align_celeba").is_dir() and all((folder / f).is_file() for f in _CELEBA_FILES):
            return r
    raise DatasetNotFound(
        f"celeba not found; looked in: {', '.join(str(p) for p in looked)}.",
        "Put CelebA's img_align_celeba/ folder and its list files (" + ", ".join(_CELEBA_FILES)
        + ") in ROOT/celeba/ and pass root=ROOT or set LETHE_DATA_ROOT.")


def _celeba_class():
    from torchvision.datasets import CelebA

    class LocalCelebA(CelebA):
        """torchvision's CelebA with an existence check instead of MD5s of the list files: Lethe never downloads,
        and parsing the lists still validates them (a wrong file fails to parse or has the wrong columns)."""

        def _check_integrity(self) -> bool:
            folder = Path(self.root) / self.base_folder
            return (folder / "img_align_celeba").is_dir() and all((folder / f).is_file() for f in _CELEBA_FILES)

    return LocalCelebA


@functools.lru_cache(maxsize=4)
def _celeba(torch_root: str, split: str, size: int, max_images: int | None) -> ImageData:
    from PIL import Image
    from torchvision.transforms.v2.functional import center_crop, pil_to_tensor, resize

    ds = _celeba_class()(torch_root, split=split, target_type=["attr", "identity"], download=False)
    n = len(ds.filename) if max_images is None else min(max_images, len(ds.filename))
    folder = Path(torch_root) / "celeba" / "img_align_celeba"
    x = torch.empty(n, 3, size, size)
    for i, fname in enumerate(ds.filename[:n]):
        with Image.open(folder / fname) as pil:
            img = pil_to_tensor(pil.convert("RGB"))
        crop = center_crop(img, [min(148, img.shape[1]), min(148, img.shape[2])])
        x[i] = resize(crop, [size, size], antialias=True).float() / 255.0
    partition = (Path(torch_root) / "celeba" / "list_eval_partition.txt").read_text().split("\n")
    row = {line.split()[0]: i for i, line in enumerate(filter(str.strip, partition))}
    ids = torch.tensor([row[f] for f in ds.filename[:n]])
    return ImageData("celeba", split, x, ids, attributes=ds.attr[:n].bool(),
                     attribute_names=tuple(a for a in ds.attr_names if a), identities=ds.identity[:n, 0].long(),
                     meta={"root": torch_root, "size": size, "kept": n, "in_split": len(ds.filename)})


def load_celeba(split: str = "train", root: str | os.PathLike | None = None, size: int = 64,
                max_images: int | None = 30_000) -> ImageData:
    """CelebA aligned faces with the 40 binary attributes and identities; splits `train`, `valid`, `test`, `all`."""
    if split not in ("train", "valid", "test", "all"):
        raise LetheError(f"unknown split {split!r} for celeba.", "Use 'train', 'valid', 'test' or 'all'.")
    return _celeba(str(find_celeba_root(root)), split, size, max_images)
