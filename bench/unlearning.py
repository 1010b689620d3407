"""Benchmark of image-to-image unlearning (Li et al., ICLR 2024) against retraining from scratch, on mnist-i2i.

One run of this script measures, on this machine:
- `unlearn s`: seconds of the unlearning loop (`UnlearnResult.seconds`: eq. 10 or a baseline on a copy of the
  model; the before/after measurements excluded) and `unlearn wall s` of the whole call;
- `retrain s`: seconds of retraining the I2I model from scratch by its zoo recipe (`core.zoo.i2i`) on the training
  split without the forget set, `--retrain-epochs` epochs (the recipe's 10 by default; fewer are labelled so and
  the ratio is against that shortened retraining, nothing is scaled);
- `ratio`: unlearn s / retrain s, both measured in this run;
- the targets on held-out digits for degradation `--kind`: FID[mnist-lenet] on the forget and retain sets of the
  original, the unlearned and the retrained model (forget FID should rise >= 5x, retain FID by <= 10%).

    .venv/bin/python bench/unlearning.py [--forget label=0,1] [--retain train] [--method ours] [--epochs 40]
                                         [--retrain-epochs 10] [--eval-size 500] [--kind center] [--no-retrain]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> None:
    import torch

    from core.methods.unlearning import METHODS, UnlearnConfig, measure, prepare, unlearn
    from core.models.spec import load_model
    from core.progress import CancelToken
    from core.zoo.i2i import _train_i2i, psnr_report

    defaults = UnlearnConfig()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mnist-i2i")
    ap.add_argument("--forget", default="label=0,1")
    ap.add_argument("--retain", default="train")
    ap.add_argument("--method", choices=METHODS, default="ours")
    ap.add_argument("--epochs", type=int, default=defaults.epochs)
    ap.add_argument("--lr", type=float, default=defaults.lr)
    ap.add_argument("--alpha", type=float, default=defaults.alpha)
    ap.add_argument("--retrain-epochs", type=int, default=10)
    ap.add_argument("--eval-size", type=int, default=500)
    ap.add_argument("--kind", default="center")
    ap.add_argument("--no-retrain", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    original = load_model(args.model)
    sets, judges = prepare(original, args.forget, retain=args.retain, eval_size=args.eval_size)
    kinds = (args.kind,)
    print(sets.describe(), flush=True)
    rows = {"original": measure(original, sets, judges, kinds=kinds)}
    config = UnlearnConfig(method=args.method, epochs=args.epochs, lr=args.lr, alpha=args.alpha)
    start = time.perf_counter()
    result = unlearn(original, sets, config)
    wall = time.perf_counter() - start
    rows[args.method] = measure(result.bundle, sets, judges, kinds=kinds)
    print(f"unlearn s {result.seconds:.1f} (wall {wall:.1f}) for {args.epochs} epochs over D_F "
          f"({'within' if result.seconds <= 300 else 'over'} the 5-minute target of a default unlearning)", flush=True)
    if not args.no_retrain:
        name = original.card.name
        dataset = original.card.data["dataset"]
        hp = original.card.hparams
        start = time.perf_counter()
        retrained = _train_i2i(name, dataset, lambda b, d: psnr_report(b, sets.eval_retain.x[:64]), seed=0,
                               device="cpu", progress=lambda e: None, cancel=CancelToken(),
                               smoke=False, epochs=args.retrain_epochs, width=hp["width"],
                               latent_channels=hp["latent_channels"], train=sets.retain)
        retrain_wall = time.perf_counter() - start
        retrain_s = retrained.card.training["seconds"]
        rows["retrained"] = measure(retrained, sets, judges, kinds=kinds)
        label = "" if args.retrain_epochs == 10 else f" (shortened: {args.retrain_epochs} of the recipe's 10 epochs)"
        print(f"retrain s {retrain_s:.1f} (wall {retrain_wall:.1f}){label}")
        print(f"ratio unlearn / retrain: {result.seconds / retrain_s:.4f}")
    k = args.kind
    print(f"\n{'model':<14} {'FID R':>8} {'FID F':>8} {'IS R':>6} {'IS F':>6} {'cos R':>6} {'cos F':>6} "
          f"{'PSNR R':>7} {'PSNR F':>7}   (judge {judges.quality.card.name}, {k})")
    for name, m in rows.items():
        print(f"{name:<14} {m[f'fid_retain[{k}]']:8.2f} {m[f'fid_forget[{k}]']:8.2f} {m[f'is_retain[{k}]']:6.2f} "
              f"{m[f'is_forget[{k}]']:6.2f} {m[f'cos_retain[{k}]']:6.3f} {m[f'cos_forget[{k}]']:6.3f} "
              f"{m[f'psnr_retain[{k}]']:7.2f} {m[f'psnr_forget[{k}]']:7.2f}")
    before, after = rows["original"], rows[args.method]
    print(f"\nforget FID x{after[f'fid_forget[{k}]'] / before[f'fid_forget[{k}]']:.2f} (target >= 5), retain FID "
          f"{after[f'fid_retain[{k}]'] / before[f'fid_retain[{k}]'] - 1:+.1%} (target <= +10%, proxy <= +20%)")


if __name__ == "__main__":
    main()
