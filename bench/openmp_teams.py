"""Does another thread's OpenMP team change how a job thread's torch workers wait? (issue 12, core.runs.worker)

Runs three training steps of taming's size (synthfaces-flow, forward + backward + Adam on 72 images) with
`--threads` torch threads, in a fresh thread of a fresh process, twice: once after the main thread ran one parallel
op of its own (`warm`: the app's or the bench's main thread that loaded a model), once without (`cold`: the command
line's situation). Prints wall seconds and the CPU seconds of every thread of the process per step: libgomp's
workers spin (much CPU on a busy machine, fast hand-overs on an idle one) only when the process has no more OpenMP
threads than cores.

    .venv/bin/python bench/openmp_teams.py [--threads 2] [--repeats 2]

Note: the project's venv sets OMP_NUM_THREADS=1 for its processes; `--threads` sets torch's count in the measured
processes only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _cpu_by_thread() -> dict[str, float]:
    """CPU seconds (user + system) of every thread of this process, by thread id."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        out[tid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _steps(box: dict, steps: int = 3) -> None:
    import torch

    from core.models.spec import load_model

    flow = load_model("synthfaces-flow", "cpu").copy()
    params = list(flow.flow.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=2e-4)
    x = torch.rand(72, 3, 32, 32)
    before, start = _cpu_by_thread(), time.perf_counter()
    for _ in range(steps):
        loss = -flow.log_prob(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = _cpu_by_thread()  # before the thread ends: its team's workers end with it
    box.update(wall=(time.perf_counter() - start) / steps,
               cpu=sum(after[t] - before.get(t, 0.0) for t in after) / steps)


def child(threads: int, warm: bool) -> None:
    """One measurement in this (fresh) process; prints "wall cpu"."""
    import torch

    torch.set_num_threads(threads)
    if warm:
        a = torch.rand(512, 512)
        (a @ a).sum()  # the main thread's own OpenMP team
    box: dict = {}
    worker = threading.Thread(target=_steps, args=(box,))
    worker.start()
    worker.join()
    print(f"{box['wall']} {box['cpu']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", choices=("warm", "cold"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(REPO))
        child(args.threads, args.child == "warm")
        return
    for repeat in range(args.repeats):
        for mode in ("cold", "warm"):
            out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--child", mode],
                                 capture_output=True, text=True, check=True, cwd=REPO)
            wall, cpu = map(float, out.stdout.split()[-2:])
            print(f"repeat {repeat} {mode}: {wall:.2f} s per step, {cpu:.2f} s of CPU per step (all threads)",
                  flush=True)


if __name__ == "__main__":
    main()
