"""Benchmark of data redaction against the deletion baseline (Kong & Chaudhuri 2023) on mnist-dcgan, label 0.

The paper's claim measured here: redaction (8 epochs of fine-tuning, App. D) costs a fraction of retraining from
scratch without the deleted samples. One run of this script measures, on this machine, for each of the three
redaction algorithms (data-, validity-, classifier-based; `core.methods.redaction.redact`, the paper's MNIST
defaults) and for the deletion baseline (`core.methods.redaction.deletion_job`: mnist-dcgan's architecture
retrained from scratch by its zoo recipe on the 3,600 training images that are not zeros):

- `train s`: seconds of redaction / retraining as the engine reports them (`metrics["seconds"]`), which exclude
  the invalidity / IS / FID measurements at the checkpoints (a redaction's seconds do include copying the model,
  building Omega, the Meter's reference statistics and choosing the film latents: a few seconds);
- `wall s`: wall time of the whole call, measurements included;
- `ratio`: train s of the redaction / train s of the deletion baseline *measured in the same run* (and `wall
  ratio` likewise); with `--deletion-epochs` below the recipe's 60 the baseline is a shortened retraining, the
  output says so, and the ratio is against that shortened retraining (nothing is scaled up to 60 epochs);
- `peak MB`: peak resident memory (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) of a fresh process that ran only
  that measurement (each measurement runs in its own spawned process, so peaks do not leak into each other);
  `setup MB` is the same process's peak after importing torch and loading the GAN, its data and judges, before
  the measurement started;
- `inv before` / `inv after`: invalidity (fraction of `--eval-samples` generated samples the mnist-lenet judge
  calls a 0) of the pre-trained and the edited model on the same latents, with binomial standard errors;
  `IS after`: IS[mnist-lenet] of the edited model.

With `--repeat N` every measurement runs N times (seeds 0..N-1) and the table shows medians (timings on this
shared machine have 3-8x outliers); the per-repeat rows are printed too. Torch uses `--threads` threads (default
1: on 2 cores shared with other jobs, 2 threads measured 5-8x slower than 1).

    .venv/bin/python bench/redaction.py [--repeat 1] [--epochs 8] [--deletion-epochs 60] [--eval-samples 5000]
                                        [--threads 1] [--algorithms data validity classifier] [--no-deletion]

`make bench` runs it with no arguments: the full measurement (8 redaction epochs, 60-epoch retraining). Measured
here: 895 s (15 min; 1.2-1.6 min per redaction, 8.6 min of retraining) on 2 shared cores, and 1,775 s (30 min)
when the redaction notebook ran at the same time. `--deletion-epochs 20` shortens it, with the ratio labelled so.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL, FORGET = "mnist-dcgan", "label=0"
ALGORITHM_NAMES = ("data", "validity", "classifier")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _setup(threads: int):
    """Import the engine, load the GAN and its redaction context (in the measuring process)."""
    sys.path.insert(0, str(ROOT))
    import torch

    torch.set_num_threads(threads)
    from core.methods.redaction import redaction_context
    from core.models import load_model

    gan = load_model(MODEL, "cpu")
    return gan, redaction_context(gan, FORGET)


def measure(kind: str, seed: int, epochs: int, eval_samples: int, threads: int) -> dict:
    """One measurement in a fresh process: `kind` is a redaction algorithm or "deletion"."""
    gan, ctx = _setup(threads)
    setup_mb = _peak_mb()
    from core.methods.redaction import RedactionConfig, deletion_job, redact

    start = time.perf_counter()
    if kind == "deletion":
        metrics = deletion_job(gan, ctx, "data", 0.5, seed, epochs, eval_samples)(lambda e: None, None).metrics
    else:
        config = RedactionConfig(algorithm=kind, epochs=epochs, eval_samples=eval_samples, first_epoch_checks=1)
        metrics = redact(gan, ctx.redaction_set, ctx.data, config, seed, ctx.judge).metrics
    wall = time.perf_counter() - start
    return {"method": kind, "seed": seed, "epochs": epochs, "train s": float(metrics["seconds"]), "wall s": wall,
            "setup MB": setup_mb, "peak MB": _peak_mb(),
            "inv before": metrics["invalidity_before"], "se before": metrics["invalidity_before_se"],
            "inv after": metrics["invalidity_after"], "se after": metrics["invalidity_after_se"],
            "IS after": metrics.get("is_after", float("nan"))}


def _isolated(pool_context, *args) -> dict:
    with futures.ProcessPoolExecutor(max_workers=1, mp_context=pool_context) as pool:
        return pool.submit(measure, *args).result()


def _recipe_epochs() -> tuple[int, float | None]:
    """The zoo recipe's epochs and the training seconds recorded on the shipped card (for reference only)."""
    from core.methods.redaction.deletion import zoo_recipe
    from core.models import load_model

    gan = load_model(MODEL, "cpu")
    _, recipe, _ = zoo_recipe(gan)
    return int(recipe.epochs), gan.card.training.get("seconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the table shows medians")
    parser.add_argument("--epochs", type=int, default=8, help="redaction epochs (default 8, the paper's MNIST)")
    parser.add_argument("--deletion-epochs", type=int, default=None,
                        help="retraining epochs of the deletion baseline (default: the zoo recipe's 60)")
    parser.add_argument("--eval-samples", type=int, default=5000,
                        help="generated samples per invalidity / IS measurement (default 5000; the paper 50,000)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    parser.add_argument("--algorithms", nargs="+", choices=ALGORITHM_NAMES, default=list(ALGORITHM_NAMES))
    parser.add_argument("--no-deletion", action="store_true", help="skip the deletion baseline")
    args = parser.parse_args()
    if args.repeat < 1 or args.epochs < 1 or (args.deletion_epochs is not None and args.deletion_epochs < 1):
        parser.error("--repeat, --epochs and --deletion-epochs must be at least 1")

    import pandas as pd

    recipe_epochs, card_seconds = _recipe_epochs()
    deletion_epochs = args.deletion_epochs or recipe_epochs
    kinds = list(args.algorithms) + ([] if args.no_deletion else ["deletion"])
    spawn = multiprocessing.get_context("spawn")
    rows = []
    started = time.perf_counter()
    for seed in range(args.repeat):
        for kind in kinds:
            epochs = deletion_epochs if kind == "deletion" else args.epochs
            row = _isolated(spawn, kind, seed, epochs, args.eval_samples, args.threads)
            rows.append(row)
            print(f"measured {kind} (seed {seed}): {row['train s']:.1f} s, wall {row['wall s']:.1f} s, "
                  f"peak {row['peak MB']:.0f} MB", file=sys.stderr, flush=True)
    every = pd.DataFrame(rows)
    table = every.groupby("method", sort=False).median(numeric_only=True).drop(columns=["seed"]).reset_index()
    if "deletion" in set(table["method"]):
        base = table.set_index("method").loc["deletion"]
        table["ratio"] = table["train s"] / base["train s"]
        table["wall ratio"] = table["wall s"] / base["wall s"]
    table["epochs"] = table["epochs"].astype(int)

    print(f"Redaction benchmark: {MODEL}, forget {FORGET}, CPU, {args.threads} torch thread(s), "
          f"{args.repeat} repeat(s) (medians shown), invalidity on {args.eval_samples} samples; "
          f"total {time.perf_counter() - started:.0f} s.")
    print(f"Redaction: {args.epochs} epochs (paper: 8). Deletion baseline: retraining from scratch without the "
          f"zeros by the zoo recipe, {deletion_epochs} epochs" +
          ("." if deletion_epochs == recipe_epochs else
           f" -- SHORTENED from the recipe's {recipe_epochs}: the ratio is against this shortened retraining."))
    if card_seconds:
        print(f"For reference (not measured in this run): the shipped card records {card_seconds:.0f} s for "
              f"the full {recipe_epochs}-epoch training at zoo training time (2 threads, other jobs running).")
    print("train s excludes the checkpoint measurements; wall s includes them; ratio = train s / deletion train s; "
          "peak MB = ru_maxrss of a fresh process per measurement.")
    fmt = {"inv before": "{:.2e}", "se before": "{:.1e}", "inv after": "{:.2e}", "se after": "{:.1e}"}
    shown = table.copy()
    for column, pattern in fmt.items():
        shown[column] = shown[column].map(pattern.format)
    print(shown.to_string(index=False, float_format=lambda v: f"{v:,.3f}" if abs(v) < 1 else f"{v:,.1f}"))
    if args.repeat > 1:
        print("every repeat:")
        print(every.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
