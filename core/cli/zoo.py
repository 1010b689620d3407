"""`python -m core zoo list|show NAME|train NAME [--smoke] [--seed S] [--out DIR]`.

`zoo train` runs the entry's recipe as a run (events, status and the trained model in the run store), then
saves the model to `assets/zoo/NAME` in float16, or float32 when the recipe's card asks for it with
`card.training["storage_dtype"] = "float32"` (for models whose quality float16 would change). A smoke run
(`--smoke`: a few steps on a tiny subset) never overwrites shipped weights: its model stays in the run folder
unless `--out DIR` names a folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from core.cli.common import Output, StderrProgress, key_values, run_failure, store_of
from core.cli.validate import writable_folder
from core.device import resolve_device
from core.errors import LetheError
from core.models.card import ModelCard
from core.models.checkpoint import load_bundle, save_bundle
from core.runs import JobResult, run_now
from core.zoo.lookup import floor_failures
from core.zoo.registry import ZOO, ZooEntry, zoo_folder


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    zoo = sub.add_parser("zoo", help="list, show and train the pretrained models")
    verbs = zoo.add_subparsers(dest="zoo_verb", required=True, metavar="list|show|train")
    verbs.add_parser("list", parents=[common], help="every zoo model, shipped or not").set_defaults(handler=zoo_list)
    show = verbs.add_parser("show", parents=[common], help="a zoo model's entry and card")
    show.add_argument("name")
    show.set_defaults(handler=zoo_show)
    train = verbs.add_parser("train", parents=[common], help="train a zoo model with its recipe")
    train.add_argument("name")
    train.add_argument("--smoke", action="store_true", help="a few steps on a tiny subset (does not ship weights)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default=None, help="save here instead of assets/zoo/NAME")
    train.set_defaults(handler=zoo_train)


def entry(name: str) -> ZooEntry:
    if name not in ZOO:
        raise LetheError(f"{name!r} is not a zoo model.", f"Zoo models: {', '.join(ZOO)}.")
    return ZOO[name]


def shipped_card(name: str) -> ModelCard | None:
    folder = zoo_folder(name)
    return ModelCard.read(folder / "card.json") if (folder / "model.safetensors").is_file() else None


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.glob("*") if p.is_file()) / 2**20 if folder.is_dir() else 0.0


def _describe(e: ZooEntry) -> dict[str, Any]:
    card = shipped_card(e.name)
    return {
        "name": e.name, "family": e.family, "dataset": e.dataset, "description": e.description,
        "shipped": card is not None, "size_mb": round(_folder_mb(zoo_folder(e.name)), 3),
        "metrics": card.metrics if card else {},
        "floors": {k: list(v) for k, v in e.floors.items()},
        "floor_failures": floor_failures(e, card.metrics) if card else [],
        "needs": list(e.needs),
    }


def zoo_list(args: argparse.Namespace) -> Output:
    rows = [_describe(e) for e in ZOO.values()]
    table = pd.DataFrame([{
        "name": r["name"], "family": r["family"], "dataset": r["dataset"], "shipped": "yes" if r["shipped"] else "no",
        "MB": r["size_mb"], "metrics": ", ".join(f"{k}={v:.4g}" for k, v in r["metrics"].items()),
    } for r in rows])
    return Output({"models": rows}, table.to_string(index=False))


def zoo_show(args: argparse.Namespace) -> Output:
    e = entry(args.name)
    info = _describe(e)
    card = shipped_card(e.name)
    info["card"] = card.__dict__ if card else None
    lines = [f"{e.name} ({e.family}, {e.dataset}): {e.description}",
             f"recipe {e.recipe}, evaluator {e.evaluator}",
             "floors:", key_values({k: f"{op} {v}" for k, (op, v) in e.floors.items()})]
    if card is None:
        lines.append(f"not shipped: train it with `python -m core zoo train {e.name}`")
    else:
        lines += ["measured:", key_values(card.metrics), "training:", key_values(card.training),
                  f"folder {zoo_folder(e.name)} ({info['size_mb']:.2f} MB, {card.dtype})"]
        lines += [f"FLOOR NOT MET: {f}" for f in info["floor_failures"]]
    return Output(info, "\n".join(lines))


def zoo_train(args: argparse.Namespace) -> Output:
    e = entry(args.name)
    missing = [n for n in e.needs if shipped_card(n) is None]
    if missing:
        raise LetheError(f"{e.name} needs the zoo model(s) {', '.join(missing)}, which are not trained yet.",
                         f"Train them first: python -m core zoo train {missing[0]}")
    device = resolve_device(args.device)
    store = store_of(args)
    writable_folder(store.root, "the runs folder (--runs-dir or $LETHE_RUNS)")
    if args.out:
        writable_folder(args.out, "--out")
    torch.manual_seed(args.seed)

    def job(progress, cancel):
        bundle = e.train(seed=args.seed, device=device, progress=progress, cancel=cancel, smoke=args.smoke)
        return JobResult(bundle=bundle, metrics=dict(bundle.card.metrics))  # metrics.json feeds the runs index

    run = run_now(job, method="zoo-train", model=e.name, params={"smoke": args.smoke, "recipe": e.recipe},
                  seed=args.seed, device=str(device), store=store, listener=StderrProgress(f"train {e.name}"))
    failure = run_failure(run)
    if failure is not None:
        return Output({"name": e.name, "run": run.id, "status": run.status, "error": run.error}, error=failure)
    if run.model_spec is None:
        raise LetheError(f"The recipe {e.recipe} returned no model.", "A recipe must return the trained bundle.")
    bundle = load_bundle(run.model_spec)
    folder: Path | None = Path(args.out) if args.out else (None if args.smoke else zoo_folder(e.name))
    if folder is not None:
        dtype = torch.float32 if bundle.card.training.get("storage_dtype") == "float32" else torch.float16
        save_bundle(bundle, folder, dtype=dtype)
    failures = [] if args.smoke else floor_failures(e, bundle.card.metrics)
    result = {
        "name": e.name, "smoke": args.smoke, "run": run.id, "status": run.status, "seconds": run.duration,
        "folder": str(folder) if folder else run.model_spec,
        "size_mb": round(_folder_mb(folder), 3) if folder else None,
        "metrics": bundle.card.metrics, "floor_failures": failures,
    }
    text = "\n".join([f"trained {e.name} in {run.duration:.1f} s (run {run.id})",
                      f"saved to {result['folder']}", "metrics:", key_values(bundle.card.metrics)])
    return Output(result, text, warnings=[f"{e.name}: floor not met: {f}" for f in failures])
