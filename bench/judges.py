"""Do the zoo judges read generated images right? One table per judge, and a labelled grid to count by eye.

For the synthfaces attribute judge: the share of each attribute in the training renders (true labels), as the
judge reads the training renders, and as it reads samples of synthfaces-dcgan and synthfaces-flow (temperature
0.7). A judge that reads samples right gives sample shares near the training shares wherever the generator is
faithful; a judge that misreads them shows shares no generator would produce (the first judge, trained on clean
renders only, read 71% of DCGAN samples as wearing glasses, against 20% in the data).
For every zoo judge: accuracy on the clean held-out images and on their degraded copy (`core.zoo.augmentation`).

`--grid PATH` writes the first 32 DCGAN and 32 flow samples with the attributes the judge reads under each face.
`--judge DIR` measures another attribute judge (e.g. older weights saved in a folder) in place of the zoo's.

    .venv/bin/python bench/judges.py [--judge DIR] [-n 2000] [--grid judges.png] [--accuracy]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data import load  # noqa: E402
from core.models import ClassifierBundle, load_model  # noqa: E402
from core.viz.images import to_uint8_rgb  # noqa: E402
from core.zoo.registry import ZOO  # noqa: E402

FLOW_TEMPERATURE = 0.7
SHORT = {"glasses": "gl", "smile": "sm", "beard": "bd", "hat": "hat", "dark_hair": "dk", "light_skin": "lt",
         "long_hair": "lh", "mouth_open": "mo"}


def generated_samples(n: int, seed: int) -> dict[str, torch.Tensor]:
    """n samples of each synthfaces generator, in [0, 1]."""
    gan, _ = load_model("synthfaces-dcgan", "cpu").sample(n, seed=seed)
    flow = load_model("synthfaces-flow", "cpu").sample(n, seed=seed, temperature=FLOW_TEMPERATURE)
    return {"synthfaces-dcgan": gan, f"synthfaces-flow (T={FLOW_TEMPERATURE})": flow.clamp(0, 1)}


@torch.no_grad()
def share_table(judge: ClassifierBundle, samples: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Attribute shares (%): true in the train renders, read by the judge on them and on each sample set."""
    train = load("synthfaces", "train")
    columns = {"train (true)": train.attributes.float().mean(0),
               "train (read)": (judge.logits(train.x) > 0).float().mean(0)}
    columns.update({name: (judge.logits(x) > 0).float().mean(0) for name, x in samples.items()})
    percent = {k: (100 * v.double()).numpy().round(1) for k, v in columns.items()}
    return pd.DataFrame(percent, index=list(train.attribute_names))


def accuracy_table(names: list[str]) -> pd.DataFrame:
    """Clean and degraded held-out accuracy of each named zoo judge (its evaluator, measured now)."""
    rows = []
    for name in names:
        metrics = ZOO[name].evaluate(load_model(name, "cpu"), "cpu")
        for key, value in metrics.items():
            if key.endswith("[degraded]") and key.count("[") == 1:
                base = key.removesuffix("[degraded]")
                rows.append({"judge": name, "metric": base, "clean": round(metrics[base], 4),
                             "degraded": round(value, 4)})
    return pd.DataFrame(rows)


@torch.no_grad()
def labelled_grid(judge: ClassifierBundle, x: torch.Tensor, ncol: int = 8, scale: int = 4) -> Image.Image:
    """The images in a grid, each with the short names of the attributes the judge reads under it."""
    read = judge.logits(x) > 0
    side, text_h = x.shape[-1] * scale, 24
    sheet = Image.new("RGB", (ncol * (side + 4), -(-len(x) // ncol) * (side + text_h + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (img, flags) in enumerate(zip(x, read)):
        r, c = divmod(i, ncol)
        left, top = c * (side + 4), r * (side + text_h + 4)
        sheet.paste(Image.fromarray(to_uint8_rgb(img.numpy(), scale)), (left, top))
        names = [SHORT.get(a, a) for a, on in zip(judge.class_names, flags.tolist()) if on]
        draw.text((left + 1, top + side + 1), " ".join(names[:4]), fill="black")
        draw.text((left + 1, top + side + 12), " ".join(names[4:]), fill="black")
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge", default="synthfaces-attributes", help="attribute judge spec (zoo name or folder)")
    parser.add_argument("-n", type=int, default=2000, help="samples per generator")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--grid", help="write a labelled grid of 32 samples per generator to this PNG")
    parser.add_argument("--accuracy", action="store_true", help="also the clean/degraded accuracy of every zoo judge")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    judge = load_model(args.judge, "cpu")
    samples = generated_samples(args.n, args.seed)
    print(f"attribute shares (%) read by {args.judge} on {args.n} samples per generator")
    print(share_table(judge, samples).to_string())
    if args.grid:
        sheets = [labelled_grid(judge, x[:32]) for x in samples.values()]
        out = Image.new("RGB", (max(s.width for s in sheets), sum(s.height for s in sheets) + 10), "grey")
        out.paste(sheets[0], (0, 0))
        out.paste(sheets[1], (0, sheets[0].height + 10))
        out.save(args.grid)
        print(f"grid: {args.grid} (top: {list(samples)[0]}, bottom: {list(samples)[1]})")
    if args.accuracy:
        judges = [name for name, entry in ZOO.items() if entry.family == "classifier"]
        print(accuracy_table(judges).to_string())


if __name__ == "__main__":
    main()
