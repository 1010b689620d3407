"""Benchmark of GOLD (issue 14's targets), measured in one run on this machine.

1. Scoring vs a plain discriminator forward on the same batch of generated samples (target: GOLD <= 2x).
2. Accepted samples per second with rejection sampling (eq. 6) vs plain sampling, at p = 0.1 and 0.5 (the burn-in
   that fixes M and gamma is timed separately).
3. Wall time of one re-weighted training epoch (eq. 5) vs one plain epoch of the same fresh model (target <= 1.2x).
4. `--fitting SEEDS`: fitting capacity of plain vs GOLD-rejection samples (Table 3) over seeds 0..SEEDS-1, with
   `--fc-samples` samples and `--fc-epochs` LeNet epochs each (paper: 50,000 and 40), mean +- std.

    .venv/bin/python bench/gold.py [--model mnist-acgan] [--batch 2000] [--repeats 5] [--fitting 3]

The 2 CPU cores may be shared, so compare ratios measured in the same run; timings are medians over repeats.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data import load  # noqa: E402
from core.methods.gold import burn_in, reweight_power, rejection_gain, rejection_sample, score, terms  # noqa: E402
from core.methods.gold.training import fresh_copy, recipe_for  # noqa: E402
from core.models.spec import load_model  # noqa: E402
from core.zoo.gans import fit_acgan  # noqa: E402


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def scoring(gan, batch: int, repeats: int) -> dict[str, float]:
    x, y = gan.sample(batch, seed=0)

    def forward():
        with torch.no_grad():
            gan.discriminate(x)

    plain = median_seconds(forward, repeats)
    gold = median_seconds(lambda: score(gan, x, y, "generated", batch_size=batch), repeats)
    return {"d_forward_s": plain, "gold_score_s": gold, "gold_over_forward": gold / plain}


def sampling(gan, n: int, burn: int) -> dict[str, float]:
    start = time.perf_counter()
    gan.sample(n, seed=0)
    plain = n / (time.perf_counter() - start)
    out = {"plain_samples_per_s": plain}
    for p in (0.1, 0.5):
        start = time.perf_counter()
        calibration = burn_in(gan, burn, 1, p)
        out[f"burn_in_s_p{p}"] = time.perf_counter() - start
        result = rejection_sample(gan, n, p, seed=0, calibration=calibration)
        out[f"accepted_per_s_p{p}"] = n / result.seconds
        out[f"acceptance_rate_p{p}"] = result.acceptance_rate
        out[f"accepted_over_plain_p{p}"] = out[f"accepted_per_s_p{p}"] / plain
    return out


def epochs(gan, data, repeats: int) -> dict[str, float]:
    recipe = recipe_for(gan, 1)
    size = min(len(data), 4000)
    x, y = data.x[:size], data.labels[:size]

    def weights(logit, class_logits, c):
        marginal, conditional = terms(logit, class_logits, c)
        return reweight_power(marginal + conditional, 1.0)

    plain, gold = [], []
    for r in range(repeats):  # interleaved, so both see the same load
        model = fresh_copy(gan, r)
        plain.append(fit_acgan(model, x, y, recipe, r))
        model = fresh_copy(gan, r)
        gold.append(fit_acgan(model, x, y, recipe, r, fake_weights=weights))
    p, g = statistics.median(plain), statistics.median(gold)
    return {"plain_epoch_s": p, "reweighted_epoch_s": g, "reweighted_over_plain": g / p}


def fitting(gan, test, seeds: int, n: int, fc_epochs: int, burn: int, p: float) -> dict[str, float]:
    rows = [rejection_gain(gan, test.x, test.labels, p, n=n, epochs=fc_epochs, burn_in_size=burn, seed=s)
            for s in range(seeds)]
    for s, row in enumerate(rows):
        print(f"  seed {s}: baseline {row['fitting_capacity_baseline']:.4f}  gold {row['fitting_capacity_gold']:.4f}"
              f"  acceptance {row['acceptance_rate']:.3f}", flush=True)
    out = {}
    for key in ("fitting_capacity_baseline", "fitting_capacity_gold", "fitting_capacity_gain"):
        values = [r[key] for r in rows]
        out[f"{key}_mean"] = statistics.mean(values)
        out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mnist-acgan")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2000, help="samples drawn per sampling measurement")
    parser.add_argument("--burn-in", type=int, default=10_000)
    parser.add_argument("--epoch-repeats", type=int, default=2)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--fitting", type=int, default=0, metavar="SEEDS")
    parser.add_argument("--fc-samples", type=int, default=10_000)
    parser.add_argument("--fc-epochs", type=int, default=5)
    parser.add_argument("--p", type=float, default=0.1)
    args = parser.parse_args()
    gan = load_model(args.model)
    dataset = gan.card.data["dataset"]
    results: dict[str, float] = {}
    if not args.skip_speed:
        for name, part in (("scoring", lambda: scoring(gan, args.batch, args.repeats)),
                           ("sampling", lambda: sampling(gan, args.samples, args.burn_in)),
                           ("epochs", lambda: epochs(gan, load(dataset, "train"), args.epoch_repeats))):
            values = part()
            print(name, " ".join(f"{k}={v:.4g}" for k, v in values.items()), flush=True)
            results.update(values)
    if args.fitting:
        values = fitting(gan, load(dataset, "test"), args.fitting, args.fc_samples, args.fc_epochs, args.burn_in,
                         args.p)
        print("fitting", " ".join(f"{k}={v:.4g}" for k, v in values.items()), flush=True)
        results.update(values)
    print("\nsummary")
    for k, v in results.items():
        print(f"  {k:<36} {v:.4g}")


if __name__ == "__main__":
    main()
