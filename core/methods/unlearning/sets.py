"""The sets of an image-to-image unlearning run (Li et al., ICLR 2024, Sec. 4.1, 4.3 and App. D.1).

- `forget` (D_F): the selected training images.
- `retain` (D_R): what the retain term of the loss sees, from one of three sources (`retain=`):
  `train` the real retain set (the training split minus D_F); `proxy:SPEC` a proxy retain set of as many images as
  D_F, from another dataset (`proxy:fashion-mnist` for MNIST) or from a selection of the same dataset
  (`proxy:label=9`, `proxy:identity=300-399`) that must not overlap D_F (Sec. 4.3); `limited:K` the real retain set
  cut to K images per class or identity (App. D.1; the training loop over-samples it to balance D_F).
- `eval_forget` / `eval_retain`: held-out images (the test split) of the forgotten and the kept classes or
  identities. Measurements use only these, never an image the unlearning saw.
- `eval_unseen`: for a proxy that is a selection of other classes or people of the model's own data, the held-out
  retain images of the kept classes or people the proxy never shows (None otherwise, or when fewer than
  `MIN_UNSEEN`). The paper draws its proxy from classes that are neither retain nor forget classes (Sec. 4.3), so
  these are the images on which its "retain" is measured.
- `pixel_mean` / `pixel_std`: per-channel statistics of the training split, which define the "normalised images"
  on which the noise of eq. 10 has Sigma = I.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from core.data import DATASETS, load
from core.data.base import ImageData
from core.data.selection import Selection, parse_spec, select, split_forget_retain
from core.data.user import is_data_path
from core.errors import EmptySelection, LetheError

RETAIN_SOURCES = ("train", "proxy:SPEC", "limited:K")
MIN_UNSEEN = 50  # fewer held-out images give FID no usable covariance on the judge's features


@dataclass
class UnlearnSets:
    """Forget, retain (as chosen by `retain_source`) and the held-out evaluation sets of one request."""

    selection: Selection
    forget: ImageData
    retain: ImageData
    retain_source: str
    eval_forget: ImageData
    eval_retain: ImageData
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor
    eval_unseen: ImageData | None = None

    def describe(self) -> str:
        """One line for people: what is forgotten, what is retained, what is measured."""
        unseen = (f", {len(self.eval_unseen)} of them of kept classes the proxy never shows"
                  if self.eval_unseen is not None else "")
        return (f"forget {self.selection.describe()} ({len(self.forget)} images), retain {self.retain_source} "
                f"({len(self.retain)} images); measured on {len(self.eval_forget)} + {len(self.eval_retain)} "
                f"held-out images{unseen}")


def group_column(data: ImageData) -> torch.Tensor | None:
    """Identities when the data has them (people), else labels (classes), else None."""
    return data.identities if data.identities is not None else data.labels


def heldout_mask(test: ImageData, selection: Selection, forget: ImageData) -> torch.Tensor:
    """Test images of what is forgotten: the selection applied to the test split, or, for a selection by ids
    (rows of the training split only), the test images of the classes or identities those rows belong to."""
    if selection.ids is None and selection.predicate is None:
        try:
            return select(test, replace(selection, split=test.split))
        except EmptySelection as error:
            raise EmptySelection(f"no held-out ({test.split}) images match {selection.describe()}.",
                                 "Unlearning is measured on held-out images of the forgotten classes or people; "
                                 "pick a request that has some.") from error
    groups, test_groups = group_column(forget), group_column(test)
    if groups is None or test_groups is None:
        raise LetheError(f"{selection.describe()} names training rows, and {test.name} has no labels or identities "
                         "to find held-out images of the same kind.", "Select by label or identity instead.")
    mask = torch.isin(test_groups, torch.unique(groups))
    if not bool(mask.any()):
        raise EmptySelection(f"no held-out images share a class or identity with {selection.describe()}.",
                             "Select by label or identity instead.")
    return mask


def _subsample(data: ImageData, n: int, gen: torch.Generator) -> ImageData:
    if len(data) <= n:
        return data
    return data.subset(torch.randperm(len(data), generator=gen)[:n].sort().values)


def selects_own_data(spec: str) -> bool:
    """Whether a proxy spec selects images of the model's own data (`label=9`) rather than naming another dataset."""
    return "=" in spec


def proxy_retain(spec: str, data: ImageData, forget_mask: torch.Tensor, n: int, gen: torch.Generator) -> ImageData:
    """Up to `n` proxy retain images: another dataset (a name or a data path), or a selection of `data` that does
    not overlap the forget set."""
    if not spec:
        raise LetheError("proxy: needs a dataset or a selection, e.g. proxy:fashion-mnist or proxy:label=9.",
                         "Write --retain proxy:SPEC.")
    if not selects_own_data(spec):
        if spec == data.name:
            raise LetheError(f"proxy:{spec} is the model's own training data, which includes the forget set.",
                             "Pick another dataset or a selection of other classes (proxy:label=9).")
        if spec not in DATASETS and not is_data_path(spec):
            raise LetheError(f"unknown proxy dataset {spec!r}.",
                             f"Use a dataset ({', '.join(sorted(DATASETS))}), a data folder or a selection like label=9.")
        proxy = load(spec, "train", shape=data.shape)
    else:
        mask = select(data, parse_spec(spec, data.name))
        overlap = int((mask & forget_mask).sum())
        if overlap:
            raise LetheError(f"the proxy retain set {spec!r} overlaps the forget set in {overlap} images.",
                             "A proxy retain set must hold none of the images to forget: pick other classes or people.")
        proxy = data.subset(mask)
    return replace(_subsample(proxy, n, gen), name=proxy.name)


def unseen_by_proxy(eval_retain: ImageData, proxy: ImageData) -> ImageData | None:
    """The held-out retain images whose class or person is not in `proxy` (a selection of the model's own data),
    or None when either has no classes or people, or too few such images remain."""
    groups, proxy_groups = group_column(eval_retain), group_column(proxy)
    if groups is None or proxy_groups is None:
        return None
    unseen = eval_retain.subset(~torch.isin(groups, torch.unique(proxy_groups)))
    return unseen if len(unseen) >= MIN_UNSEEN else None


def limited_retain(k: int, retain: ImageData, gen: torch.Generator) -> ImageData:
    """K images of each class or identity of the real retain set (App. D.1)."""
    groups = group_column(retain)
    if groups is None:
        idx = torch.randperm(len(retain), generator=gen)[:k]
        return retain.subset(idx.sort().values)
    picks = []
    for g in torch.unique(groups):
        rows = torch.nonzero(groups == g).flatten()
        picks.append(rows[torch.randperm(len(rows), generator=gen)[:k]])
    return retain.subset(torch.cat(picks).sort().values)


def build_sets(data: ImageData, test: ImageData, selection: Selection, retain: str = "train", seed: int = 0,
               eval_size: int = 500) -> UnlearnSets:
    """The sets of one request; `eval_size` caps each held-out set (a seeded random subset)."""
    if not data.is_image:
        raise LetheError(f"{data.name} holds points, not images.", "Image-to-image unlearning needs images.")
    forget, rest = split_forget_retain(data, selection)  # empty or all-covering selections fail here
    forget_mask = select(data, selection)
    if len(test) == 0:
        raise LetheError(f"{data.name} has no held-out images to measure unlearning on.",
                         "Use a dataset with a test split (mnist, synthfaces) or keep held-out images aside.")
    gen = torch.Generator().manual_seed(seed)
    source, _, arg = retain.partition(":")
    if source == "train" and not arg:
        kept = rest
    elif source == "proxy":
        kept = proxy_retain(arg.strip(), data, forget_mask, len(forget), gen)
    elif source == "limited":
        try:
            k = int(arg)
        except ValueError:
            k = 0
        if k < 1:
            raise LetheError(f"bad retain source {retain!r}: limited needs K >= 1 images per class.",
                             "Write --retain limited:5.")
        kept = limited_retain(k, rest, gen)
    else:
        raise LetheError(f"unknown retain source {retain!r}.", f"Use one of: {', '.join(RETAIN_SOURCES)}.")
    held = heldout_mask(test, selection, forget)
    if bool(held.all()):
        raise EmptySelection(f"every held-out image matches {selection.describe()}; no retain images to measure.",
                             "Narrow the selection.")
    eval_forget = _subsample(test.subset(held), eval_size, gen)
    eval_retain = _subsample(test.subset(~held), eval_size, gen)
    unseen = unseen_by_proxy(eval_retain, kept) if source == "proxy" and selects_own_data(arg) else None
    dims = (0, 2, 3)
    return UnlearnSets(selection, forget, kept, retain, eval_forget, eval_retain,
                       data.x.mean(dims), data.x.std(dims).clamp_min(1e-3), unseen)
