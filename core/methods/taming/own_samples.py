"""A forget set taken from the flow's own samples: `--forget samples:EXPR` (a counterfactual of Sec. 4.2).

The paper's debiasing forgets D_F = {x in D | C(x) = 1}, the training images the classifier C finds the attribute
in, and measures the attribute's share in samples with the same C. On synthfaces-flow that share barely moves (and
rebounds): after 300 iterations the glasses faces' NLL rose by 0.073 bits/dim and the other faces' by 0.018, but the
flow's own samples' NLL rose by the same 0.032 whether the judge calls them glasses or not. The likelihood change
separates real faces, not the flow's samples. The counterfactual asks whether forgetting what the judge reads as the
attribute *in samples* moves the share: D_F = the flow's own samples (fixed latents at the sampling temperature)
that the judge reads as carrying EXPR and is sure of (every attribute EXPR names outside `UNSURE`). Everything
else is the attribute run's: D_R = the training images without the attribute (as judged), D'_F = the test images
with it (real faces: does forgetting generated glasses forget real ones?), and the same share judge.
"""

from __future__ import annotations

import dataclasses

import torch

from core.errors import EmptySelection, LetheError
from core.methods.taming.algorithm import (ShareJudge, TamingConfig, fixed_latents, sample_temperature,
                                           samples_from)
from core.methods.taming.sets import TamingSets
from core.models.bundles import FlowBundle

PREFIX = "samples:"
SAMPLE_POOL = 2000
"""Samples drawn to find D_F in: on synthfaces-flow the judge is sure of glasses on about half of its samples and
reads glasses on about a quarter of all of them, so 2,000 give a few hundred forget samples."""
SEED_OFFSET = 11
"""The forget samples' latents are drawn with seed + 11: apart from the monitor's (seed + 1) and the evaluation's
(seed + 2) latents, so the share a run reports is read on samples it did not train on."""


def sample_expression(forget: object) -> str | None:
    """The attribute expression of a `samples:EXPR` forget spec, None for any other spec."""
    if not isinstance(forget, str) or not forget.strip().startswith(PREFIX):
        return None
    expression = forget.strip()[len(PREFIX):].strip()
    if expression.startswith("attr="):
        expression = expression[len("attr="):].strip()
    if not expression:
        raise LetheError(f"{forget!r} names no attribute.", "Write samples:EXPR, for example samples:glasses.")
    return expression


@torch.no_grad()
def sample_forget_set(flow: FlowBundle, judge: ShareJudge, pool: int = SAMPLE_POOL,
                      seed: int = 0) -> tuple[torch.Tensor, str]:
    """(the samples of `pool` the judge surely reads as carrying its criterion, a note saying how they were drawn).

    Raises EmptySelection when there is none."""
    if pool < 1:
        raise LetheError(f"a sample pool of {pool} draws nothing.", "Draw at least one sample.")
    temperature = sample_temperature(flow, TamingConfig())
    x = samples_from(flow, fixed_latents(flow, pool, seed + SEED_OFFSET, temperature))
    hit, unsure = judge.carries(x)
    keep = hit & ~unsure if unsure is not None else hit
    if not bool(keep.any()):
        raise EmptySelection(f"the judge is sure of {judge.name!r} in none of {pool} samples of {flow.card.name}.",
                             "Draw more samples or pick an attribute the flow draws.")
    sure = "" if unsure is None else f", sure of it on {int((hit & ~unsure).sum())} of {int(hit.sum())} it reads"
    note = (f"{int(keep.sum())} of {pool} samples of {flow.card.name} (temperature {temperature:g}, latents seed "
            f"{seed + SEED_OFFSET}) that {judge.classifier.card.name if judge.classifier else 'the judge'} reads as "
            f"{judge.name!r}{sure}")
    return x[keep], note


def own_sample_sets(flow: FlowBundle, sets: TamingSets, judge: ShareJudge, pool: int = SAMPLE_POOL,
                    seed: int = 0) -> TamingSets:
    """An attribute run's sets with D_F replaced by the flow's own samples the judge reads as the attribute."""
    forget, note = sample_forget_set(flow, judge, pool, seed)
    return dataclasses.replace(sets, forget=forget, forget_ids=[], notes={**sets.notes, "forget": note})
