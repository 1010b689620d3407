"""The moving average of G that a redaction or a retrain reports, so that it compares like with like.

The zoo's DCGANs ship the exponential moving average (EMA) of their generator's weights, not the last live G
(`core.zoo.gans.fit_dcgan`, recipe field `ema`; the live G is not saved). A fine-tuned live G is noisier than an
average of generators, so a redacted live G against the pre-trained average would charge redaction for the
missing average. Redaction therefore keeps an EMA of G from the pre-trained weights, as the recipe did in
training, and reports that; a GAN trained without an average (its card names none) is redacted and reported live.

The zoo's decay (0.995: a horizon 1 / (1 - decay) of 200 generator steps) is longer than a short run: after one
redaction epoch of 56 steps the average would still be three quarters the pre-trained G. The decay is lowered so
that its horizon is at most a tenth of the run's generator steps, the rule the deletion baseline's shortened
retrains use (`short_horizon_decay`).
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from core.zoo.gans import ema_update


def card_decay(training: dict[str, Any]) -> float:
    """The EMA decay a model card's training record names (0 when its G is not an average)."""
    value = training.get("generator_ema")
    return float(value) if value else 0.0


def short_horizon_decay(decay: float, steps: int) -> float:
    """`decay` lowered so that the average's horizon 1 / (1 - decay) is at most a tenth of `steps` (0 stays 0)."""
    if decay <= 0.0:
        return 0.0
    return min(decay, max(0.0, 1.0 - 10.0 / max(1, steps)))


class GeneratorAverage:
    """An EMA copy of a live generator: `update()` after every generator step, `module` is the averaged G."""

    def __init__(self, live: nn.Module, decay: float) -> None:
        self.live, self.decay = live, decay
        self.module = copy.deepcopy(live).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def update(self) -> None:
        """averaged <- decay * averaged + (1 - decay) * live (BN buffers copied), as the zoo recipe does."""
        ema_update(self.module, self.live, self.decay)
