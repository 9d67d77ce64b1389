"""`make bench`: hpt's own cost, measured against baselines in the same run.

    python -m benchmarks [--repeat 3] [--only dispatch,efficiency,streaming,expansion,resume]

Prints one table (median, min and max of --repeat runs; the ratio to the baseline measured in the
same run; the target and whether it is met) and writes benchmarks/results/latest.json. The cases
are in dispatch.py, efficiency.py, streaming.py (latency and upload volume) and scale.py
(expansion and resume); docs/benchmarks.md records the figures. Nothing here is a test: nothing
fails on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from common import Figure, machine  # noqa: E402

CASES = ("dispatch", "efficiency", "streaming", "expansion", "resume", "peers")


def collect(only: set[str], repeat: int, trials: int, workers: int) -> list[Figure]:
    figures: list[Figure] = []
    sweep = efficiency_figure = burn = None
    if "dispatch" in only:
        import dispatch

        figures += dispatch.run(trials, workers, repeat)
        sweep = figures[1]
    if "efficiency" in only:
        import efficiency

        figures += efficiency.run(16, workers, repeat)
        efficiency_figure = figures[-2]
        burn = (efficiency_figure.extra["iterations"], efficiency_figure.extra["single_s"])
    if "streaming" in only:
        import streaming

        figures += streaming.local()
        figures += streaming.gcs()
    if "expansion" in only:
        import scale

        figures += scale.expansion(repeat)
    if "resume" in only:
        import scale

        figures += scale.resume(repeat)
    if "peers" in only:
        import peers

        figures += peers.run(trials, workers, repeat, sweep, burn, efficiency_figure)
    return figures


def render(figures: list[Figure]) -> str:
    header = f"{'figure':62} {'median':>10} {'min':>10} {'max':>10} {'unit':9} {'ratio':>6}  target"
    lines = [header, "-" * len(header)]
    for f in figures:
        ratio = f"{f.ratio:6.2f}" if f.ratio is not None else " " * 6
        met = "" if f.met is None else (" met" if f.met else " MISSED")
        target = f"{f.target}{met}" if f.target else ""
        lines.append(f"{f.name[:62]:62} {f.median:10.3f} {min(f.samples):10.3f} {max(f.samples):10.3f} "
                     f"{f.unit:9} {ratio}  {target}".rstrip())
        if f.baseline is not None:
            lines.append(f"{'':4}(ratio against: {f.baseline.name})")
        if f.note:
            lines.append(f"{'':4}{f.note}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="hpt benchmarks")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    args = parser.parse_args()
    only = {c.strip() for c in args.only.split(",") if c.strip()}
    started = time.perf_counter()
    figures = collect(only, args.repeat, args.trials, args.workers)
    print(f"machine: {machine()}; median (min..max) of {args.repeat} runs unless one sample")
    print(render(figures))
    print(f"benchmarks took {time.perf_counter() - started:.0f} s")
    out = HERE / "results" / "latest.json"
    out.write_text(json.dumps({"machine": machine(), "repeat": args.repeat,
                               "figures": {f.name: f.to_json() for f in figures}}, indent=2) + "\n")
    print(f"written: {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
