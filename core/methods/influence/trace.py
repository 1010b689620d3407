"""Training phase (Algorithm 1): adversarial SGD that logs what every step needs, and its exact replay.

ASGD (eq. 3) updates theta[t+1] = theta[t] - B_t g(S_t, Z_t; theta[t]) with plain SGD. The trace stores, for
every step t, A[t] = (S_t, eta_G[t], eta_D[t], Z_t) and what recovers theta[t]: the full state (parameters and
changing buffers) every `checkpoint_every` steps. With `checkpoint_every = 1` every theta[t] is on disk;
with C > 1 the inference phase recomputes a segment of C states by replaying its stored batches from the
segment's checkpoint (one extra gradient evaluation per step, C states in RAM). Nothing is held in RAM across
the whole run: the log is a folder of numpy memory maps,

    meta.json         sizes, dtype, config
    indices.npy       (T, B) int64     S_t, row indices into the training data
    lrs.npy           (T, 2) float64   (eta_G[t], eta_D[t])
    z.npy             (T, B, d_z)      Z_t in the game's dtype
    checkpoints.npy   (ceil(T / C), d_state) float64, theta[c C] flattened (params G, D, then buffers)
    final.npy         (d_state,) float64, theta[T]

and `TraceLog.bytes_per_step` reports its size. Counterfactual ASGD (Sec. 3.1) is `run_asgd` on the logged
schedule with some instances' weights set to 0: same batches, same latents, same learning rates.

Alternating updates are ASGD with eta_G and eta_D alternately 0 (App. A): each minibatch makes a D step
(eta_G = 0) and then a G step (eta_D = 0) that sees the updated D, each with its own latents.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from core.errors import LetheError, NonFiniteError
from core.methods.influence.game import Game, State
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn
from core.zoo.gans import shuffled_batches

UPDATES = ("simultaneous", "alternating")
DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True)
class TraceConfig:
    """The traced continuation of training (paper's setting, App. C and the authors' code: plain SGD, lr 1e-3
    for both players, batch 100, simultaneous updates, non-saturating loss). `weight_decay` is the L2 rate gamma
    (Table 2 uses 1e-3) applied as gamma/2 |theta|^2 inside both losses, so the Jacobian includes it."""

    epochs: int = 1
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    batch_size: int = 100
    updates: str = "simultaneous"
    weight_decay: float = 0.0
    dtype: str = "float64"
    checkpoint_every: int = 1

    def validate(self, n: int) -> None:
        """Raise LetheError on settings that cannot trace `n` training instances."""
        if self.epochs < 1:
            raise LetheError(f"trace epochs must be >= 1, got {self.epochs}.", "The paper traces k = 1 to 50 epochs.")
        if not 1 <= self.batch_size <= n:
            raise LetheError(f"batch size {self.batch_size} does not fit {n} training instances.",
                             "The paper uses 100.")
        if self.lr_g < 0 or self.lr_d < 0 or self.weight_decay < 0:
            raise LetheError("learning rates and weight decay must be >= 0.", "The paper uses lr 1e-3, gamma 1e-3.")
        if self.updates not in UPDATES:
            raise LetheError(f"unknown update scheme {self.updates!r}.", f"Use one of {', '.join(UPDATES)}.")
        if self.dtype not in DTYPES:
            raise LetheError(f"unknown dtype {self.dtype!r}.", f"Use one of {', '.join(DTYPES)}.")
        if self.checkpoint_every < 1:
            raise LetheError("checkpoint_every must be >= 1.", "1 stores every theta[t] on disk.")

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def steps_per_epoch(self, n: int) -> int:
        return (n // self.batch_size) * (2 if self.updates == "alternating" else 1)


Step = tuple[torch.Tensor, float, float, torch.Tensor]  # (S_t, eta_G, eta_D, Z_t)


def schedule(n: int, latent_dim: int, config: TraceConfig, seed: int) -> Iterator[Step]:
    """The minibatches, learning rates and latents of `config.epochs` epochs over n instances, drawn from `seed`
    (shuffled batches, the last short one dropped, as in the zoo's training loops)."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(config.epochs):
        for idx in shuffled_batches(n, config.batch_size, gen):
            z = torch.randn(len(idx), latent_dim, generator=gen)
            if config.updates == "simultaneous":
                yield idx, config.lr_g, config.lr_d, z
            else:
                yield idx, 0.0, config.lr_d, z
                yield idx, config.lr_g, 0.0, torch.randn(len(idx), latent_dim, generator=gen)


class TraceLog:
    """The on-disk log A[1..T] of a traced run (module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not (self.folder / "meta.json").is_file():
            raise LetheError(f"no influence trace at {self.folder}.", "Run the training phase (trace) first.")
        self.meta = json.loads((self.folder / "meta.json").read_text())
        self.indices = np.load(self.folder / "indices.npy", mmap_mode="r")
        self.lrs = np.load(self.folder / "lrs.npy", mmap_mode="r")
        self.z = np.load(self.folder / "z.npy", mmap_mode="r")
        self.checkpoints = np.load(self.folder / "checkpoints.npy", mmap_mode="r")

    @classmethod
    def create(cls, folder: str | Path, game: Game, n_steps: int, batch_size: int, config: TraceConfig,
               n_train: int) -> "TraceLog":
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        d_state = len(game.initial_state().flat())
        np_dtype = np.float64 if game.dtype == torch.float64 else np.float32
        mm = np.lib.format.open_memmap
        mm(folder / "indices.npy", "w+", np.int64, (n_steps, batch_size)).flush()
        mm(folder / "lrs.npy", "w+", np.float64, (n_steps, 2)).flush()
        mm(folder / "z.npy", "w+", np_dtype, (n_steps, batch_size, game.latent_dim)).flush()
        n_ckpt = math.ceil(n_steps / config.checkpoint_every)
        mm(folder / "checkpoints.npy", "w+", np.float64, (n_ckpt, d_state)).flush()
        meta = {"n_steps": n_steps, "batch_size": batch_size, "latent_dim": game.latent_dim, "d_state": d_state,
                "n_train": n_train, "config": asdict(config), "finished": False}
        (folder / "meta.json").write_text(json.dumps(meta, indent=2))
        log = cls(folder)
        for name in ("indices", "lrs", "z", "checkpoints"):
            setattr(log, name, np.load(folder / f"{name}.npy", mmap_mode="r+"))
        return log

    @property
    def n_steps(self) -> int:
        return int(self.meta["n_steps"])

    @property
    def checkpoint_every(self) -> int:
        return int(self.meta["config"]["checkpoint_every"])

    @property
    def config(self) -> TraceConfig:
        return TraceConfig(**self.meta["config"])

    def write(self, t: int, step: Step, state: State) -> None:
        """Store A[t] (and theta[t] when t is a checkpoint step) before step t is taken."""
        idx, lr_g, lr_d, z = step
        self.indices[t] = idx.numpy()
        self.lrs[t] = (lr_g, lr_d)
        self.z[t] = z.numpy()
        if t % self.checkpoint_every == 0:
            self.checkpoints[t // self.checkpoint_every] = state.flat().cpu().numpy()

    def finish(self, state: State) -> None:
        """Store theta[T] and mark the log complete."""
        for array in (self.indices, self.lrs, self.z, self.checkpoints):
            array.flush()
        np.save(self.folder / "final.npy", state.flat().cpu().numpy())
        self.meta["finished"] = True
        (self.folder / "meta.json").write_text(json.dumps(self.meta, indent=2))

    def step(self, t: int) -> Step:
        """A[t] as tensors: (S_t, eta_G[t], eta_D[t], Z_t)."""
        return (torch.from_numpy(np.array(self.indices[t])), float(self.lrs[t, 0]), float(self.lrs[t, 1]),
                torch.from_numpy(np.array(self.z[t])))

    def steps(self, start: int = 0, stop: int | None = None) -> Iterator[Step]:
        for t in range(start, self.n_steps if stop is None else stop):
            yield self.step(t)

    def checkpoint(self, c: int, game: Game) -> State:
        """theta[c * checkpoint_every]."""
        return game.unflat(torch.from_numpy(np.array(self.checkpoints[c])))

    def final(self, game: Game) -> State:
        """theta[T]."""
        if not self.meta.get("finished"):
            raise LetheError(f"the trace at {self.folder} did not finish.", "Run the training phase again.")
        return game.unflat(torch.from_numpy(np.load(self.folder / "final.npy")))

    @property
    def bytes(self) -> int:
        return sum(f.stat().st_size for f in self.folder.iterdir() if f.is_file())

    @property
    def bytes_per_step(self) -> float:
        return self.bytes / self.n_steps


def run_asgd(game: Game, x: torch.Tensor, steps: Iterator[Step], state: State, *, total: int = 0,
             removed: torch.Tensor | None = None, log: TraceLog | None = None, progress: ProgressFn = NO_PROGRESS,
             cancel: CancelToken | None = None, stage: str = "trace", report_every: int = 0) -> State:
    """Run ASGD from `state` over `steps` on training data x (in [0, 1], or raw 2-D points); return the last state.

    `removed` (bool, one per training instance) drops those instances from every D step (counterfactual ASGD);
    `log` stores A[t] before each step (Algorithm 1). Raises `Cancelled` between steps when `cancel` is set, and
    NonFiniteError when a loss or parameter is not finite: checked on the device at every step and read back at
    every report (every `report_every` steps, default 1/20 of `total`) and at the end, so a step costs no host
    round trip (a NaN parameter stays NaN under SGD, so it is still caught, within one report interval)."""
    cancel = cancel or CancelToken()
    data = game.data(x)
    keep = None if removed is None else (~removed).to(game.dtype).to(game.device)
    every = report_every or max(1, total // 20)
    finite = torch.ones((), dtype=torch.bool, device=game.device)
    last_read, t = 0, -1
    for t, step in enumerate(steps):
        cancel.raise_if_set()
        idx, lr_g, lr_d, z = step
        if log is not None:
            log.write(t, step, state)
        w = torch.ones(len(idx), dtype=game.dtype, device=game.device) if keep is None else keep[idx]
        state, losses = game.step(state, data[idx], z.to(game.device, game.dtype), w, lr_g, lr_d)
        finite = finite & torch.isfinite(losses).all() & state.finite()
        if (t + 1) % every == 0 or t + 1 == total:
            _check_finite(finite, stage, last_read, t + 1)
            last_read = t + 1
            loss_g, loss_d = losses.tolist()  # the one read of a report: both losses at once
            progress(ProgressEvent(t + 1, total, {"loss_g": loss_g, "loss_d": loss_d}, stage=stage))
    if last_read < t + 1:
        _check_finite(finite, stage, last_read, t + 1)
    return state


def _check_finite(finite: torch.Tensor, stage: str, first: int, last: int) -> None:
    """Raise NonFiniteError unless every loss and parameter of steps first+1..last stayed finite (one read)."""
    if not bool(finite):
        where = f"at step {last}" if last == first + 1 else f"between steps {first + 1} and {last}"
        raise NonFiniteError(f"{stage}: the GAN's loss or parameters became NaN or infinite {where}.",
                             "Lower the learning rates (the paper uses 1e-3) or trace fewer epochs.")


def trace(game: Game, x: torch.Tensor, config: TraceConfig, seed: int, folder: str | Path,
          progress: ProgressFn = NO_PROGRESS, cancel: CancelToken | None = None) -> TraceLog:
    """Algorithm 1: continue training the game's GAN for `config.epochs` epochs from its current weights,
    logging every step to `folder`; return the finished log (theta[T] is `log.final(game)`)."""
    config.validate(len(x))
    n_steps = config.epochs * config.steps_per_epoch(len(x))
    log = TraceLog.create(folder, game, n_steps, config.batch_size, config, len(x))
    final = run_asgd(game, x, schedule(len(x), game.latent_dim, config, seed), game.initial_state(), total=n_steps,
                     log=log, progress=progress, cancel=cancel)
    log.finish(final)
    return log


def replay(game: Game, x: torch.Tensor, log: TraceLog, removed: torch.Tensor | None = None,
           progress: ProgressFn = NO_PROGRESS, cancel: CancelToken | None = None, stage: str = "replay") -> State:
    """Counterfactual ASGD: the logged run from theta[1] with the same S_t, Z_t and learning rates, without the
    `removed` instances; with `removed=None` it reproduces theta[T] exactly."""
    return run_asgd(game, x, log.steps(), log.checkpoint(0, game), total=log.n_steps, removed=removed,
                    progress=progress, cancel=cancel, stage=stage)


def segment_states(game: Game, x: torch.Tensor, log: TraceLog, c: int) -> list[State]:
    """theta[t] for every step t of checkpoint segment c, recomputed by replaying its logged steps."""
    start = c * log.checkpoint_every
    stop = min(start + log.checkpoint_every, log.n_steps)
    states = [log.checkpoint(c, game)]
    data = game.data(x)
    for t in range(start, stop - 1):
        idx, lr_g, lr_d, z = log.step(t)
        w = torch.ones(len(idx), dtype=game.dtype, device=game.device)
        states.append(game.step(states[-1], data[idx], z.to(game.device, game.dtype), w, lr_g, lr_d)[0])
    return states
