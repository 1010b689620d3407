"""The GOLD estimator (Mo et al., NeurIPS 2019, Sec. 3.1 and 3.2): how much a conditional GAN under- or
over-represents a sample, from its discriminator's two heads.

For a sample x of class c, with D_G the real/fake head (a logit l(x)) and D_C the auxiliary classifier
(class logits), eq. 2 splits log p_data(x, c) / p_g(x, c) into a marginal and a conditional part:

- marginal term   log D_G(x) / (1 - D_G(x)) = l(x)            (exactly the logit: no sigmoid, no log of 0)
- conditional term log D_C(c | x) = log_softmax(D_C(x))[c]     (log-sum-exp form, finite for any finite logits)

Eq. 3:  d(x, c) = marginal + conditional for a generated sample, marginal - conditional for a real one.
Eq. 4:  d_bal uses (sigma_G / sigma_C) * conditional, the standard deviations of both terms measured on a named
        sample (`balance_ratio`), because the marginal term's scale dwarfs the conditional one (Fig. 1a).
Eq. 8:  d_unlabel(x) = marginal + H[D_C(. | x)] for a real image whose label is unknown (entropy, in nats).
Eq. 9:  d_unlabel-bal(x) = marginal + (sigma_G / sigma_C) H[D_C(. | x)].

`GoldScores` always keeps the two parts apart; `gold(ratio)` is their (balanced) sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from core.errors import LetheError, NonFiniteError, ShapeMismatch
from core.models.bundles import GANBundle

KINDS = ("generated", "real", "unlabeled")
"""What the scored samples are: generated with their conditioning class, real with their true label, or real
without a label (eq. 8-9)."""


@dataclass(frozen=True)
class GoldScores:
    """Per-sample marginal and conditional terms of the GOLD estimator.

    `conditional` holds log D_C(c | x) for `generated` and `real` samples and the entropy H[D_C(. | x)] for
    `unlabeled` ones; `labels` are the classes the terms were taken at (None for unlabeled samples)."""

    marginal: torch.Tensor
    conditional: torch.Tensor
    labels: torch.Tensor | None
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LetheError(f"GOLD scores are for {', '.join(KINDS)} samples, not {self.kind!r}.",
                             "Pick one of those kinds.")
        check_finite(self.marginal, "marginal term")
        check_finite(self.conditional, "conditional term")

    def __len__(self) -> int:
        return len(self.marginal)

    @property
    def sign(self) -> float:
        """+1 for generated and unlabeled samples (eq. 3 top, eq. 8), -1 for real labelled ones (eq. 3 bottom)."""
        return -1.0 if self.kind == "real" else 1.0

    def gold(self, ratio: float = 1.0) -> torch.Tensor:
        """d (eq. 3 / 8) with `ratio = 1`, d_bal (eq. 4 / 9) with `ratio = sigma_G / sigma_C`."""
        return self.marginal + self.sign * ratio * self.conditional

    def balance_ratio(self) -> float:
        """sigma_G / sigma_C measured on these samples (eq. 4)."""
        return balance_ratio(self.marginal, self.conditional)

    def subset(self, index: torch.Tensor) -> "GoldScores":
        return GoldScores(self.marginal[index], self.conditional[index],
                          None if self.labels is None else self.labels[index], self.kind)

    def table(self, ratio: float = 1.0):
        """A pandas DataFrame with one row per sample: label, marginal, conditional, gold (and gold_balanced
        when `ratio` != 1)."""
        import pandas as pd

        columns = {"label": self.labels.tolist() if self.labels is not None else [None] * len(self),
                   "marginal": self.marginal.tolist(), "conditional": self.conditional.tolist(),
                   "gold": self.gold().tolist()}
        if ratio != 1.0:
            columns["gold_balanced"] = self.gold(ratio).tolist()
        return pd.DataFrame(columns)


def check_finite(values: torch.Tensor, what: str) -> None:
    """Raise NonFiniteError naming how many of `values` are NaN or infinite."""
    bad = int((~torch.isfinite(values)).sum())
    if bad:
        raise NonFiniteError(f"GOLD: {bad} of {len(values)} values of the {what} are NaN or infinite.",
                             "The discriminator returned non-finite logits: check the model's weights and inputs.")


def balance_ratio(marginal: torch.Tensor, conditional: torch.Tensor) -> float:
    """sigma_G / sigma_C of eq. 4 and 9, the standard deviations of both terms over the same samples."""
    if len(marginal) < 2:
        raise LetheError("GOLD: the balance ratio sigma_G / sigma_C needs at least 2 samples.",
                         "Measure it on a larger sample (the burn-in).")
    sigma_g, sigma_c = float(marginal.std()), float(conditional.std())
    if not sigma_c > 0:
        raise LetheError("GOLD: the conditional term does not vary over the sample (sigma_C = 0), so eq. 4 cannot "
                         "balance it.", "Use the plain estimator (ratio 1) or measure on more varied samples.")
    return sigma_g / sigma_c


def check_gold_model(gan: GANBundle) -> None:
    """Raise unless `gan` is a conditional GAN whose discriminator has an auxiliary classifier head with one
    logit per class (GOLD needs D_G and D_C)."""
    name = gan.card.name
    if not isinstance(gan, GANBundle):
        raise LetheError(f"GOLD works on conditional GANs; {name!r} is a {gan.family}.",
                         "Pick a conditional GAN with an auxiliary classifier: mnist-acgan, fashion-acgan, toy-acgan.")
    if not gan.conditional:
        raise LetheError(f"GOLD needs a conditional GAN; {name!r} is unconditional (it takes no class).",
                         "Pick a conditional GAN with an auxiliary classifier: mnist-acgan, fashion-acgan, toy-acgan.")
    if gan.discriminator is None:
        raise LetheError(f"GOLD needs the discriminator, and {name!r} was saved without one.",
                         "Load the model saved with its discriminator.")
    probe, _ = gan.sample(1, seed=0)
    with torch.no_grad():
        _, class_logits = gan.discriminate(probe.to(gan.device))
    if class_logits is None:
        raise LetheError(f"GOLD needs an auxiliary classifier head D_C; the discriminator of {name!r} returns only "
                         "a real/fake logit.", "Use an ACGAN-style model whose D returns (logit, class logits).")
    if class_logits.shape[-1] != gan.num_classes:
        raise ShapeMismatch(f"the classifier head of {name!r} has {class_logits.shape[-1]} outputs for "
                            f"{gan.num_classes} classes.", "Its D_C must give one logit per class.")


def check_classes(gan: GANBundle, labels: torch.Tensor | int) -> torch.Tensor:
    """Labels as a long tensor, or a clear error when one is outside 0..num_classes-1."""
    labels = torch.as_tensor(labels).long().reshape(-1)
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= gan.num_classes):
        bad = labels[(labels < 0) | (labels >= gan.num_classes)][0]
        raise LetheError(f"class {int(bad)} is out of range: {gan.card.name!r} has classes 0..{gan.num_classes - 1}.",
                         "Pick a class index in that range.")
    return labels


@torch.no_grad()
def discriminator_heads(gan: GANBundle, x: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(real/fake logits (N,), class logits (N, K)) for inputs `x` in [0, 1], on the CPU, in eval mode. The batches'
    outputs stay on the device until the last one: two copies to the host per call, not two per batch."""
    gan.eval()
    logits, classes = [], []
    for start in range(0, len(x), batch_size):
        logit, cls = gan.discriminate(x[start:start + batch_size].to(gan.device))
        logits.append(logit.float())
        classes.append(cls.float())
    if not logits:
        raise LetheError("GOLD: there are no samples to score.", "Pass at least one sample.")
    return torch.cat(logits).cpu(), torch.cat(classes).cpu()


def terms(logit: torch.Tensor, class_logits: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor,
                                                                                                torch.Tensor]:
    """(marginal, conditional) from the two heads' outputs: the logit itself, and log D_C(c|x) at `labels` or,
    with `labels=None`, the entropy H[D_C(.|x)] (eq. 8)."""
    log_p = F.log_softmax(class_logits, dim=1)
    if labels is None:
        return logit, -(log_p.exp() * log_p).sum(1)
    return logit, log_p.gather(1, labels.long().reshape(-1, 1).to(log_p.device)).reshape(-1)


def score(gan: GANBundle, x: torch.Tensor, labels: torch.Tensor | None, kind: str,
          batch_size: int = 1000) -> GoldScores:
    """GOLD terms of samples `x` in [0, 1]: `generated` with their conditioning labels, `real` with their true
    labels, or `unlabeled` (labels=None)."""
    if kind == "unlabeled":
        labels = None
    elif labels is None:
        raise LetheError(f"GOLD: {kind} samples need their labels.", "Score unlabeled images with kind='unlabeled'.")
    else:
        labels = check_classes(gan, labels)
        if len(labels) != len(x):
            raise ShapeMismatch(f"GOLD: {len(x)} samples but {len(labels)} labels.", "Pass one label per sample.")
    logit, class_logits = discriminator_heads(gan, x, batch_size)
    marginal, conditional = terms(logit, class_logits, labels)
    return GoldScores(marginal, conditional, None if labels is None else labels.cpu(), kind)


def score_generated(gan: GANBundle, n: int, seed: int = 0, labels: torch.Tensor | int | None = None,
                    batch_size: int = 500) -> tuple[torch.Tensor, GoldScores]:
    """Draw `n` samples (uniform classes, or all of class `labels` when an int, or the given labels) and score
    them with eq. 3; returns (samples in [0, 1], scores)."""
    if n < 1:
        raise LetheError(f"GOLD: asked to score {n} generated samples.", "Ask for at least one.")
    if labels is not None:
        labels = check_classes(gan, labels)
        labels = labels.expand(n) if len(labels) == 1 else labels
    x, y = gan.sample(n, seed=seed, labels=labels, batch_size=batch_size)
    return x, score(gan, x, y, "generated", batch_size)


PARTS = ("gold", "marginal", "conditional")
"""What a ranking sorts by: the whole estimator (eq. 3 / 8) or one of its two parts (Fig. 2's three columns)."""


def part(scores: GoldScores, by: str) -> torch.Tensor:
    """The values a ranking sorts by: `gold`, `marginal` or `conditional` (signed as in eq. 3)."""
    if by not in PARTS:
        raise LetheError(f"GOLD ranks by {', '.join(PARTS)}, not {by!r}.", "Pick one of those.")
    if by == "gold":
        return scores.gold()
    return scores.marginal if by == "marginal" else scores.sign * scores.conditional


def extremes(scores: GoldScores, by: str, k: int, num_classes: int) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Per class: (indices of the k highest, indices of the k lowest) values of `by`, highest / lowest first.
    High GOLD = under-represented by G (or, for a real image, fitted worst); low = over-represented."""
    values = part(scores, by)
    out = {}
    for c in range(num_classes):
        rows = (scores.labels == c).nonzero().reshape(-1) if scores.labels is not None else torch.arange(len(values))
        order = rows[values[rows].argsort(descending=True)]
        out[c] = (order[:k], order.flip(0)[:k])
    return out
