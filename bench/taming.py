"""Benchmark of taming normalizing flows (issue 5's targets on synthfaces-flow), measured in one run on this machine.

1. Forget one identity (`identity=ID`; default 17 and three more, 311 being the slowest of 12 people tried):
   iterations and seconds to the threshold (eq. 10, delta = 4), iterations per second, QD on D_F / D'_F / D_R /
   D_R^id / D_R^NN, BPD on D_R before/after.
   Targets: threshold within 800 iterations and 3 minutes; QD_R <= 0.01, QD_id <= 0.02, QD on D'_F >= 0.05,
   BPD change on D_R <= 2%.
2. One epoch of training synthfaces-flow from scratch (same recipe, batch 64), timed in this process, and the ratio
   taming time / epoch time.
3. Forget an attribute (default `glasses`): its share in 2,000 generated samples must at least halve while
   FID[synthfaces-attributes] rises by at most 10%.
4. Rebalance an attribute toward a target share (default smile -> 0.5): within 5 points of the target.

    .venv/bin/python bench/taming.py [--identities 17 101 250 311] [--attribute glasses] [--attribute-iterations 300]
                                     [--rebalance smile=0.5]
                                     [--threads 2] [--skip-epoch]

Prints one line per measurement and a summary table; the 2 CPU cores may be shared, so compare ratios measured in
the same run, and repeat for medians.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.methods.taming import TamingConfig, prepare, tame, zoo_judges  # noqa: E402
from core.models.spec import load_model  # noqa: E402


def epoch_seconds(flow_name: str) -> float:
    """Seconds for one epoch of training the flow from scratch with its zoo recipe (fresh weights)."""
    from core.data import load
    from core.models.card import ModelCard
    from core.models.registry import build
    from core.zoo.flows import RECIPES, fit_flow

    recipe = RECIPES[flow_name]
    base = load_model(flow_name, "cpu")
    card = ModelCard(name="bench", family="flow", architecture=recipe.architecture, hparams=dict(recipe.hparams),
                     data_shape=list(base.data_shape))
    fresh = build(card)
    x = load(base.card.data["dataset"], "train").x
    one = type(recipe)(**{**recipe.__dict__, "epochs": 1})
    return fit_flow(fresh, x, one, seed=0)


def run(flow, spec: str, config: TamingConfig, judges, seed: int = 0) -> dict:
    sets, judge = prepare(flow, spec, seed=seed, judges=judges)
    result = tame(flow, sets, config, seed=seed, judges=judge)
    return {"spec": spec, **result.metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="synthfaces-flow")
    parser.add_argument("--identities", type=int, nargs="*", default=[17, 101, 250, 311])
    parser.add_argument("--attribute", default="glasses")
    parser.add_argument("--attribute-iterations", type=int, default=300,
                        help="iterations of attribute forgetting (Fig. 4: the share is controlled by the number of "
                             "steps; eq. 10 on random batches of a large D_F rarely stops a run before the cap)")
    parser.add_argument("--rebalance", default="smile=0.5",
                        help="ATTR=SHARE; smile is 45%% of the data; the retrained attribute judge reads it on 24%% of "
                             "samples at T = 0.7 (the first judge, trained on clean renders, read 79%%)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--skip-epoch", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    flow = load_model(args.model, "cpu")
    judges = zoo_judges(flow.card.data["dataset"])
    rows = []

    for ident in args.identities:
        m = run(flow, f"identity={ident}", TamingConfig(), judges)
        rows.append(m)
        print(f"identity {ident}: {m['iterations']} iterations, reached={m['reached_threshold']} (final max |d| "
              f"{m['forget_distance_max_abs_after']:.2f} sigma_R; q on D_F before {m['q_forget_before']:.3f}), "
              f"{m['seconds']:.1f} s ({m['iterations_per_second']:.2f} it/s; {m['seconds_total']:.1f} s with the "
              f"before/after evaluation); QD D_F {m['qd_forget']:.3f}, "
              f"D'_F {m['qd_holdout']:.3f}, D_R {m['qd_remember']:.4f}, D_R^id {m['qd_identities']:.4f}, "
              f"D_R^NN {m['qd_neighbours']:.4f}; BPD D_R {m['bpd_remember_before']:.4f} -> "
              f"{m['bpd_remember_after']:.4f} ({m['bpd_remember_change']:+.2%}); "
              f"{m.get('fid_judge')} {m.get('fid_before', float('nan')):.2f} -> {m.get('fid_after', float('nan')):.2f}",
              flush=True)

    if args.identities:
        people = pd.DataFrame(rows)
        print(f"{len(people)} identities: {int(people['reached_threshold'].sum())} reached eq. 10 within the cap; "
              f"median {people['iterations'].median():.0f} iterations (max {people['iterations'].max()}), "
              f"median {people['seconds'].median():.1f} s (max {people['seconds'].max():.1f} s, target < 180 s)",
              flush=True)

    epoch = None
    if not args.skip_epoch:
        epoch = epoch_seconds(args.model)
        print(f"one epoch of training {args.model} from scratch: {epoch:.1f} s", flush=True)
        for m in rows:
            m["taming_over_epoch"] = m["seconds"] / epoch
            print(f"  {m['spec']}: taming / epoch = {m['taming_over_epoch']:.2f}")

    if args.attribute:
        m = run(flow, f"attr={args.attribute}",
                TamingConfig(eval_samples=2000, max_iterations=args.attribute_iterations), judges)
        rows.append(m)
        print(f"attribute {args.attribute}: share {m['share_before']:.3f} -> {m['share_after']:.3f} "
              f"(ratio {m['share_after'] / max(m['share_before'], 1e-9):.2f}, target <= 0.5) in "
              f"{m['iterations']} iterations ({m['stop_reason']}), {m['seconds']:.1f} s; {m['fid_judge']} "
              f"{m['fid_before']:.2f} -> {m['fid_after']:.2f} ({m['fid_change']:+.1%} against D_R, target <= +10%; "
              f"{m['fid_all_change']:+.1%} against D_R and D_F together); "
              f"BPD D_R {m['bpd_remember_change']:+.2%}", flush=True)

    if args.rebalance:
        attr, _, target = args.rebalance.partition("=")
        m = run(flow, f"attr={attr}", TamingConfig(eval_samples=2000, target_share=float(target), monitor_every=5),
                judges)
        rows.append(m)
        print(f"rebalance {attr} -> {target}: share {m['share_before']:.3f} -> {m['share_after']:.3f} "
              f"(|gap| {abs(m['share_after'] - float(target)):.3f}, target <= 0.05), direction {m['direction']}, "
              f"{m['iterations']} iterations ({m['stop_reason']}), {m['seconds']:.1f} s; "
              f"{m['fid_judge']} {m['fid_change']:+.1%}", flush=True)

    cols = ["spec", "direction", "iterations", "reached_threshold", "stop_reason", "seconds", "iterations_per_second",
            "qd_forget", "qd_holdout", "qd_remember", "qd_identities", "qd_neighbours", "bpd_remember_change",
            "fid_change", "fid_all_change", "share_before", "share_after", "taming_over_epoch"]
    table = pd.DataFrame(rows)
    print(table[[c for c in cols if c in table]].to_string(index=False))
    if epoch:
        print(f"epoch seconds: {epoch:.1f}")


if __name__ == "__main__":
    main()
