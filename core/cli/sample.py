"""`python -m core sample MODEL -n N --seed S --out FILE [--temperature T] [--label L]`.

FILE ending in `.png`: one image grid (about square). FILE ending in `.npy`: a float32 array of N x C x H x W in
[0, 1] (N x D raw coordinates for the 2-D toy models). A conditional GAN also writes the class of every sample as
an int64 array of shape (N,) to `<FILE without its suffix>.labels.npy` (`grid.png` -> `grid.labels.npy`).
Flows take `--temperature` (the latent's standard deviation); conditional GANs take `--label` to draw one class.
The same MODEL, N and seed always give the same samples.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from core.cli.common import Output
from core.cli.validate import output_file
from core.device import resolve_device
from core.errors import LetheError
from core.models.bundles import FlowBundle, GANBundle
from core.models.spec import load_model
from core.runs.store import save_png_grid


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("sample", parents=[common], help="draw samples from a GAN or flow into a .png or .npy")
    p.add_argument("model", help="zoo name, saved model folder, or package.module:factory")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="FILE.png (grid) or FILE.npy (N x C x H x W float32 in [0, 1])")
    p.add_argument("--temperature", type=float, default=None, help="flows only: latent standard deviation")
    p.add_argument("--label", type=int, default=None, help="conditional GANs only: draw this class only")
    p.set_defaults(handler=sample)


def labels_path(out: Path) -> Path:
    """Where the labels of a conditional model's samples go: `<out without suffix>.labels.npy`."""
    return out.with_suffix(".labels.npy")


def sample(args: argparse.Namespace) -> Output:
    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        raise LetheError(f"Cannot write samples to {out.name!r}.", "End --out with .png (a grid) or .npy (an array).")
    if args.n < 1:
        raise LetheError(f"-n must be at least 1 (got {args.n}).", "Ask for one or more samples.")
    out = output_file(out)  # a folder that cannot exist fails now, not after sampling
    start = time.perf_counter()
    bundle = load_model(args.model, resolve_device(args.device))
    labels = None
    if isinstance(bundle, FlowBundle):
        if args.label is not None:
            raise LetheError("--label applies to conditional GANs only.", "Drop --label for a flow.")
        x = bundle.sample(args.n, seed=args.seed, temperature=1.0 if args.temperature is None else args.temperature)
    elif isinstance(bundle, GANBundle):
        if args.temperature is not None:
            raise LetheError("--temperature applies to flows only.", "Drop --temperature for a GAN.")
        wanted = None
        if args.label is not None:
            if not bundle.conditional or not 0 <= args.label < bundle.num_classes:
                raise LetheError(f"--label {args.label} does not fit {bundle.card.name!r} "
                                 f"({bundle.num_classes} classes).",
                                 "Use a class index of a conditional GAN, or drop --label.")
            wanted = torch.full((args.n,), args.label, dtype=torch.long)
        x, labels = bundle.sample(args.n, seed=args.seed, labels=wanted)
    else:
        raise LetheError(f"{bundle.card.name!r} is a {bundle.family} model, which does not generate samples.",
                         "Sample from a GAN or a flow; evaluate other models with `python -m core eval`.")
    if out.suffix == ".png" and x.dim() != 4:
        raise LetheError(f"{bundle.card.name!r} makes {tuple(x.shape[1:])}-shaped points, not images.",
                         "Write them to a .npy file instead.")
    if out.suffix == ".png":
        save_png_grid(x, out)
    else:
        np.save(out, x.numpy().astype(np.float32), allow_pickle=False)
    result = {"model": args.model, "out": str(out), "n": args.n, "seed": args.seed, "shape": list(x.shape),
              "labels": None, "seconds": time.perf_counter() - start}
    if labels is not None:
        np.save(labels_path(out), labels.numpy().astype(np.int64), allow_pickle=False)
        result["labels"] = str(labels_path(out))
    text = f"wrote {args.n} samples of {args.model} to {out}"
    if labels is not None:
        text += f" and their labels to {result['labels']}"
    return Output(result, text)
