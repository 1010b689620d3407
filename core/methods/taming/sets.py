"""The image sets of a taming run (paper Sec. 4.1-4.3) built from a forget selection on the flow's dataset.

- D_F, the forget set: the selection's rows of the training split. An attribute expression is evaluated on the
  attribute classifier's predictions when one is given (Sec. 4.2: D_F = {x in D | C(x) = 1}), else on the labels.
- D'_F, held-out forget images: the test-split images that the same criterion picks (an identity's test images,
  the test images with the attribute or label); for picked images of people, those people's other training
  images (removed from D_R) and their test images.
- D_R, the remember pool: D \\ D_F (Sec. 4.1), or, "without the training set" (Sec. 4.3), the test split
  (`remember="test"`) or a part of it that follows a different distribution (`remember="test:attr=hat"`); the
  forget identities' images are always left out of it.
- D_R^id, held-out identities: every training image of a few random identities that are removed from the
  remember pool, so the tamer never sees them.
- D_R^NN, nearest identities: the identities whose mean identity embedding is closest (cosine) to the forget
  set's, measured with the identity classifier's embedding; their images stay in D_R.
- reference / D_R sample: two disjoint random samples of the remember pool; the first gives (mu_R, sigma_R) for
  the likelihood quantiles, the second is "random D_R images" of Table 1 and the BPD-on-D_R measurement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from core.data import ImageData, load
from core.data.selection import Selection, evaluate_expression, parse_expression, parse_spec, select, spec_limits
from core.errors import EmptySelection, LetheError
from core.models.bundles import ClassifierBundle

#: Fewer remember images than this cannot give a standard deviation worth putting a threshold on.
MIN_REMEMBER = 16


@dataclass
class TamingSets:
    """Every set a taming run trains on or measures (tensors of images in [0, 1], or N x D points)."""

    dataset: str
    forget: torch.Tensor
    remember: torch.Tensor
    reference: torch.Tensor
    remember_eval: torch.Tensor
    holdout: torch.Tensor | None = None
    identities: torch.Tensor | None = None
    neighbours: torch.Tensor | None = None
    forget_ids: list[int] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    attribute: str | None = None  # expression whose share in samples a run monitors
    labels: tuple[int, ...] | None = None  # labels whose share a run monitors
    data_share: float | None = None  # share of the training data the attribute or label selects (as judged)

    def sizes(self) -> dict[str, int]:
        out = {"forget": len(self.forget), "remember": len(self.remember), "reference": len(self.reference),
               "remember_eval": len(self.remember_eval)}
        for name in ("holdout", "identities", "neighbours"):
            value = getattr(self, name)
            out[name] = 0 if value is None else len(value)
        return out


_PREDICTED: dict[tuple, torch.Tensor] = {}


def predicted_attributes(judge: ClassifierBundle, data: ImageData) -> torch.Tensor:
    """The attribute classifier's boolean N x A predictions for `data` (cached per judge, dataset and split)."""
    key = (judge.card.name, id(judge), data.name, data.split, len(data))
    if key not in _PREDICTED:
        _PREDICTED[key] = judge.predict(data.x)
    return _PREDICTED[key]


def attribute_mask(data: ImageData, expression: str, judge: ClassifierBundle | None) -> torch.Tensor:
    """Rows where the attribute expression holds: on the judge's predictions when given, else on the labels."""
    expr = parse_expression(expression)
    if judge is not None:
        return evaluate_expression(expr, predicted_attributes(judge, data), tuple(judge.class_names))
    if data.attributes is None:
        raise LetheError(f"{data.name} has no attributes and no attribute classifier was given.",
                         "Forget by ids, label or identity on this dataset.")
    return evaluate_expression(expr, data.attributes, data.attribute_names)


def _mask(data: ImageData, selection: Selection, judge: ClassifierBundle | None) -> torch.Tensor:
    if selection.kind == "attribute" and judge is not None:
        mask = attribute_mask(data, selection.attribute, judge)
        if not bool(mask.any()):
            raise EmptySelection(f"the attribute classifier finds no image with {selection.attribute!r} in "
                                 f"{data.name}/{data.split}.", "Pick another attribute expression.")
        return mask
    return select(data, selection)


def _holdout_mask(train: ImageData, test: ImageData, selection: Selection, forget_mask: torch.Tensor,
                  judge: ClassifierBundle | None) -> tuple[torch.Tensor | None, str]:
    """Test rows the same criterion picks (D'_F), and how they were chosen."""
    if selection.kind == "identity":
        mask = torch.isin(test.identities, torch.tensor(selection.identities))
        return mask, "test-split images of the forgotten identities"
    if selection.kind == "attribute":
        return attribute_mask(test, selection.attribute, judge), f"test-split images with {selection.attribute}"
    if selection.kind == "label" and test.labels is not None:
        return torch.isin(test.labels, torch.tensor(selection.labels)), "test-split images of the forgotten labels"
    if train.identities is not None and test.identities is not None:
        ids = torch.unique(train.identities[forget_mask])
        return torch.isin(test.identities, ids), ("the other training images and the test-split images of the "
                                                  "identities in the forget set")
    try:
        test_sel = Selection(selection.dataset, "test", **{k: getattr(selection, k) for k in selection.criteria
                                                           if k != "ids"}, mode=selection.mode)
        return select(test, test_sel), "test-split images matching the forget selection"
    except (LetheError, TypeError):
        return None, "no held-out forget images for a selection of individual samples"


def _sample(rows: torch.Tensor, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(n random rows of `rows`, the others), reproducible from `gen`."""
    perm = rows[torch.randperm(len(rows), generator=gen)]
    return perm[:n], perm[n:]


_CENTROIDS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _identity_centroids(judge: ClassifierBundle, data: ImageData) -> tuple[torch.Tensor, torch.Tensor]:
    """(identity numbers, unit-norm mean embedding of each identity's images), cached per judge and data."""
    key = (judge.card.name, id(judge), data.name, data.split, len(data))
    if key not in _CENTROIDS:
        _CENTROIDS[key] = _centroids(judge, data)
    return _CENTROIDS[key]


def _centroids(judge: ClassifierBundle, data: ImageData) -> tuple[torch.Tensor, torch.Tensor]:
    feats = torch.nn.functional.normalize(judge.features(data.x).float(), dim=1)
    ids = torch.unique(data.identities)
    cents = torch.stack([feats[data.identities == i].mean(0) for i in ids])
    return ids, torch.nn.functional.normalize(cents, dim=1)


def build_sets(
    data: ImageData,
    selection: Selection,
    *,
    test: ImageData | None = None,
    remember: str = "train",
    seed: int = 0,
    eval_size: int = 500,
    heldout_identities: int = 25,
    neighbours: int = 5,
    attribute_judge: ClassifierBundle | None = None,
    identity_judge: ClassifierBundle | None = None,
) -> TamingSets:
    """Split `data` (the training split of the flow's dataset) into every set of a taming run; see the module doc.

    Raises EmptySelection for an empty forget set and LetheError when too few remember images are left."""
    if selection.split != "train":
        raise LetheError(f"taming forgets training images; the selection is on the {selection.split!r} split.",
                         "Select images of the training split (the default of --forget).")
    gen = torch.Generator().manual_seed(seed)
    forget_mask = _mask(data, selection, attribute_judge)
    if bool(forget_mask.all()):
        raise EmptySelection(f"{selection.describe()} selects all {len(data)} training images; nothing is left to "
                             "remember.", "Narrow the selection.")
    notes: dict[str, str] = {"forget": f"{selection.describe()}" + (
        " (attribute predicted by the classifier)" if selection.kind == "attribute" and attribute_judge else "")}
    if test is None:
        test = load(data.name, "test")
    holdout_mask, notes["holdout"] = _holdout_mask(data, test, selection, forget_mask, attribute_judge)
    holdout = test.x[holdout_mask] if holdout_mask is not None and bool(holdout_mask.any()) else None
    # Picked images of a person (Table 1's 1, 4, 8, 15 images of an identity): the person's other training images
    # are held out too (D'_F), never remembered, so taming cannot be told to keep the person it forgets.
    same_person = torch.zeros(len(data), dtype=torch.bool)
    if selection.kind == "ids" and data.identities is not None:
        same_person = torch.isin(data.identities, torch.unique(data.identities[forget_mask])) & ~forget_mask
        if bool(same_person.any()):
            extra = data.x[same_person]
            holdout = extra if holdout is None else torch.cat([extra, holdout])

    forget_identities = (torch.unique(data.identities[forget_mask]) if data.identities is not None
                         else torch.tensor([], dtype=torch.long))
    # Identity-level sets (only for datasets with identities, and for forget sets of a few identities).
    neighbour_ids = torch.tensor([], dtype=torch.long)
    heldout_ids = torch.tensor([], dtype=torch.long)
    identity_data = data.identities is not None and len(forget_identities) <= 50 and selection.kind != "attribute"
    if identity_data:
        if identity_judge is not None and neighbours > 0:
            ids, cents = _identity_centroids(identity_judge, data)
            target = torch.nn.functional.normalize(cents[torch.isin(ids, forget_identities)].mean(0), dim=0)
            sims = cents @ target
            sims[torch.isin(ids, forget_identities)] = -float("inf")
            neighbour_ids = ids[sims.argsort(descending=True)[:neighbours]]
            notes["neighbours"] = (f"training images of the {len(neighbour_ids)} identities nearest in "
                                   f"{identity_judge.card.name}'s embedding: {neighbour_ids.tolist()}")
        others = torch.unique(data.identities)
        others = others[~torch.isin(others, torch.cat([forget_identities, neighbour_ids]))]
        heldout_ids = others[torch.randperm(len(others), generator=gen)[:heldout_identities]]
        notes["identities"] = (f"training images of {len(heldout_ids)} random identities kept out of the remember "
                               f"set: {heldout_ids.tolist()}")

    if remember == "train":
        pool_mask = ~forget_mask & ~same_person
        if identity_data:
            pool_mask &= ~torch.isin(data.identities, heldout_ids)
        pool = data.x[pool_mask]
        notes["remember"] = "training images not in the forget set (D \\ D_F)"
    elif remember == "test" or remember.startswith("test:"):
        pool_mask = torch.ones(len(test), dtype=torch.bool)
        if remember.startswith("test:"):
            pool_mask = select(test, parse_spec(remember[5:], test.name, split="test", limits=spec_limits(test)))
        if test.identities is not None and len(forget_identities):
            pool_mask &= ~torch.isin(test.identities, forget_identities)
        if holdout_mask is not None:
            pool_mask &= ~holdout_mask  # D'_F is measured, never remembered
        pool = test.x[pool_mask]
        notes["remember"] = (f"test-split images ({remember}), not the training set (Sec. 4.3)")
    else:
        raise LetheError(f"unknown remember set {remember!r}.",
                         "Use train (D minus D_F), test, or test:SPEC such as test:attr=hat (Sec. 4.3).")
    if len(pool) < MIN_REMEMBER + 2:
        raise LetheError(f"only {len(pool)} remember images: too few to estimate the NLL standard deviation "
                         f"sigma_R the threshold is measured in.",
                         f"Use a remember set of at least {MIN_REMEMBER + 2} images (a broader selection or "
                         "remember=train).")
    rows = torch.arange(len(pool))
    n_eval = min(eval_size, len(pool) // 2)
    ref_rows, rest = _sample(rows, n_eval, gen)
    eval_rows, _ = _sample(rest, n_eval, gen)

    def by_identity(ids: torch.Tensor) -> torch.Tensor | None:
        return data.x[torch.isin(data.identities, ids)] if len(ids) else None

    labels = selection.labels if selection.kind == "label" else None
    return TamingSets(
        dataset=data.name, forget=data.x[forget_mask], remember=pool, reference=pool[ref_rows],
        remember_eval=pool[eval_rows], holdout=holdout, identities=by_identity(heldout_ids),
        neighbours=by_identity(neighbour_ids), forget_ids=data.ids[forget_mask].tolist(), notes=notes,
        attribute=selection.attribute if selection.kind == "attribute" else None, labels=labels,
        data_share=float(forget_mask.float().mean()) if selection.kind in ("attribute", "label") else None,
    )
