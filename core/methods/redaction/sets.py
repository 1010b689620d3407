"""Redaction sets: the region Omega a GAN must stop generating, described the paper's three ways (Sec. II-B).

A `RedactionSet` carries up to three descriptions of the same Omega:

- `validity(x) -> bool` (True = valid), the paper's v(x) with Omega = {x : v(x) = 0}. Every set has one: it is
  what invalidity is measured with, and what the validity-based algorithm (Alg. 2) queries;
- `classifier(x) -> f(x) in [0, 1]`, differentiable, with Omega = {x : f(x) < tau}: what the classifier-based
  algorithm (Alg. 3) guides the discriminator with (eq. 6);
- `members(data) -> bool mask`: the training samples the description names, X ∩ Omega, which the data-based
  algorithm (Alg. 1) treats as fake.

Builders for the kinds a user picks: a label (`label_set`), samples by id or identity (`selection_set`, judged by
nearest neighbours in a classifier's feature space), an attribute expression (`attribute_set`), boundary
artifacts (`boundary_set`, App. F-A), label ambiguity (`ambiguity_set`, App. F-B), and any predicate through
`RedactionSet(...)` itself. `union` redacts several sets at once (Sec. III-D: minimum of validity functions or
classifiers). `parse_redaction_spec` reads the command line's `--forget`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn import functional as F

from core.data.base import ImageData
from core.data.selection import (Expr, ExpressionError, Selection, attribute_index, evaluate_expression,
                                 load_selection, parse_expression, parse_spec, select, spec_limits)
from core.errors import EmptySelection, LetheError
from core.validate import number
from core.models.bundles import ClassifierBundle

Images = torch.Tensor
ALGORITHMS = ("data", "validity", "classifier")


@dataclass
class RedactionSet:
    """Omega, described by a validity function and, where available, a classifier and its training members.

    `validity` and `classifier` take images in [0, 1] (or raw points for toys) on any device; `classifier` must
    be differentiable in its input for Alg. 3. `members` returns a bool mask over a dataset's rows."""

    name: str
    validity: Callable[[Images], torch.Tensor]
    classifier: Callable[[Images], torch.Tensor] | None = None
    members: Callable[[ImageData], torch.Tensor] | None = None

    @torch.no_grad()
    def invalid(self, x: Images, batch_size: int = 1000) -> torch.Tensor:
        """Bool mask (on the CPU): True where v(x) = 0, i.e. x lies in Omega."""
        flags = [~self.validity(x[i : i + batch_size]).bool().cpu() for i in range(0, len(x), batch_size)]
        return torch.cat(flags) if flags else torch.zeros(0, dtype=torch.bool)

    @torch.no_grad()
    def scores(self, x: Images, batch_size: int = 1000) -> torch.Tensor:
        """f(x) for every row (on the CPU); requires a classifier."""
        if self.classifier is None:
            raise LetheError(f"the redaction set {self.name!r} has no classifier f.",
                             "Use the data- or validity-based algorithm, or build the set with a classifier.")
        return torch.cat([self.classifier(x[i : i + batch_size]).cpu() for i in range(0, len(x), batch_size)])

    def training_omega(self, data: ImageData, algorithm: str, tau: float) -> torch.Tensor:
        """X ∩ Omega as each algorithm defines it: the named members (Alg. 1), {x in X : v(x) = 0} (Alg. 2, the
        initial Omega'), or {x in X : f(x) < tau} (Alg. 3)."""
        if algorithm == "data":
            if self.members is None:
                raise LetheError(
                    f"the redaction set {self.name!r} is a rule on generated samples, not a set of training samples, "
                    "so the data-based algorithm (Alg. 1) has nothing to redact with.",
                    "Use --algorithm validity or classifier for this set.")
            return self.members(data).bool().cpu()
        if algorithm == "validity":
            return self.invalid(data.x)
        if algorithm == "classifier":
            return self.scores(data.x) < tau
        raise LetheError(f"unknown redaction algorithm {algorithm!r}.", f"Use one of {', '.join(ALGORITHMS)}.")


def union(sets: list[RedactionSet]) -> RedactionSet:
    """Omega = union of the sets' Omegas (Sec. III-D): v(x) = min_k v_k(x), f(x) = min_k f_k(x), members OR-ed.

    The union has a classifier (members) only when every part has one."""
    if not sets:
        raise EmptySelection("no redaction set given.", "Pick at least one set to redact, e.g. label=0.")
    if len(sets) == 1:
        return sets[0]

    def validity(x: Images) -> torch.Tensor:
        valid = sets[0].validity(x).bool()
        for s in sets[1:]:
            valid = valid & s.validity(x).bool()
        return valid

    def classifier(x: Images) -> torch.Tensor:
        return torch.stack([s.classifier(x) for s in sets]).min(0).values  # type: ignore[misc]

    def members(data: ImageData) -> torch.Tensor:
        mask = sets[0].members(data).bool()  # type: ignore[misc]
        for s in sets[1:]:
            mask = mask | s.members(data).bool()  # type: ignore[misc]
        return mask

    return RedactionSet(
        " ∪ ".join(s.name for s in sets), validity,
        classifier if all(s.classifier is not None for s in sets) else None,
        members if all(s.members is not None for s in sets) else None,
    )


def _frozen(judge: ClassifierBundle) -> ClassifierBundle:
    """The judge in eval mode with gradients off for its weights (gradients still flow to its input)."""
    judge.eval()
    for p in judge.net.parameters():
        p.requires_grad_(False)
    return judge


def _on(judge: ClassifierBundle, x: Images) -> Images:
    return x.to(judge.device)


def label_set(label: int, judge: ClassifierBundle) -> RedactionSet:
    """Samples of class `label` (Sec. IV-A): v(x) = 1{argmax_i logit(x)_i != y}, f(x) = 1 - softmax(logit(x))_y,
    members = training samples whose true label is y."""
    judge = _frozen(judge)
    if not 0 <= label < len(judge.class_names):
        raise LetheError(f"label {label} is not one of {judge.card.name}'s {len(judge.class_names)} classes.",
                         f"Pick a label from 0 to {len(judge.class_names) - 1}.")
    name = judge.class_names[label]
    return RedactionSet(
        f"label {label}" + (f" ({name})" if name != str(label) else ""),
        validity=lambda x: judge.net(_on(judge, x)).argmax(1) != label,
        classifier=lambda x: 1.0 - judge.net(_on(judge, x)).softmax(1)[:, label],
        members=lambda data: _true_labels(data) == label,
    )


def _true_labels(data: ImageData) -> torch.Tensor:
    if data.labels is None:
        raise LetheError(f"{data.name} has no labels.", "Redact a label only on a labelled dataset.")
    return data.labels


def fuzzy_expression(expr: Expr, probs: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """Soft truth of an attribute expression from per-attribute probabilities (N x A): Zadeh's fuzzy logic,
    not = 1 - p, and = min, or = max. It is differentiable almost everywhere and crosses 0.5 exactly where the
    hard expression on `probs > 0.5` changes value, so f = 1 - truth with tau = 0.5 matches the validity rule."""
    op = expr[0]
    if op == "attr":
        return probs[:, attribute_index(expr[1], names)]  # type: ignore[arg-type]
    if op == "not":
        return 1.0 - fuzzy_expression(expr[1], probs, names)  # type: ignore[arg-type]
    left, right = fuzzy_expression(expr[1], probs, names), fuzzy_expression(expr[2], probs, names)  # type: ignore[misc]
    return torch.minimum(left, right) if op == "and" else torch.maximum(left, right)


def attribute_set(expression: str, judge: ClassifierBundle) -> RedactionSet:
    """Samples whose attributes satisfy `expression` (e.g. `glasses & ~smile`), judged by an attribute classifier:
    v(x) = not expr(sigmoid(logits) > 0.5), f(x) = 1 - fuzzy truth of expr; members use the data's attributes."""
    judge = _frozen(judge)
    if judge.kind != "attributes":
        raise LetheError(f"{judge.card.name} is not an attribute classifier.", "Use e.g. synthfaces-attributes.")
    expr = parse_expression(expression)
    names = tuple(judge.class_names)
    fuzzy_expression(expr, torch.zeros(1, len(names)), names)  # unknown names fail here, before any run starts

    def members(data: ImageData) -> torch.Tensor:
        if data.attributes is None:
            raise ExpressionError(f"{data.name} has no attributes.", "Attribute sets need an attributed dataset.")
        return evaluate_expression(expr, data.attributes, tuple(data.attribute_names))

    return RedactionSet(
        f"attr {expression}",
        validity=lambda x: fuzzy_expression(expr, torch.sigmoid(judge.net(_on(judge, x))), names) <= 0.5,
        classifier=lambda x: 1.0 - fuzzy_expression(expr, torch.sigmoid(judge.net(_on(judge, x))), names),
        members=members,
    )


def selection_set(selection: Selection, data: ImageData, embed: Callable[[Images], torch.Tensor],
                  name: str | None = None) -> RedactionSet:
    """Training samples picked by id, identity or any saved selection, extended to generated samples by their
    nearest neighbours: x is in Omega when its nearest training sample (in the feature space `embed`) is a
    selected one (a tie counts as selected: a removal request errs on the side of removing). The classifier is the soft version f(x) = d_F(x) / (d_F(x) + d_R(x)) with d_F, d_R the distances
    to the nearest selected and nearest other training sample, so f < 1/2 exactly when v(x) = 0."""
    mask = select(data, selection)
    if bool(mask.all()):
        raise EmptySelection(f"{selection.describe()} selects every training sample.",
                             "Redaction keeps the rest of the data; narrow the selection.")
    with torch.no_grad():
        feats = torch.cat([embed(data.x[i : i + 1000]) for i in range(0, len(data), 1000)])
    forget_f, retain_f = feats[mask], feats[~mask]
    ids = set(data.ids[mask].tolist())

    def distances(x: Images) -> tuple[torch.Tensor, torch.Tensor]:
        e = embed(x)
        d_f = torch.cdist(e, forget_f.to(e.device)).min(1).values
        d_r = torch.cdist(e, retain_f.to(e.device)).min(1).values
        return d_f, d_r

    def validity(x: Images) -> torch.Tensor:
        d_f, d_r = distances(x)
        return d_f > d_r

    def classifier(x: Images) -> torch.Tensor:
        d_f, d_r = distances(x)
        return d_f / (d_f + d_r).clamp_min(1e-12)

    def members(d: ImageData) -> torch.Tensor:
        return torch.tensor([int(i) in ids for i in d.ids], dtype=torch.bool)

    return RedactionSet(name or selection.describe(), validity, classifier, members)


def embedding_for(judge: ClassifierBundle | None) -> Callable[[Images], torch.Tensor]:
    """The feature map nearest-neighbour sets use: the judge's feature layer (L2-normalised for an identity
    embedding, which was trained for cosine similarity), or the raw flattened input when there is no judge."""
    if judge is None:
        return lambda x: x.flatten(1)
    judge = _frozen(judge)
    if judge.kind == "embedding":
        return lambda x: F.normalize(judge.net.features(_on(judge, x)), dim=1)
    return lambda x: judge.net.features(_on(judge, x))


def boundary_mask(shape: tuple[int, ...], margin: int) -> torch.Tensor:
    """App. F-A's boundary pixels: rows or columns within `margin` of the image border (H x W bool)."""
    _, h, w = shape
    if not 1 <= margin < min(h, w) // 2:
        raise LetheError(f"margin {margin} does not fit a {h}x{w} image.", "Use a margin of 1 or 2 pixels.")
    mask = torch.zeros(h, w, dtype=torch.bool)
    mask[:margin], mask[-margin:], mask[:, :margin], mask[:, -margin:] = True, True, True, True
    return mask


#: App. F-A's thresholds for MNIST in [0, 1]; Lethe raises them to the training maximum when that is higher.
PAPER_BOUNDARY_THRESHOLD = {1: 4.25, 2: 10.0}


def boundary_set(data: ImageData, margin: int = 1, threshold: float | None = None) -> RedactionSet:
    """Boundary artifacts (App. F-A): v(x) = 1{sum of boundary pixels < tau_b}, summed over channels.

    tau_b defaults to the paper's value for the margin, raised when needed to just above the largest boundary sum
    of any training image, so that, as the paper requires, no training image is invalid on Lethe's [0, 1] scale.
    The classifier is a logistic ramp f(x) = sigmoid(4 (tau_b - S(x)) / tau_b), below 1/2 exactly when S > tau_b."""
    if not data.is_image:
        raise LetheError("boundary artifacts are defined for images.", "Pick an image GAN.")
    mask = boundary_mask(data.shape, margin)
    train_max = float((data.x * mask).sum((1, 2, 3)).max())
    tau_b = threshold if threshold is not None else max(PAPER_BOUNDARY_THRESHOLD.get(margin, 0.0), train_max + 1e-3)
    if tau_b <= train_max:
        raise LetheError(f"threshold {tau_b:g} makes training images invalid (their boundary sums reach "
                         f"{train_max:.3g}).", f"Use a threshold above {train_max:.3g} or leave it to Lethe.")

    def boundary_sum(x: Images) -> torch.Tensor:
        return (x * mask.to(x.device)).sum((1, 2, 3))

    return RedactionSet(
        f"boundary artifacts (margin {margin}, tau_b {tau_b:.3g})",
        validity=lambda x: boundary_sum(x) < tau_b,
        classifier=lambda x: torch.sigmoid(4.0 * (tau_b - boundary_sum(x)) / tau_b),
        members=lambda d: (d.x * mask).sum((1, 2, 3)) >= tau_b,
    )


def ambiguity_set(judge: ClassifierBundle, tau: float = 0.5) -> RedactionSet:
    """Label ambiguity (App. F-B): f(x) = 1 - Entropy(softmax(logit(x))) / log(#classes), Omega = {f(x) < tau}.
    Members are the training images the judge finds as ambiguous (data deletion's baseline removes them)."""
    judge = _frozen(judge)
    log_c = math.log(len(judge.class_names))

    def certainty(x: Images) -> torch.Tensor:
        logp = judge.net(_on(judge, x)).log_softmax(1)
        return 1.0 + (logp.exp() * logp).sum(1) / log_c

    return RedactionSet(f"label ambiguity (tau {tau:g})", validity=lambda x: certainty(x) >= tau,
                        classifier=certainty, members=lambda d: certainty(d.x) < tau)


# --- the command line's --forget ------------------------------------------------------------------------------


@dataclass
class Judges:
    """The zoo classifiers a GAN's redaction sets are judged by (None where its dataset has none)."""

    labels: ClassifierBundle | None = None
    attributes: ClassifierBundle | None = None
    embedding: ClassifierBundle | None = None

    def need(self, kind: str, what: str) -> ClassifierBundle:
        judge = getattr(self, kind)
        if judge is None:
            raise LetheError(f"{what} needs a {kind} classifier as judge and none is known for this data.",
                             "Pass --judge SPEC (a classifier: zoo name, saved folder or package.module:factory), "
                             "or redact by ids=... / saved=NAME, which need no judge.")
        return judge


def from_selection(selection: Selection, data: ImageData, judges: Judges, name: str | None = None) -> RedactionSet:
    """The redaction set a forget-set selection names: labels and attribute expressions keep their classifier
    rules (one label set per label, unioned); ids, identities and mixed selections become nearest-neighbour sets."""
    if selection.criteria == ("labels",) and judges.labels is not None:
        return union([label_set(y, judges.labels) for y in selection.labels])  # type: ignore[union-attr]
    if selection.criteria == ("attribute",) and judges.attributes is not None:
        return attribute_set(selection.attribute, judges.attributes)  # type: ignore[arg-type]
    if name is None and selection.ids is not None and len(selection.ids) > 6:
        shown = ",".join(str(i) for i in selection.ids[:4])
        name = f"{len(selection.ids)} samples of {selection.dataset} (ids {shown},...)"
    return selection_set(selection, data, embedding_for(judges.embedding or judges.labels), name)


def parse_redaction_spec(spec: str, data: ImageData, judges: Judges, tau: float = 0.5) -> RedactionSet:
    """Parse `--forget`: parts joined by ` + ` are redacted together (their union). A part is a forget-set spec
    (`label=0`, `label=0,1`, `ids=1,5-9`, `identity=17`, `attr=glasses & ~smile`, `saved=NAME`), `boundary` or
    `boundary=MARGIN` (boundary artifacts), or `ambiguity` (label ambiguity at the classifier threshold tau, the
    same tau the classifier-based algorithm uses)."""
    parts = [p.strip() for p in spec.split(" + ") if p.strip()]
    if not parts:
        raise EmptySelection("the forget spec is empty.", "Pass e.g. --forget label=0 or --forget boundary=1.")
    sets = []
    for part in parts:
        key, _, value = part.partition("=")
        key = key.strip().lower()
        if key == "boundary":
            margin = number(value, "boundary=MARGIN", int, 1, max(1, min(data.shape[-2:]) // 2)) if value.strip() else 1
            sets.append(boundary_set(data, margin))
        elif key == "ambiguity":
            if value.strip() and number(value, "ambiguity=TAU", float, 0, 1, True, True) != tau:  # one tau: Omega = {f < tau} must be what invalidity measures
                raise LetheError(f"ambiguity={value} disagrees with the classifier threshold tau = {tau:g}.",
                                 "Set the threshold once, with --tau (the page's τ), and write just 'ambiguity'.")
            sets.append(ambiguity_set(judges.need("labels", "label ambiguity"), tau))
        elif key == "saved":
            sets.append(from_selection(load_selection(value.strip()), data, judges, f"forget set {value.strip()}"))
        else:
            sets.append(from_selection(parse_spec(part, dataset=data.name, split=data.split,
                                                                 limits=spec_limits(data)), data, judges))
    return union(sets)
