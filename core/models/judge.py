"""Judges: the classifier a method's verdicts are read with, named by a *judge spec* (`--judge SPEC`).

A judge spec is a model spec for a classifier: a zoo name (`mnist-lenet`), a saved model folder, or
`package.module:factory` returning a `ClassifierBundle`. The judge decides invalidity (label and attribute sets),
IS and FID are computed on its features and named for it (`FID[my-judge]`), and attribute sets read its
sigmoids. Checked here, before any data is loaded or any sample drawn: that the spec is a classifier, that it
exposes the feature layer IS/FID need (`net.features`, `net.head_logits`), and that it reads images of the
generative model's shape.
"""

from __future__ import annotations

import torch

from core.errors import LetheError, ShapeMismatch
from core.models.bundles import ClassifierBundle

JUDGE_HINT = ("--judge takes a classifier: a zoo name such as mnist-lenet, a saved classifier folder, or "
              "package.module:factory returning a ClassifierBundle (see examples/README.md).")


def check_judge(judge: ClassifierBundle, spec: str, data_shape: tuple[int, ...] | None = None) -> ClassifierBundle:
    """`judge` if it can judge samples of `data_shape`; a LetheError naming what is missing otherwise."""
    if not isinstance(judge, ClassifierBundle):
        raise LetheError(f"the judge {spec!r} is a {judge.family} model, not a classifier.", JUDGE_HINT)
    missing = [name for name in ("features", "head_logits") if not callable(getattr(judge.net, name, None))]
    if missing:
        raise LetheError(f"the judge {spec!r} has no {' or '.join(missing)} method, which IS/FID features need.",
                         "Give its network features(x) -> feature vectors and head_logits(h) -> logits, with "
                         "forward(x) = head_logits(features(x)) (see examples/README.md).")
    judged = tuple(judge.card.data_shape)
    if data_shape is not None and judged and judged != tuple(data_shape):
        raise ShapeMismatch(f"the judge {spec!r} reads {'x'.join(map(str, judged))} images but the model makes "
                            f"{'x'.join(map(str, data_shape))}.",
                            "Pass a --judge trained on images of the model's shape.")
    return judge


def load_judge(spec: str, device: torch.device | str = "cpu",
               data_shape: tuple[int, ...] | None = None) -> ClassifierBundle:
    """The classifier `spec` names, checked to judge samples of `data_shape` (see `check_judge`)."""
    from core.models.spec import load_model

    return check_judge(load_model(spec, device), spec, data_shape)
