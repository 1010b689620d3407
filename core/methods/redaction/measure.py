"""What a redaction run measures at each checkpoint (paper Sec. IV, "Evaluation metrics"; App. D "Evaluation").

- invalidity: the fraction of n generated samples that fall in Omega, with its binomial standard error and its
  95% Wilson interval (`invalidity_lower`, `invalidity_upper`), which stays informative at 0 of n;
- IS[judge] of those samples on the dataset's label classifier, and FID[judge] between them and the *valid*
  training samples {x in X : v(x) = 1} (Sec. IV and Table I: "between 50K generated samples and X ∩ Ω̄"). The
  reference is the same for the three algorithms and the deletion baseline, whatever X ∩ Omega each of them
  trains without (`valid_training`), so their quality columns are comparable;
- the redaction film (Fig. 3): G(z) for fixed latents z whose pre-trained sample G0(z) was invalid.

The same latents are used at every checkpoint (common random numbers), so differences between checkpoints are
differences between generators, not between sample draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.data.base import ImageData
from core.metrics import (binomial_stderr, frechet_distance, gaussian_stats, inception_score, metric_name,
                          wilson_interval)
from core.metrics.sampling import iter_gan_samples
from core.methods.redaction.sets import RedactionSet
from core.models.bundles import ClassifierBundle, GANBundle
from core.progress import CancelToken


def valid_training(redaction_set: RedactionSet, data: ImageData) -> torch.Tensor:
    """The valid training samples {x in X : v(x) = 1}: FID's real reference, one for every algorithm."""
    return data.x[~redaction_set.invalid(data.x)]


@dataclass
class Meter:
    """Measures a generator against one redaction set; reference statistics are computed once."""

    redaction_set: RedactionSet
    judge: ClassifierBundle | None
    valid_train: torch.Tensor | None
    n: int = 10_000
    seed: int = 12_345
    batch_size: int = 500

    def __post_init__(self) -> None:
        self._ref = None
        if self.judge is not None and self.valid_train is not None and len(self.valid_train) > 1:
            self._ref = gaussian_stats(self.judge.features(self.valid_train).numpy())

    @property
    def quality_names(self) -> tuple[str, str] | None:
        """("IS[judge]", "FID[judge]"), or None when there is no image judge (2-D toys)."""
        if self.judge is None:
            return None
        return metric_name("IS", self.judge), metric_name("FID", self.judge)

    @torch.no_grad()
    def __call__(self, gan: GANBundle, cancel: CancelToken | None = None) -> dict[str, float]:
        """{"invalidity", "invalidity_se", "invalidity_lower", "invalidity_upper"} and, with a judge, IS and FID,
        all on the same n samples."""
        invalid, logits, feats = 0, [], []
        for x, _ in iter_gan_samples(gan, self.n, self.seed, self.batch_size):
            if cancel is not None:
                cancel.raise_if_set()
            invalid += int(self.redaction_set.invalid(x).sum())
            if self.judge is not None:
                batch_logits, batch_feats = self.judge.logits_and_features(x)
                logits.append(batch_logits)
                feats.append(batch_feats)
        p = invalid / self.n
        lower, upper = wilson_interval(invalid, self.n)
        out = {"invalidity": p, "invalidity_se": binomial_stderr(p, self.n), "invalidity_lower": lower,
               "invalidity_upper": upper}
        if self.quality_names is not None and logits:
            is_name, fid_name = self.quality_names
            if self.judge.kind == "labels":  # type: ignore[union-attr]
                out[is_name] = float(inception_score(torch.cat(logits)))
            if self._ref is not None:
                mu, sigma = gaussian_stats(torch.cat(feats).numpy())
                out[fid_name] = frechet_distance(mu, sigma, *self._ref)
        return out


@torch.no_grad()
def film_latents(gan: GANBundle, redaction_set: RedactionSet, size: int, seed: int,
                 pool: int = 4000) -> torch.Tensor:
    """`size` latents whose samples under the pre-trained `gan` are invalid (the rows of Fig. 3).

    When fewer than `size` of `pool` draws are invalid (a set the model rarely generates), the rest are the draws
    closest to Omega by the set's classifier f, else the first draws, so the film always has `size` rows."""
    gen = torch.Generator().manual_seed(seed)
    z = gan.sample_latent(pool, gen)
    gan.eval()
    x = torch.cat([gan.generate(z[i : i + 500]).cpu() for i in range(0, pool, 500)])
    invalid = redaction_set.invalid(x)
    order = torch.nonzero(invalid).flatten()
    if len(order) < size:
        rest = torch.nonzero(~invalid).flatten()
        if redaction_set.classifier is not None:
            rest = rest[torch.argsort(redaction_set.scores(x[rest]))]
        order = torch.cat([order, rest])
    return z[order[:size]]

