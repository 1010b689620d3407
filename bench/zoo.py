"""Benchmark of the zoo on this machine: training seconds per epoch and samples per second, one table.

Columns, and where each number comes from (nothing is extrapolated):
- `s/epoch (card)`: the recipe's full training wall time divided by its epochs, as the recipe measured and
  recorded them in the shipped card (`card.training["seconds"] / ["epochs"]`) when the zoo was trained here.
- `smoke s`: wall time of the recipe in smoke mode (a few steps on a tiny subset, plus its evaluator), measured
  now: what CI pays per recipe. Datasets are cached per process, so the first recipe on a dataset also pays
  for loading it (as the first test on that dataset does in CI).
- `samples/s`: measured now on the shipped weights, after one warm-up call: GANs and flows generate samples,
  classifiers compute logits and I2I models restore images (of random inputs of the model's shape).

    .venv/bin/python bench/zoo.py [NAME ...] [--no-smoke] [--threads 1] [-n 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.errors import LetheError  # noqa: E402
from core.models import Bundle, ClassifierBundle, FlowBundle, GANBundle, I2IBundle, load_model  # noqa: E402
from core.progress import NO_PROGRESS, CancelToken  # noqa: E402
from core.zoo.registry import ZOO, zoo_folder  # noqa: E402


def samples_per_second(bundle: Bundle, n: int) -> float:
    """Throughput of the model's main forward use, after a warm-up call on a few inputs."""
    def run(k: int) -> None:
        if isinstance(bundle, GANBundle):
            bundle.sample(k, seed=0)
        elif isinstance(bundle, FlowBundle):
            bundle.sample(k, seed=0)
        elif isinstance(bundle, ClassifierBundle):
            bundle.logits(torch.rand(k, *bundle.data_shape))
        elif isinstance(bundle, I2IBundle):
            with torch.no_grad():
                bundle.restore(torch.rand(k, *bundle.data_shape))

    run(8)
    start = time.perf_counter()
    run(n)
    return n / (time.perf_counter() - start)


def smoke_seconds(name: str) -> float:
    start = time.perf_counter()
    ZOO[name].train(seed=0, device="cpu", progress=NO_PROGRESS, cancel=CancelToken(), smoke=True)
    return time.perf_counter() - start


def bench_entry(name: str, n: int, smoke: bool) -> dict:
    row: dict = {"model": name, "family": ZOO[name].family}
    shipped = (zoo_folder(name) / "model.safetensors").is_file()
    if shipped:
        bundle = load_model(name, device="cpu")
        training = bundle.card.training
        if training.get("seconds") and training.get("epochs"):
            row["epochs"] = training["epochs"]
            row["s/epoch (card)"] = training["seconds"] / training["epochs"]
        row["samples/s"] = samples_per_second(bundle, n)
    else:
        row["note"] = "not shipped"
    if smoke:
        try:
            row["smoke s"] = smoke_seconds(name)
        except (ImportError, AttributeError) as exc:
            row["note"] = f"no recipe yet ({type(exc).__name__})"
        except LetheError as exc:
            row["note"] = f"smoke failed: {exc.message}"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="zoo models (default: all)")
    parser.add_argument("--no-smoke", action="store_true", help="skip the smoke-mode recipe runs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    parser.add_argument("-n", type=int, default=1000, help="samples per throughput measurement (default 1000)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.names or list(ZOO)
    unknown = [n for n in names if n not in ZOO]
    if unknown:
        parser.error(f"not zoo models: {', '.join(unknown)}")
    rows = []
    for name in names:
        rows.append(bench_entry(name, args.n, not args.no_smoke))
        print(f"measured {name}", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    if "epochs" in table:
        table["epochs"] = table["epochs"].map(lambda v: "-" if pd.isna(v) else str(int(v)))
    print(f"Zoo benchmark, CPU, {args.threads} torch thread(s), n = {args.n} samples per throughput measurement.")
    print("s/epoch (card): full training time / epochs recorded by the recipe at zoo training time; "
          "smoke s (includes loading a dataset the first time) and samples/s: measured in this run.")
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}", na_rep="-"))


if __name__ == "__main__":
    main()
