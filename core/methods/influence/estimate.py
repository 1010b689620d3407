"""Inference phase (Algorithm 2): the linear influence of every training instance on a metric V (eq. 4-10).

Starting from u = grad_theta V(D_G(Z'; theta[T])) (eq. 10), walk the logged steps backwards, t = T-1, ..., 1:

    L_{-j}(u) += eta_D[t] / |S_t| <u_D, grad_theta_D f_D^[x](x_j; theta[t])>   for every j in S_t     (eq. 8)
    u         <- u - u^T B_t J_t                                                 (u^T Z_t, eq. 5-7)

so that at the end L_{-j}(u) = <u, Delta theta_{-j}> approximates V(theta_{-j}[T]) - V(theta[T]) (eq. 9): the
change of the metric if instance j had not been used in the traced steps. Both updates of one step come from one
double-backward pass through the step's joint gradient (`Game.backward_step`): exact Jacobian-vector products,
no finite differences, no diagonal approximation. Influence is computed for all N training instances at once;
the cost is independent of N beyond the steps themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.errors import NonFiniteError
from core.methods.influence.game import Game
from core.methods.influence.metrics import Metric, MetricSets, make_metric
from core.methods.influence.trace import TraceConfig, TraceLog, segment_states, trace
from core.models.bundles import ClassifierBundle, GANBundle
from core.models.portable import PortableBundles
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn


# What users read (page, command line): influence as what instance j contributed, V(with j) - V(without j), the
# sign the issue words it in; the engine keeps eq. 9's removal effect V(without j) - V(with j) = -contribution.
SIGN_RULES = {
    "all": "influence on ALL = ALL with j - ALL without j: positive means j helped (raised the test "
           "log-likelihood), negative means j hurt.",
    "is": "influence on IS = IS with j - IS without j: positive means j helped (raised the Inception Score), "
          "negative means j hurt.",
    "fid": "influence on FID = FID with j - FID without j: negative means j helped (lowered FID), positive means "
           "j hurt.",
    "dloss": "influence on the D loss = D loss with j - D loss without j: positive counts as harmful, negative as "
             "helpful (the paper's loss-based baseline, Sec. 5.2).",
}


def sign_rule(metric: str) -> str:
    """One sentence saying which sign of the shown influence means "helped" and which "hurt" for `metric`."""
    return SIGN_RULES[metric]


@dataclass
class Influence:
    """Estimated influence of each training instance on a metric: `values[j]` ~ V(without j) - V(with j)
    (eq. 9, the change if j were removed).

    `contribution[j] = -values[j]` is what users are shown (`SIGN_RULES`): what j added to V. `harm[j]` is signed
    so that larger means more harmful: removing j improves the metric (in eq. 9's sign, positive on ALL or IS,
    negative on FID, negative on the discriminator loss as the paper rules for that baseline, Sec. 5.2)."""

    metric: str
    values: np.ndarray
    higher_is_better: bool
    metric_value: float  # V(D_G(Z'; theta[T]))
    seconds: float

    @property
    def contribution(self) -> np.ndarray:
        """V(with j) - V(without j): the sign users read (`sign_rule`)."""
        return -self.values

    @property
    def harm(self) -> np.ndarray:
        return self.values if self.higher_is_better else -self.values

    def most_harmful(self, n: int) -> np.ndarray:
        """Indices of the n most harmful instances, most harmful first (ties by index)."""
        return np.argsort(-self.harm, kind="stable")[:n]

    def most_helpful(self, n: int) -> np.ndarray:
        """Indices of the n most helpful instances (whose removal would worsen the metric most), most helpful first."""
        return np.argsort(self.harm, kind="stable")[:n]


def query_vector(metric: Metric, log: TraceLog, game: Game) -> tuple[list[torch.Tensor], list[torch.Tensor], float]:
    """u = grad_theta V(D_G(Z'; theta[T])) split into (u_G, u_D) (u_D = 0 unless V reads D), and V itself."""
    state = log.final(game)
    for t in (*state.g, *state.d):
        t.requires_grad_(True)
    value = metric.value(state)
    grads = torch.autograd.grad(value, [*state.g, *state.d], allow_unused=True)
    grads = [torch.zeros_like(t) if g is None else g.detach() for g, t in zip(grads, [*state.g, *state.d])]
    return grads[: len(state.g)], grads[len(state.g):], float(value.detach())


def estimate(game: Game, x: torch.Tensor, log: TraceLog, metric: Metric, progress: ProgressFn = NO_PROGRESS,
             cancel: CancelToken | None = None) -> Influence:
    """Algorithm 2 over the whole log for all training instances x (the data the trace used)."""
    cancel = cancel or CancelToken()
    start = time.perf_counter()
    u_g, u_d, value = query_vector(metric, log, game)
    influence = torch.zeros(len(x), dtype=torch.float64, device=game.device)  # read once, at the end
    data = game.data(x)
    n_segments = (log.n_steps + log.checkpoint_every - 1) // log.checkpoint_every
    done, every = 0, max(1, log.n_steps // 20)
    for c in reversed(range(n_segments)):
        states = [log.checkpoint(c, game)] if log.checkpoint_every == 1 else segment_states(game, x, log, c)
        for offset in reversed(range(len(states))):
            cancel.raise_if_set()
            t = c * log.checkpoint_every + offset
            idx, lr_g, lr_d, z = log.step(t)
            dg, dd, terms = game.backward_step(states[offset], data[idx], z.to(game.device, game.dtype), u_g, u_d,
                                               lr_g, lr_d)
            influence.index_add_(0, idx.to(game.device), terms.detach().double())
            u_g = [u - d for u, d in zip(u_g, dg)]
            u_d = [u - d for u, d in zip(u_d, dd)]
            done += 1
            if done % every == 0 or done == log.n_steps:
                norm = float(torch.sqrt(sum((u * u).sum() for u in (*u_g, *u_d))))
                if not np.isfinite(norm):
                    raise NonFiniteError(f"influence: the query vector became NaN or infinite at step {t + 1}.",
                                         "Trace fewer epochs or lower the learning rates.")
                progress(ProgressEvent(done, log.n_steps, {"u_norm": norm}, stage="inference"))
    return Influence(metric.name, influence.cpu().numpy(), metric.higher_is_better, value, time.perf_counter() - start)


@dataclass
class EstimateJob(PortableBundles):
    """A picklable job for `core.runs.executor.run_jobs`: trace `config` from the bundle's weights into `folder`
    (Algorithm 1), then estimate the influence on each of `metrics` from that one trace (Algorithm 2 once per
    metric); returns `{metric: Influence}` and leaves the trace in `folder` for the replays that verify or cleanse
    it. Independent seeds of a study (Fig. 1, Fig. 2) run as independent jobs. Its bundles travel as (card,
    state) (`core.models.portable`)."""

    BUNDLE_FIELDS = ("bundle", "judge")

    bundle: GANBundle
    x: torch.Tensor
    config: TraceConfig
    seed: int
    folder: Path
    metrics: tuple[str, ...]
    sets: MetricSets
    judge: ClassifierBundle | None
    dataset: str

    def __call__(self) -> dict[str, Influence]:
        game = Game(self.bundle, self.config.torch_dtype, self.config.weight_decay)
        log = trace(game, self.x, self.config, self.seed, self.folder)
        return {name: estimate(game, self.x, log, make_metric(name, game, self.sets, self.judge, self.dataset))
                for name in self.metrics}
