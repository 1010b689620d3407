"""Helpers shared by the tests of the run store, runner, worker and the pages that show runs: a GAN small enough to
save in milliseconds, a job with a known loss curve, and waiting on a condition with a limit."""

from __future__ import annotations

import time

from torch import nn

from core.models import GANBundle, ModelCard
from core.models.registry import register
from core.progress import ProgressEvent

TINY_ARCHITECTURE = "test-jobs-tiny-gan"


@register(TINY_ARCHITECTURE)
def _build_tiny(card: ModelCard) -> GANBundle:
    """Registered so that a saved tiny GAN loads back with `load_model` (only in the test process and its workers)."""
    return GANBundle(card=card, generator=nn.Linear(2, 2), discriminator=nn.Linear(2, 1), latent_dim=2,
                     pixel_range=None)


def tiny_gan() -> GANBundle:
    """A 2-D GAN: G and D are single linear layers."""
    return _build_tiny(ModelCard(name="tiny", family="gan", architecture=TINY_ARCHITECTURE, data_shape=[2]))


def curve_job(scale: float):
    """A job reporting the loss scale/step for steps 1-3 and returning {"final_loss": scale / 3}."""
    def job(progress, cancel):
        for step in range(1, 4):
            progress(ProgressEvent(step, 3, {"loss": scale / step}))
        return {"final_loss": scale / 3}

    return job


def wait_for(predicate, timeout: float = 300, poll: float = 0.05) -> None:
    """Wait until `predicate()` holds; fail the test after `timeout` seconds (generous: a worker imports torch
    first, and the machine may be loaded)."""
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(poll)
