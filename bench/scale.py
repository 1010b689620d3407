"""Benchmark of running Lethe beyond one process (issue 16), measured in one run on this machine:

- `per-job overhead`: wall time of trivial jobs (they return at once) through the executor, in this process, in 2
  local worker processes and as Ray tasks on a local 2-CPU Ray: `start` is the wall time of a batch of one job
  (for local workers, spawning them: a batch starts its own pool), `per job` the extra time of each further job,
  (T(N jobs) - T(1 job)) / (N - 1); Ray's own start (`ray.init`) is printed on its own;
- `sweep of 8`: wall time of `python -m core sweep` over 8 short taming jobs (toy-flow, `--iterations`
  iterations each) with 1 and 2 workers, and the speed-up (1 worker / 2 workers);
- `redaction epoch and GOLD re-weighting epoch samples/s, 1 and 2 gloo processes`: from `bench/scale_ddp.py`'s
  `measure()` and `measure_gold()` when that file exists (the data parallel half of the issue), else a line
  saying it is absent.

    .venv/bin/python bench/scale.py [--trivial 64] [--iterations 3] [--no-ray]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import operator
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cli import main  # noqa: E402
from core.runs.executor import ensure_ray, run_jobs  # noqa: E402


def batch_seconds(jobs: int, workers: int, executor: str) -> float:
    """Wall seconds of `jobs` trivial jobs through `run_jobs`."""
    batch = [functools.partial(operator.add, i, 1) for i in range(jobs)]
    start = time.perf_counter()
    assert run_jobs(batch, workers, executor) == [i + 1 for i in range(jobs)]
    return time.perf_counter() - start


def overhead(jobs: int, workers: int, executor: str) -> tuple[float, float]:
    """(seconds of a one-job batch, extra seconds per further job) of trivial jobs through the executor, after one
    warm-up batch: Ray starts its worker processes lazily, on the first task after `ray.init`, which would
    otherwise count in the one-job batch and make (T(N) - T(1)) come out negative."""
    batch_seconds(1, workers, executor)
    one = batch_seconds(1, workers, executor)
    return one, max(0.0, batch_seconds(jobs, workers, executor) - one) / (jobs - 1)


def sweep_seconds(workers: int, iterations: int, root: Path) -> float:
    """Wall seconds of an 8-job taming sweep (4 deltas x 2 seeds) with `workers` workers."""
    doc = {"name": f"scale bench, {workers} worker(s)", "method": "tame", "model": "toy-flow", "forget": "label=0",
           "params": {"delta": [1.0, 1.5, 2.0, 2.5], "max-iterations": iterations, "eval-samples": 64,
                      "eval-size": 64}, "seeds": [0, 1]}
    path = root / f"sweep-{workers}.json"
    path.write_text(json.dumps(doc))
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["sweep", str(path), "--workers", str(workers), "--runs-dir", str(root / "runs"),
                     "--device", "cpu", "--json"])
    seconds = time.perf_counter() - start
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    if code != 0 or result.get("succeeded") != 8:
        raise SystemExit(f"the {workers}-worker sweep did not succeed: {result}")
    return seconds


def ddp_lines() -> list[str]:
    """The data parallel measurements of bench/scale_ddp.py, if that benchmark is present."""
    try:
        from bench.scale_ddp import measure, measure_gold  # noqa: PLC0415 - optional, the data parallel half
    except ImportError:
        return ["redaction / GOLD epoch samples/s with 1 and 2 gloo processes: bench/scale_ddp.py is not here"]
    lines = []
    for what, r in (("redaction epoch", measure()), ("GOLD re-weighting epoch (eq. 5)", measure_gold())):
        lines += [f"{what} of {r['model']} ({int(r['samples'])} samples, global batch {r['batch_size']}), "
                  "samples/s:",
                  f"  1 process    {r['samples_per_second_1']:7.1f}",
                  f"  2 processes  {r['samples_per_second_2']:7.1f}   speed-up {r['ratio']:.2f}x"]
    return lines


def main_(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trivial", type=int, default=64, help="trivial jobs per overhead measurement")
    parser.add_argument("--iterations", type=int, default=3, help="taming iterations per sweep job")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray measurement")
    args = parser.parse_args(argv)

    print(f"overhead of the executor on a trivial job (batches of 1 and {args.trivial} jobs):")
    rows = [("in this process", *overhead(args.trivial, 1, "local")),
            ("local, 2 worker procs", *overhead(args.trivial, 2, "local"))]
    if not args.no_ray:
        try:
            start = time.perf_counter()
            ensure_ray(workers=2)
            print(f"  (local Ray started in {time.perf_counter() - start:.1f} s)")
            rows.append(("Ray, 2 CPUs", *overhead(args.trivial, 2, "ray")))
        except Exception as exc:  # noqa: BLE001 - the benchmark reports what it could not measure
            print(f"  Ray: not measured ({type(exc).__name__}: {str(exc).splitlines()[0][:240]})")
    for name, start, per_job in rows:
        print(f"  {name:<24} start {start:8.3f} s   per job {per_job * 1e3:9.3f} ms")
    if len(rows) == 3:
        print(f"  Ray / local workers per job: {rows[2][2] / max(rows[1][2], 1e-9):.2f}x")
    with tempfile.TemporaryDirectory() as tmp:
        one = sweep_seconds(1, args.iterations, Path(tmp))
        two = sweep_seconds(2, args.iterations, Path(tmp))
    print(f"sweep of 8 taming jobs (toy-flow, {args.iterations} iterations each):")
    print(f"  1 worker  {one:7.1f} s\n  2 workers {two:7.1f} s   speed-up {one / two:.2f}x")
    for line in ddp_lines():
        print(line)


if __name__ == "__main__":
    main_()
