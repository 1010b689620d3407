"""Benchmark of dataset loading on this machine: seconds to render synthfaces and to load the real datasets.

- `synthfaces`: renders N identities x 24 images (default 834 x 24 = 20,016 images, the issue's "20k in under a
  minute" target) at 32 x 32 and, with --size 64, at 64 x 64, bypassing every cache. Also prints the attribute
  frequencies of the render.
- `fashion-mnist`: first load in a fresh LETHE_HOME (gunzips Debian's files, then torchvision parses them) and a
  second load in the same process (the in-memory cache).

    .venv/bin/python bench/data.py [--identities 834] [--size 32 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.synthfaces import ATTRIBUTES, FaceConfig, render  # noqa: E402
from core.errors import LetheError  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=834)
    parser.add_argument("--size", type=int, nargs="+", default=[32])
    args = parser.parse_args()

    rows = []
    for size in args.size:
        cfg = FaceConfig(size=size, n_identities=args.identities)
        start = time.perf_counter()
        data = render(cfg)
        seconds = time.perf_counter() - start
        rows.append({"what": f"synthfaces render {size}x{size}", "images": len(data), "seconds": round(seconds, 2),
                     "images/s": round(len(data) / seconds)})
    freq = data.attributes.float().mean(0)

    with tempfile.TemporaryDirectory() as home:
        os.environ["LETHE_HOME"] = home
        from core.data import load

        for what in ("first load (prepare + parse)", "second load (cached)"):
            start = time.perf_counter()
            try:
                fashion = load("fashion-mnist", "all")
            except LetheError as err:
                rows.append({"what": f"fashion-mnist: {err}", "images": 0, "seconds": float("nan"), "images/s": 0})
                break
            seconds = time.perf_counter() - start
            rows.append({"what": f"fashion-mnist {what}", "images": len(fashion), "seconds": round(seconds, 2),
                         "images/s": round(len(fashion) / seconds)})

    print(pd.DataFrame(rows).to_string(index=False))
    print("\nsynthfaces attribute frequencies:")
    print(pd.Series(freq.numpy().round(3), index=ATTRIBUTES).to_string())


if __name__ == "__main__":
    main()
