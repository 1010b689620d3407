"""Benchmark of data-parallel redaction on this machine: samples per second of a redaction epoch with 1 and 2
gloo processes (torch.multiprocessing, one process group per measurement, as torchrun would start it).

Each measurement runs `redact` on mnist-dcgan (Alg. 1, forgetting ids 0-99 of the 5,000 MNIST images) for one
epoch of global batch 64 in fresh processes; the time is the method's own training seconds (checkpoint
measurements excluded), so the ratio is the speed-up of the training loop itself. The world of 2 keeps the global
batch: each process computes 32 rows per step and the two all-reduce their gradients.

    .venv/bin/python bench/scale_ddp.py [--model mnist-dcgan] [--epochs 1] [--batch-size 64] [--samples N]

`--samples N` redacts on a seeded random N of the training images (an epoch of N samples; the rate is the same,
the run shorter on a busy machine).

`measure()` returns the numbers (bench/scale.py prints them beside the executor's); this script prints them too.
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


def _worker(rank: int, world: int, port: int, model: str, epochs: int, batch_size: int, samples: int | None,
            out: str) -> None:
    """One rank: join the group (world > 1), run the redaction epoch(s), rank 0 writes its seconds to `out`."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from core.distributed import session
    from core.methods.redaction import RedactionConfig, redact, training_data
    from core.methods.redaction.sets import Judges, parse_redaction_spec
    from core.models.spec import load_model

    device = torch.device("cpu")
    gan = load_model(model, device)
    data = training_data(gan)
    if samples is not None and samples < len(data):
        data = data.subset(torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:samples])
    the_set = parse_redaction_spec("ids=0-99", data, Judges(None, None, None), 0.5)
    config = RedactionConfig(epochs=epochs, batch_size=batch_size, eval_samples=100, first_epoch_checks=1,
                             film_size=1)
    with session(device) as team:
        result = redact(gan, the_set, data, config, seed=0)
        if team.is_main:
            Path(out).write_text(f"{result.metrics['seconds']} {result.metrics['real_size'] * epochs}")


def _one(world: int, model: str, epochs: int, batch_size: int, samples: int | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "seconds.txt")
        mp.spawn(_worker, args=(world, _free_port(), model, epochs, batch_size, samples, out), nprocs=world, join=True)
        seconds, samples = map(float, Path(out).read_text().split())
    return {"seconds": seconds, "samples": samples, "samples_per_second": samples / seconds}


def measure(model: str = "mnist-dcgan", epochs: int = 1, batch_size: int = 64,
            samples: int | None = None) -> dict[str, float]:
    """Samples/s of a redaction epoch with 1 and 2 gloo processes, and their ratio (2 over 1)."""
    one, two = _one(1, model, epochs, batch_size, samples), _one(2, model, epochs, batch_size, samples)
    return {"model": model, "batch_size": batch_size, "samples": one["samples"],
            "samples_per_second_1": one["samples_per_second"], "samples_per_second_2": two["samples_per_second"],
            "seconds_1": one["seconds"], "seconds_2": two["seconds"],
            "ratio": two["samples_per_second"] / one["samples_per_second"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mnist-dcgan")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=None, help="redact on this many training images")
    args = parser.parse_args()
    m = measure(args.model, args.epochs, args.batch_size, args.samples)
    print(f"redaction of {m['model']}, {m['samples']:.0f} samples per run, global batch {m['batch_size']}:")
    print(f"  1 process : {m['samples_per_second_1']:8.1f} samples/s ({m['seconds_1']:.1f} s)")
    print(f"  2 processes (gloo): {m['samples_per_second_2']:8.1f} samples/s ({m['seconds_2']:.1f} s)")
    print(f"  ratio 2 / 1: {m['ratio']:.2f}x  (machine load: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
