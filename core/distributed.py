"""Data-parallel edits under `torchrun`: one process per device, each computing on a shard of every global batch.

    torchrun --nproc_per_node 2 -m core redact toy-gan --forget ids=0-299 --epochs 1

`python -m core <verb>` needs no flag for this: `session()` reads torchrun's environment (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR/PORT), starts the process group (gloo on CPU, NCCL on CUDA) and makes a `Team` the current
one; without that environment the team is one process and every helper below is the identity, so a method has one
training loop whatever the number of processes. A method calls a few helpers of `team()`:

- `check_batch(b)`: the GLOBAL batch b stays the method's hyperparameter; each rank takes b / world rows of it
  (`shard(b)`), so the learning rate, the number of steps and the schedule are those of one process.
- Every rank draws the same global batch from the same seeded generator and keeps its own rows of it, so the
  sequence of batches is exactly one process's; `wrap(module)` puts the trained module in
  DistributedDataParallel, whose gradient all-reduce (a mean over ranks of per-shard mean losses = the global
  batch's mean loss) makes every rank take the step one process would take.
- `mean(tensor)`: the metrics every rank accumulated on its device, averaged over ranks at a checkpoint (one
  collective per checkpoint, not per step); `broadcast(obj)` rank 0's value of something drawn from the model
  (Alg. 2's found samples), so a non-deterministic kernel cannot make the ranks disagree.
- `agree_cancel(cancel, step)`: a cancel request reaches rank 0 (its run-store watcher); every `AGREE_EVERY` steps
  the ranks all-reduce their flags and all stop together.
- Only rank 0 (`is_main`) measures, reports progress and writes the run store (see `core.cli.methods`); the other
  ranks compute their shards and wait at the next collective.

Failure: an error raised on every rank alike (a non-finite loss is checked on the all-reduced sums) fails the run
on rank 0 with its own message. An error on one rank only ends that process, which first leaves a note (rank and
error) in the job's key-value store; its peers' next collective then fails (gloo: the connection closes; a hung
peer: after `TIMEOUT`) and `peer_failures` turns that into a `PeerFailure` naming the failed rank and its error
(or, when the rank was killed and left no note, naming the rank that went silent), which rank 0 records as the
run's failure, keeping the checkpoints that finished; the command exits 2. If torchrun's agent kills rank 0
first, the run store shows the run `interrupted` (its heartbeat stops).
BatchNorm layers keep per-rank batch statistics, as under any DDP run; on CUDA they are converted to SyncBatchNorm
(`wrap`), which torch implements for GPUs only.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
from torch import nn

from core.errors import Cancelled, LetheError
from core.progress import CancelToken

AGREE_EVERY = 10
"""Steps between the ranks' agreement on cancellation: one tiny all-reduce (a host round trip on CUDA) per 10
steps instead of per step; a cancel takes effect within 10 steps."""

TIMEOUT = timedelta(seconds=float(os.environ.get("LETHE_COLLECTIVE_TIMEOUT", 3600)))
"""How long a rank waits at a collective before it gives up (then `peer_failures` fails the run): rank 0 alone
measures at checkpoints, up to minutes on image models, so one hour unless $LETHE_COLLECTIVE_TIMEOUT (seconds)
says otherwise. A peer that dies closes its connections and fails the collective at once; the timeout is for a
peer that hangs."""


DATA_PARALLEL_VERBS: tuple[str, ...] = ("redact", "tame", "unlearn", "gold reweight")
"""Verbs (and `verb action`s) whose training loop splits its batches over torchrun's processes. The others would
run whole in every process: they are refused under torchrun, with the reason in `NOT_SPLIT`."""

NOT_SPLIT = {
    "influence": "its trajectory replay walks the training steps in order, one counterfactual at a time",
    "gold score": "scoring is one forward pass per sample, done in seconds by one process",
    "gold sample": "rejection sampling draws until exactly N samples are accepted, in one stream",
    "gold active": "its rounds query the labels one after the other from one model, on a pool of a few dozen "
                   "labelled images",
}


def check_data_parallel(verb: str, action: str | None = None) -> None:
    """Refuse, under torchrun, a verb (or a verb's action, e.g. `gold score`) whose loop does not split its work
    over the processes, saying why and what does."""
    name = verb if action is None or verb in DATA_PARALLEL_VERBS else f"{verb} {action}"
    if launched_by_torchrun() and name not in DATA_PARALLEL_VERBS:
        why = NOT_SPLIT.get(name, NOT_SPLIT.get(verb, "its loop is not written for several processes"))
        raise LetheError(f"{name} does not split its work over torchrun's processes ({why}); each would run it "
                         "whole.", f"Run `python -m core {verb} ...` as one process (data-parallel verbs: "
                                   f"{', '.join(DATA_PARALLEL_VERBS)}).")


class PeerFailure(LetheError):
    """Another process of the torchrun job failed or was stopped, so this one cannot go on."""


@dataclass(frozen=True)
class Team:
    """This process's place in a data-parallel job: rank, world size and local rank (one process: 0, 1, 0)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that measures, reports and writes the run store."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world > 1

    def check_batch(self, batch_size: int, what: str = "batch size") -> None:
        """Refuse a global batch the ranks cannot split evenly (unequal shards would weight rows unequally)."""
        if batch_size % self.world:
            raise LetheError(f"the {what} {batch_size} does not split evenly over {self.world} processes.",
                             f"Use a {what} divisible by {self.world} (the global batch stays as in one process).")

    def shard(self, batch_size: int) -> slice:
        """This rank's rows of a global batch of `batch_size` rows (contiguous, equal for every rank)."""
        size = batch_size // self.world
        return slice(self.rank * size, (self.rank + 1) * size)

    def rows(self, n: int) -> slice:
        """This rank's rows of n rows split as evenly as possible (the first n % world ranks take one more): for
        batches whose size is the method's own business (taming's forget set), not a divisible hyperparameter."""
        base, extra = divmod(n, self.world)
        lo = self.rank * base + min(self.rank, extra)
        return slice(lo, lo + base + (self.rank < extra))

    def gather_rows(self, own: torch.Tensor, n: int) -> torch.Tensor:
        """All n rows, each rank's `rows(n)` computed by that rank and `own` by this one, in order. Gradients flow
        into `own` only: a loss computed from the gathered rows is the same on every rank, and `full_loss` makes
        DDP's gradient mean the full gradient."""
        if not self.is_distributed:
            return own
        size = -(-n // self.world)
        padded = own.detach().new_zeros((size, *own.shape[1:]))
        padded[: len(own)] = own.detach()
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        pieces = []
        for rank, part in enumerate(parts):
            theirs = Team(rank, self.world).rows(n)
            pieces.append(own if rank == self.rank else part[: theirs.stop - theirs.start])
        return torch.cat(pieces)

    def full_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss to call backward on when every rank computed the same `loss` from `gather_rows`: each rank's
        gradient then covers its own rows only, DDP averages over ranks, so the loss is scaled by the world size
        (the mean of world x per-rank parts = their sum = one process's gradient)."""
        return loss * self.world if self.is_distributed else loss

    def wrap(self, module: nn.Module) -> nn.Module:
        """`module` in DistributedDataParallel, or `module` itself in one process. The wrapper shares the module's
        parameters, so saving `module` saves the trained weights. Parameters are broadcast from rank 0 once;
        buffers (BatchNorm running statistics) are not re-broadcast before every forward (a collective each):
        each rank keeps its own, and rank 0's are the ones measured and saved."""
        if not self.is_distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        device = next(module.parameters()).device
        if device.type == "cuda":
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
            return DistributedDataParallel(module, device_ids=[device.index], forward_sync_buffers=False)
        return DistributedDataParallel(module, forward_sync_buffers=False)

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of `tensor` (a copy; `tensor` itself in one process)."""
        if not self.is_distributed:
            return tensor
        total = tensor.detach().clone()
        dist.all_reduce(total)
        return total / self.world

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (any picklable object, tensors included)."""
        if not self.is_distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def agree_cancel(self, cancel: CancelToken, step: int) -> None:
        """Raise `Cancelled` on every rank once any rank's token is set (checked every AGREE_EVERY steps)."""
        if not self.is_distributed:
            cancel.raise_if_set()
            return
        if step % AGREE_EVERY:
            return
        flag = torch.tensor([1.0 if cancel.is_set else 0.0], device=_collective_device())
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if float(flag) > 0:
            raise Cancelled("cancelled by the user (on one of the torchrun processes)")


_ONE = Team()
_current = _ONE


def team() -> Team:
    """The current team: the torchrun job's inside `session()`, else one process."""
    return _current


def launched_by_torchrun() -> bool:
    """True when torchrun (or any launcher setting its variables) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _collective_device() -> torch.device:
    backend = dist.get_backend()
    return torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")


@contextmanager
def session(device: torch.device) -> Iterator[Team]:
    """Join the torchrun job (if this process is one of several) for the duration of a verb, then leave it.

    The backend follows `device`: NCCL for CUDA, gloo for the CPU. One process: yields the single-process team."""
    global _current
    if not launched_by_torchrun():
        yield _ONE
        return
    if dist.is_initialized():
        raise LetheError("a torch process group is already running in this process.",
                         "Run one Lethe verb per torchrun job.")
    env = {k: int(os.environ[k]) for k in ("RANK", "WORLD_SIZE") if k in os.environ}
    if len(env) < 2 or "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        raise LetheError("WORLD_SIZE is set but RANK, MASTER_ADDR or MASTER_PORT is missing.",
                         "Start data-parallel runs with `torchrun --nproc_per_node N -m core VERB ...`.")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=env["RANK"], world_size=env["WORLD_SIZE"], timeout=TIMEOUT)
    _current = Team(env["RANK"], env["WORLD_SIZE"], int(os.environ.get("LOCAL_RANK", "0")))
    try:
        yield _current
    finally:
        _current = _ONE
        dist.destroy_process_group()


_PEER_SIGNS = ("connection closed by peer", "connection reset", "gloo", "nccl", "processgroup", "broken pipe",
               "timed out", "timeout")
_NOTE = "lethe/failure/{rank}"


def peer_failures(job: Callable[..., Any]) -> Callable[..., Any]:
    """`job` with failures shared between the processes (identity in one process): a process whose job raises
    leaves a note (its rank and error) in the job's key-value store before it ends; a process whose collective
    fails because a peer died or hung (gloo: the connection closes; any backend: `TIMEOUT`) raises a
    `PeerFailure` naming the failed rank and its error from that note, or, when a rank left none (it was killed),
    the ranks that went silent. Rank 0 records that as the run's failure instead of a transport error."""
    if not _current.is_distributed:
        return job
    rank, world = _current.rank, _current.world

    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return job(*args, **kwargs)
        except RuntimeError as exc:
            text = str(exc).lower()
            if not any(sign in text for sign in _PEER_SIGNS):
                _leave_note(rank, exc)
                raise
            raise PeerFailure(f"{_who_failed(rank, world)}; rank {rank} stopped too "
                              f"({str(exc).splitlines()[0][:160]}).",
                              "Read that process's error in torchrun's output; the run's model was not saved.") from exc
        except (Exception, KeyboardInterrupt) as exc:
            if not isinstance(exc, (PeerFailure, Cancelled)):
                _leave_note(rank, exc)
            raise

    return guarded


def _store() -> Any:
    """The process group's key-value store (torchrun's rendezvous store), or None once the group is gone."""
    try:
        return dist.distributed_c10d._get_default_store()
    except (RuntimeError, ValueError):
        return None


def _leave_note(rank: int, exc: BaseException) -> None:
    """Tell the other ranks why this one is ending (best effort: a store that is gone is ignored)."""
    store = _store()
    if store is not None:
        try:
            store.set(_NOTE.format(rank=rank), f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
        except RuntimeError:
            pass


def _who_failed(rank: int, world: int) -> str:
    """'rank R failed: ERROR' for every rank that left a note, else the ranks that went silent."""
    store, others = _store(), [r for r in range(world) if r != rank]
    notes = {}
    for r in others:
        try:
            if store is not None and store.check([_NOTE.format(rank=r)]):
                notes[r] = store.get(_NOTE.format(rank=r)).decode()
        except RuntimeError:
            break
    if notes:
        return "; ".join(f"rank {r} of {world} torchrun processes failed: {note}" for r, note in notes.items())
    who = f"rank {others[0]}" if len(others) == 1 else f"one of ranks {', '.join(map(str, others))}"
    return (f"{who} of {world} torchrun processes stopped without an error of its own (killed, out of memory, or "
            "hung past the collective timeout)")
