"""Benchmark of data-parallel edits on this machine: samples per second of a redaction epoch and of a GOLD
re-weighting epoch with 1 and 2 gloo processes (torch.multiprocessing, one process group per measurement, as
torchrun would start it).

Redaction: `redact` on mnist-dcgan (Alg. 1, forgetting ids 0-99 of the 5,000 MNIST images) for one epoch of global
batch 64; the time is the method's own training seconds (checkpoint measurements excluded). GOLD: one epoch of
eq. 5's re-weighted ACGAN training (`fit_acgan` with GOLD's fake weights, as `reweight`'s second half runs it) of
a fresh mnist-acgan-architecture cGAN on the MNIST train split, global batch 128, timed around the epoch. Both
in fresh processes, so the ratio is the speed-up of the training loop itself. The world of 2 keeps the global
batch: each process computes half the rows of every step and the two all-reduce their gradients.

    .venv/bin/python bench/scale_ddp.py [--model mnist-dcgan] [--gold-model mnist-acgan] [--epochs 1]
                                        [--batch-size 64] [--samples N]

`--samples N` trains on a seeded random N of the training images (an epoch of N samples; the rate is the same,
the run shorter on a busy machine).

`measure()` and `measure_gold()` return the numbers (bench/scale.py prints them beside the executor's); this
script prints them too.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _subset(data, samples: int | None):
    if samples is not None and samples < len(data):
        return data.subset(torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:samples])
    return data


def _redaction_epochs(model: str, epochs: int, batch_size: int, samples: int | None) -> tuple[float, int] | None:
    """Run the redaction epoch(s) on this rank; rank 0 returns (training seconds, samples trained on)."""
    from core.distributed import team
    from core.methods.redaction import RedactionConfig, redact, training_data
    from core.methods.redaction.sets import Judges, parse_redaction_spec
    from core.models.spec import load_model

    gan = load_model(model, "cpu")
    data = _subset(training_data(gan), samples)
    the_set = parse_redaction_spec("ids=0-99", data, Judges(None, None, None), 0.5)
    config = RedactionConfig(epochs=epochs, batch_size=batch_size, eval_samples=100, first_epoch_checks=1,
                             film_size=1)
    result = redact(gan, the_set, data, config, seed=0)
    return (result.metrics["seconds"], result.metrics["real_size"] * epochs) if team().is_main else None


def _gold_epochs(model: str, epochs: int, batch_size: int, samples: int | None) -> tuple[float, int] | None:
    """Run eq. 5's re-weighted ACGAN epoch(s) on a fresh cGAN of `model`'s architecture; rank 0 returns (seconds,
    samples trained on)."""
    import time

    from core.distributed import team
    from core.methods.gold import real_data, reweight_power, terms
    from core.methods.gold.training import fresh_copy, recipe_for
    from core.models.spec import load_model
    from core.zoo.gans import fit_acgan

    gan = load_model(model, "cpu")
    data = _subset(real_data(gan), samples)
    fresh = fresh_copy(gan, 0)
    recipe = recipe_for(gan, epochs, batch_size=batch_size)

    def weights(logit, class_logits, c):
        return reweight_power(sum(terms(logit, class_logits, c)), 1.0)

    start = time.perf_counter()
    fit_acgan(fresh, data.x, data.labels, recipe, seed=0, fake_weights=weights)
    seconds = time.perf_counter() - start
    return (seconds, (len(data) // batch_size) * batch_size * epochs) if team().is_main else None


TASKS = {"redaction": _redaction_epochs, "gold": _gold_epochs}


def _worker(rank: int, world: int, port: int, task: str, model: str, epochs: int, batch_size: int,
            samples: int | None, out: str) -> None:
    """One rank: join the group (world > 1), run the task's epoch(s), rank 0 writes its seconds to `out`."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from core.distributed import session

    with session(torch.device("cpu")):
        done = TASKS[task](model, epochs, batch_size, samples)
    if done is not None:
        Path(out).write_text(f"{done[0]} {done[1]}")


def _one(task: str, world: int, model: str, epochs: int, batch_size: int, samples: int | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "seconds.txt")
        mp.spawn(_worker, args=(world, _free_port(), task, model, epochs, batch_size, samples, out), nprocs=world,
                 join=True)
        seconds, samples = map(float, Path(out).read_text().split())
    return {"seconds": seconds, "samples": samples, "samples_per_second": samples / seconds}


def _compare(task: str, model: str, epochs: int, batch_size: int, samples: int | None) -> dict[str, float]:
    one, two = (_one(task, w, model, epochs, batch_size, samples) for w in (1, 2))
    return {"model": model, "batch_size": batch_size, "samples": one["samples"],
            "samples_per_second_1": one["samples_per_second"], "samples_per_second_2": two["samples_per_second"],
            "seconds_1": one["seconds"], "seconds_2": two["seconds"],
            "ratio": two["samples_per_second"] / one["samples_per_second"]}


def measure(model: str = "mnist-dcgan", epochs: int = 1, batch_size: int = 64,
            samples: int | None = None) -> dict[str, float]:
    """Samples/s of a redaction epoch with 1 and 2 gloo processes, and their ratio (2 over 1)."""
    return _compare("redaction", model, epochs, batch_size, samples)


def measure_gold(model: str = "mnist-acgan", epochs: int = 1, batch_size: int = 128,
                 samples: int | None = None) -> dict[str, float]:
    """Samples/s of a GOLD re-weighting epoch (eq. 5) with 1 and 2 gloo processes, and their ratio (2 over 1)."""
    return _compare("gold", model, epochs, batch_size, samples)


def _print(what: str, m: dict[str, float]) -> None:
    print(f"{what} of {m['model']}, {m['samples']:.0f} samples per run, global batch {m['batch_size']}:")
    print(f"  1 process : {m['samples_per_second_1']:8.1f} samples/s ({m['seconds_1']:.1f} s)")
    print(f"  2 processes (gloo): {m['samples_per_second_2']:8.1f} samples/s ({m['seconds_2']:.1f} s)")
    print(f"  ratio 2 / 1: {m['ratio']:.2f}x  (machine load: {os.getloadavg()[0]:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mnist-dcgan")
    parser.add_argument("--gold-model", default="mnist-acgan")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64, help="redaction's global batch (GOLD's is 128)")
    parser.add_argument("--samples", type=int, default=None, help="train on this many training images")
    args = parser.parse_args()
    _print("redaction", measure(args.model, args.epochs, args.batch_size, args.samples))
    _print("GOLD re-weighting (eq. 5)", measure_gold(args.gold_model, args.epochs, samples=args.samples))


if __name__ == "__main__":
    main()
