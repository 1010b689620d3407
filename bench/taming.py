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
5. `--speed N`: seconds per iteration of the same taming run (N iterations, identity 17) up to five ways,
   interleaved (`--ways`): `python -m core tame` in a subprocess (cli, the command line); the app's job with the
   flow and judges loaded here, run in this process's main thread (main); in a runner thread (thread, how the app
   ran jobs before session 6); in a runner worker process (worker, how `shared_runner` runs them now); and that
   worker job while a viewer thread here repeats what the Tame page's live view reads and draws every `--redraw`
   seconds (viewed: events, time left, latest metrics and images, the small-multiples and NLL figures rebuilt
   every `--charts-every` seconds and serialised to JSON on every redraw as Streamlit does). Prints each speed and
   each run's fastest iteration (the one least disturbed on a busy machine), their medians and the ratios to the
   command line.

    .venv/bin/python bench/taming.py [--identities 17 101 250 311] [--attribute glasses] [--attribute-iterations 300]
                                     [--rebalance smile=0.5]
                                     [--threads 2] [--skip-epoch]
    .venv/bin/python bench/taming.py --speed 30 [--redraw 2] [--charts-every 10] [--repeats 2]
                                     [--ways cli main thread worker viewed]

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


SPEED_EVAL_SAMPLES = 100
"""Generated samples of the before/after measurement in the speed runs (command line and app alike): the seconds per
iteration are the taming loop's own clock, which the measurement around it does not touch, and a small measurement
lets three repeats fit on a busy machine."""


def _cli_speed(model: str, spec: str, iterations: int, root: Path) -> float:
    """Seconds per iteration of `python -m core tame` (the loop's own clock: metrics `seconds` / `iterations`)."""
    import json
    import subprocess

    out = subprocess.run([sys.executable, "-m", "core", "tame", model, "--forget", spec, "--max-iterations",
                          str(iterations), "--eval-samples", str(SPEED_EVAL_SAMPLES), "--runs-dir", str(root),
                          "--json"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    return m["seconds"] / max(1, m["iterations"])


class _LiveView:
    """What the Tame page's live view computes on each redraw (pages/tame.py live_run), minus the websocket: the
    run's events (read incrementally), the time left, the latest numbers and preview images, and its two charts,
    rebuilt every `charts_every` seconds (the page's CHART_SECONDS) and serialised to JSON on every redraw, as
    Streamlit does with a chart it is given again."""

    def __init__(self, store, run_id: str, charts_every: float) -> None:
        self.store, self.run_id, self.charts_every = store, run_id, charts_every
        self.built, self.figures = -float("inf"), []

    def redraw(self) -> None:
        from core.runs.estimate import estimate
        from core.runs.words import run_words
        from core.viz.runs import metric_panels
        from core.viz.taming import live_nll_figure

        run = self.store.get(self.run_id)
        events = run.events()
        if events.empty:
            return
        estimate(events, int(run.status_doc.get("total") or 0))
        numbers = events.select_dtypes("number").ffill()
        metrics = {k: float(v) for k, v in numbers.iloc[-1].items() if v == v}
        if "images" in events and events["images"].notna().any():
            run.images(events["images"].dropna().iloc[-1])
        if time.monotonic() - self.built >= self.charts_every:
            shown = [c for c in ("distance_max_abs", "distance_checked_max_abs", "within_epsilon", "share",
                                 "kl_forward", "kl_reverse", "remember_bpd", "distance_mean") if c in events]
            self.figures = [live_nll_figure(metrics, 4.0),
                            metric_panels({run_words(run.config): events}, "tame", shown, columns=4)]
            self.built = time.monotonic()
        for figure in self.figures:
            figure.to_json()


def _main_thread_speed(flow, spec: str, iterations: int, root: Path, judges) -> float:
    """Seconds per iteration of the app's job (`taming_job` with the loaded flow and judges) run here, in this
    process's main thread (`run_now`): the command line's thread, with this process's state."""
    from core.methods.taming import job_params, taming_job
    from core.runs import RunStore, run_now

    config = TamingConfig(max_iterations=iterations, eval_samples=SPEED_EVAL_SAMPLES)
    m = run_now(taming_job(flow, spec, config, judges=judges), method="tame", model=flow.card.name,
                params=job_params(spec, config), store=RunStore(root)).metrics
    return m["seconds"] / max(1, m["iterations"])


def _app_speed(flow, spec: str, iterations: int, root: Path, judges, redraw: float | None,
               charts_every: float = 10.0, isolate: bool = True) -> float:
    """Seconds per iteration of the same run as a job of the app's runner (`isolate`: in a worker process, as
    `shared_runner` runs it; else in a background thread of this process), optionally while a viewer thread redraws
    the live view every `redraw` seconds (its charts every `charts_every` seconds)."""
    import threading

    from core.methods.taming import job_params, taming_job
    from core.runs import Runner, RunStore

    config = TamingConfig(max_iterations=iterations, eval_samples=SPEED_EVAL_SAMPLES)
    runner = Runner(RunStore(root), isolate=isolate)
    run_id = runner.start(taming_job(flow, spec, config, judges=judges), method="tame", model=flow.card.name,
                          params=job_params(spec, config))
    stop = threading.Event()

    def view() -> None:
        live = _LiveView(runner.store, run_id, charts_every)
        while not stop.wait(redraw):
            live.redraw()

    viewer = threading.Thread(target=view, daemon=True) if redraw else None
    if viewer:
        viewer.start()
    record = runner.wait(run_id)
    stop.set()
    m = record.metrics
    return m["seconds"] / max(1, m["iterations"])


def fastest_iteration(run) -> float:
    """Seconds between the two closest taming events of a run (one iteration each): the iteration least disturbed
    by the other processes of a busy machine, where the mean of `seconds / iterations` is mostly their noise."""
    times = [e["time"] for e in run.event_records() if e["stage"] == "tame" and e["metrics"]]
    return min((b - a for a, b in zip(times, times[1:])), default=float("nan"))


SPEED_WAYS = {
    "cli": "command line",
    "main": "this process's main thread",
    "thread": "runner thread",
    "worker": "runner worker (the app)",
    "viewed": "runner worker + live view",
}


def speed(args) -> None:
    """Seconds per iteration of one taming run, every way in SPEED_WAYS, interleaved; medians and ratios to the
    command line."""
    import tempfile

    from core.runs import RunStore

    root = Path(tempfile.mkdtemp(prefix="lethe-bench-speed-"))
    flow = load_model(args.model, "cpu")  # loaded here, in the main thread, as the app loads it in a page's thread
    judges = zoo_judges(flow.card.data["dataset"])
    spec = f"identity={args.identities[0] if args.identities else 17}"
    ways = {
        "cli": lambda: _cli_speed(args.model, spec, args.speed, root),
        "main": lambda: _main_thread_speed(flow, spec, args.speed, root, judges),
        "thread": lambda: _app_speed(flow, spec, args.speed, root, judges, None, isolate=False),
        "worker": lambda: _app_speed(flow, spec, args.speed, root, judges, None, isolate=True),
        "viewed": lambda: _app_speed(flow, spec, args.speed, root, judges, args.redraw, args.charts_every),
    }
    store = RunStore(root)
    rows, fastest = [], []
    for repeat in range(args.repeats):
        row, quickest = {"repeat": repeat}, {"repeat": repeat}
        for way in args.ways:
            known = set(store.ids())
            row[way] = ways[way]()
            (run_id,) = set(store.ids()) - known
            quickest[way] = fastest_iteration(store.get(run_id))
            print(f"repeat {repeat}: {SPEED_WAYS[way]} {row[way]:.3f} s/it (fastest iteration {quickest[way]:.3f} s)",
                  flush=True)
        rows.append(row)
        fastest.append(quickest)
    for name, table in (("seconds per iteration", pd.DataFrame(rows)),
                        ("fastest iteration, s (the least disturbed by a busy machine)", pd.DataFrame(fastest))):
        print(name)
        print(table.round(3).to_string(index=False))
        med = table.median()
        base = med.get("cli")
        print(f"median {name}: " + "; ".join(
            f"{SPEED_WAYS[way]} {med[way]:.3f}" + (f" ({med[way] / base:.2f}x)" if base and way != "cli" else "")
            for way in args.ways))
    print(f"(torch threads {torch.get_num_threads()}; live view every {args.redraw:g} s, charts every "
          f"{args.charts_every:g} s)")


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
    parser.add_argument("--speed", type=int, default=0, help="only compare the app's and the CLI's speed, N iterations")
    parser.add_argument("--redraw", type=float, default=2.0, help="seconds between live-view redraws (--speed)")
    parser.add_argument("--charts-every", type=float, default=10.0,
                        help="seconds between rebuilds of the live charts (--speed; the page's CHART_SECONDS)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats (--speed)")
    parser.add_argument("--ways", nargs="+", choices=tuple(SPEED_WAYS), default=list(SPEED_WAYS),
                        help="which ways to run the job (--speed): " + ", ".join(
                            f"{k} = {v}" for k, v in SPEED_WAYS.items()))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.speed:
        speed(args)
        return
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

    def sure_and_best(m: dict) -> str:
        """The share among the samples the judge is sure of, how many it is unsure of, and the best-share model."""
        text = ""
        if m.get("share_confident_before") is not None and m.get("share_confident_after") is not None:
            text += (f"; sure share {m['share_confident_before']:.3f} -> {m['share_confident_after']:.3f}, judge unsure "
                     f"of {m['share_unsure_before']:.0%} -> {m['share_unsure_after']:.0%}")
        if m.get("best_share_iteration") is not None:
            kept = "the final model" if m.get("best_is_final") else f"share {m['share_best']:.3f} re-measured"
            text += f"; best share at iteration {m['best_share_iteration']} ({kept})"
        return text

    if args.attribute:
        m = run(flow, f"attr={args.attribute}",
                TamingConfig(eval_samples=2000, max_iterations=args.attribute_iterations), judges)
        rows.append(m)
        print(f"attribute {args.attribute}: share {m['share_before']:.3f} -> {m['share_after']:.3f} "
              f"(ratio {m['share_after'] / max(m['share_before'], 1e-9):.2f}, target <= 0.5) in "
              f"{m['iterations']} iterations ({m['stop_reason']}), {m['seconds']:.1f} s; {m['fid_judge']} "
              f"{m['fid_before']:.2f} -> {m['fid_after']:.2f} ({m['fid_change']:+.1%} against D_R, target <= +10%; "
              f"{m['fid_all_change']:+.1%} against D_R and D_F together); "
              f"BPD D_R {m['bpd_remember_change']:+.2%}{sure_and_best(m)}", flush=True)

    if args.rebalance:
        attr, _, target = args.rebalance.partition("=")
        m = run(flow, f"attr={attr}", TamingConfig(eval_samples=2000, target_share=float(target), monitor_every=5),
                judges)
        rows.append(m)
        print(f"rebalance {attr} -> {target}: share {m['share_before']:.3f} -> {m['share_after']:.3f} "
              f"(|gap| {abs(m['share_after'] - float(target)):.3f}, target <= 0.05), direction {m['direction']}, "
              f"{m['iterations']} iterations ({m['stop_reason']}), {m['seconds']:.1f} s; "
              f"{m['fid_judge']} {m['fid_change']:+.1%}{sure_and_best(m)}", flush=True)

    cols = ["spec", "direction", "iterations", "reached_threshold", "stop_reason", "seconds", "iterations_per_second",
            "qd_forget", "qd_holdout", "qd_remember", "qd_identities", "qd_neighbours", "bpd_remember_change",
            "fid_change", "fid_all_change", "share_before", "share_after", "taming_over_epoch"]
    table = pd.DataFrame(rows)
    print(table[[c for c in cols if c in table]].to_string(index=False))
    if epoch:
        print(f"epoch seconds: {epoch:.1f}")


if __name__ == "__main__":
    main()
