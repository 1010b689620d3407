"""The data and judges of one method call, resolved the same way by every method (DESIGN.md: "Every method takes
the three: model, data, judge").

- Training data: the user's data spec (`--data DIR|FILE.npz`, the sidebar's "Training data") fitted to the
  model's data shape, else the dataset the model's card names.
- Held-out data: for the card's dataset, its test split; for the user's data, the user's held-out images
  (`--heldout`, images the model was NOT trained on), else an empty test split: a method that measures on
  held-out images says so before anything is loaded (`need_heldout`).
- Judges: the zoo's classifiers of the data when it is a dataset Lethe knows (a zoo judge reads the zoo's images,
  not the user's), with the user's `--judge` in the role of its kind (labels, attributes or embedding).

Each check here reads only the specs and the model's card, so a doomed command fails in seconds, naming the
missing piece as a command-line flag.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from core.data import DATASETS, ImageData, load
from core.data.user import load_heldout
from core.errors import LetheError
from core.models.bundles import Bundle, ClassifierBundle
from core.zoo.lookup import card_dataset, zoo_classifier

JUDGE_KINDS = ("labels", "attributes", "embedding")
DATA_HINT = "Pass --data DIR|FILE.npz (your training images), or pick the data in the sidebar."
HELDOUT_HINT = ("Pass --heldout DIR|FILE.npz: images of the same kind the model was NOT trained on, in the "
                "training data's layout (the sidebar's 'Held-out images').")


def data_requirement(bundle: Bundle, data: str | None = None) -> list[str]:
    """What a method that reads the model's training images lacks: the data (empty when the user gave `data` or
    the card names a dataset)."""
    if data is None and card_dataset(bundle.card) is None:
        return ["its card names no training dataset: pass --data DIR|FILE.npz"]
    return []


def check_data(bundle: Bundle, data: str | None, verb: str) -> None:
    """Fail (before loading anything) when `verb` would need the model's training images and none are known."""
    if data_requirement(bundle, data):
        raise LetheError(f"the card of {bundle.card.name!r} names no training dataset, and {verb} needs one.",
                         DATA_HINT)


def heldout_needs_data(data: str | None, heldout: str | None) -> None:
    """Refuse held-out images given without the training images they belong to."""
    if heldout is not None and data is None:
        raise LetheError("held-out images (--heldout) are given without the training images they belong to.",
                         "Pass --data too; the zoo's datasets have their own held-out split.")


def need_heldout(data: str | None, heldout: str | None, verb: str, why: str) -> None:
    """Fail (before loading anything) when `verb` measures `why` on held-out images and the user's data (`data`)
    comes without `heldout`; a dataset Lethe knows has its own test split. Also refuses held-out images given
    without the training images they belong to."""
    heldout_needs_data(data, heldout)
    if data is not None and heldout is None and data not in DATASETS:
        raise LetheError(f"{verb} measures {why} on held-out images, and your data ({data}) has none.", HELDOUT_HINT)


def training_data(bundle: Bundle, data: str | None = None, verb: str = "this method") -> ImageData:
    """The model's training set: the user's data spec `data` (a folder, .zip or .npz, fitted to the model's
    shape), else the dataset its card names."""
    check_data(bundle, data, verb)
    return load(data or card_dataset(bundle.card), "train", shape=bundle.data_shape)


def user_data(spec: str, bundle: Bundle, heldout: str | None = None) -> tuple[ImageData, ImageData]:
    """(train, test) for the user's data spec: every image is training data; the test split is the user's
    held-out images (`heldout`), else empty."""
    data = load(spec, "train", shape=bundle.data_shape)
    if heldout is not None:
        return data, load_heldout(heldout, data)
    return data, replace(data.subset(torch.zeros(len(data), dtype=torch.bool)), split="test")


def train_and_test(bundle: Bundle, data: str | None = None, heldout: str | None = None,
                   verb: str = "this method") -> tuple[ImageData, ImageData]:
    """(train, test): the user's data and held-out images (`user_data`), else the card dataset's two splits."""
    if data is not None and data not in DATASETS:
        return user_data(data, bundle, heldout)
    train = training_data(bundle, data, verb)
    return train, load(train.name, "test", shape=bundle.data_shape)


def zoo_judges(dataset: str | None, device: torch.device | str = "cpu") -> dict[str, ClassifierBundle]:
    """The shipped zoo classifiers trained on `dataset`, by kind ("labels", "attributes", "embedding")."""
    from core.models.spec import load_model

    names = {kind: zoo_classifier(dataset, kind) for kind in JUDGE_KINDS} if dataset else {}
    return {kind: load_model(name, device) for kind, name in names.items() if name}  # type: ignore[misc]


def known_judges(dataset: str | None, device: torch.device | str = "cpu", judge: str | None = None,
                 data_shape: tuple[int, ...] | None = None) -> dict[str, ClassifierBundle]:
    """The zoo's judges of `dataset` (a Lethe dataset name; None for the user's images) with the user's `judge`
    spec, checked to read images of `data_shape`, in the role of its kind."""
    from core.models.judge import load_judge

    found = zoo_judges(dataset if dataset in DATASETS else None, device)
    if judge is not None:
        own = load_judge(judge, device, data_shape)
        found[own.kind] = own
    return found


def judges_for(bundle: Bundle, data: str | None = None, judge: str | None = None,
               device: torch.device | str | None = None) -> dict[str, ClassifierBundle]:
    """The judges of a method call on `bundle` with the user's `data` and `judge` specs (see `known_judges`)."""
    dataset = card_dataset(bundle.card) if data is None else data
    return known_judges(dataset, device if device is not None else bundle.device, judge, tuple(bundle.data_shape))


def need_judge(judges: dict[str, ClassifierBundle], kinds: tuple[str, ...], what: str, verb: str,
               alternative: str = "") -> ClassifierBundle:
    """The first judge of `kinds` among `judges`; a LetheError naming `what` it is needed for when there is none."""
    for kind in kinds:
        if judges.get(kind) is not None:
            return judges[kind]
    kind_words = " or ".join({"labels": "a label classifier", "attributes": "an attribute classifier",
                              "embedding": "an identity embedding"}[k] for k in kinds)
    raise LetheError(f"{verb} needs {kind_words} as judge for {what}, and none is known for this data.",
                     "Pass --judge SPEC (zoo name, saved classifier folder or package.module:factory)"
                     + (f", or {alternative}" if alternative else "") + ".")


def input_params(data: str | None = None, judge: str | None = None, heldout: str | None = None) -> dict[str, str]:
    """What a run's config.json records about the user's inputs (only the ones given)."""
    return {k: v for k, v in (("data", data), ("heldout", heldout), ("judge", judge)) if v}


def input_flags(data: str | None = None, judge: str | None = None, heldout: str | None = None) -> list[str]:
    """`--data D --heldout H --judge J` words of an equivalent command (only the ones given)."""
    return [w for key, value in input_params(data, judge, heldout).items() for w in (f"--{key}", value)]


__all__ = ["DATA_HINT", "HELDOUT_HINT", "JUDGE_KINDS", "check_data", "data_requirement", "heldout_needs_data",
           "input_flags",
           "input_params", "judges_for", "known_judges", "need_heldout", "need_judge", "train_and_test",
           "training_data", "user_data", "zoo_judges"]
