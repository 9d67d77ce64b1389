"""`make bench`: hpt's own cost against baselines measured in the same run.

    python -m benchmarks [--repeat 5] [--trials 200] [--workers 2]

Prints a table (median, min, max of --repeat runs) and writes benchmarks/results/latest.json:

  dispatch, whole process   `hpt run` of N no-op trials in a fresh interpreter (start-up, data
                            check, worker start, rows, summary), ms per trial
  dispatch, sweep alone     the same sweep through `run_spec` inside this process, ms per trial
  ProcessPoolExecutor       N calls of the same no-op function on a new pool of the same size
                            (start, calls, shutdown), ms per trial: the floor; with fork (the
                            Linux default) and with spawn (fresh interpreters, as hpt's workers,
                            which must not inherit the runner's threads or a CUDA context)
  executor dispatch         LocalExecutor vs ProcessPoolExecutor on warm workers (no rows)

Ratios are hpt / ProcessPoolExecutor. No figure here is a test: nothing fails on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, wait
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import noop  # noqa: E402

from hpt_cli.runner import RunOptions, run_spec  # noqa: E402
from hpt_cli.spec import parse_spec  # noqa: E402


def noop_spec(trials: int) -> dict:
    return {
        "name": "noop",
        "architecture": "noop:train",
        "date-range": [["2015-01-01", "2015-02-01"]],
        "parameters": {"i": list(range(trials))},
    }


def time_whole_process(spec_path: Path, out: Path, workers: int) -> float:
    hpt = Path(sys.executable).with_name("hpt")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    started = time.perf_counter()
    subprocess.run([str(hpt), "run", str(spec_path), "-o", str(out), "-j", str(workers), "--fresh", "-q"],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def time_sweep(text: str, out: Path, workers: int) -> float:
    spec = parse_spec(text)
    started = time.perf_counter()
    result = run_spec(spec, RunOptions(output=str(out), workers=workers, fresh=True))
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.summary
    return elapsed


def time_pool(trials: int, workers: int, method: str = "fork") -> float:
    started = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        wait([pool.submit(noop.call, i) for i in range(trials)])
    return time.perf_counter() - started


def stats(samples: list[float], per: int = 1) -> dict:
    ms = [1000 * s / per for s in samples]
    return {"median": statistics.median(ms), "min": min(ms), "max": max(ms), "runs": len(ms)}


def machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{platform.machine()}, {cpus} usable CPUs, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    parser = argparse.ArgumentParser(description="hpt benchmarks")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    n, w = args.trials, args.workers
    text = json.dumps(noop_spec(n))
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        spec_path = tmp_path / "noop.json"
        spec_path.write_text(text)
        whole, sweep, pool, spawn = [], [], [], []
        for i in range(args.repeat):  # interleaved, so drift of the machine hits all alike
            pool.append(time_pool(n, w))
            spawn.append(time_pool(n, w, "spawn"))
            sweep.append(time_sweep(text, tmp_path / f"sweep{i}", w))
            whole.append(time_whole_process(spec_path, tmp_path / f"whole{i}", w))
        results["pool"] = stats(pool, n)
        results["spawn_pool"] = stats(spawn, n)
        results["sweep"] = stats(sweep, n)
        results["whole"] = stats(whole, n)

    from dispatch_local import time_local
    from dispatch_local import time_pool as time_warm_pool

    local = [time_local(n, w) for _ in range(args.repeat)]
    warm = [time_warm_pool(n, w) for _ in range(args.repeat)]
    results["executor"] = stats(local, n)
    results["warm_pool"] = stats(warm, n)

    rows = [
        ("dispatch, whole `hpt run` process", results["whole"], results["pool"]),
        ("dispatch, sweep alone (run_spec)", results["sweep"], results["pool"]),
        ("dispatch, sweep alone vs spawn pool", results["sweep"], results["spawn_pool"]),
        ("ProcessPoolExecutor fork (start+calls+stop)", results["pool"], results["pool"]),
        ("ProcessPoolExecutor spawn (start+calls+stop)", results["spawn_pool"], results["spawn_pool"]),
        ("LocalExecutor, warm workers", results["executor"], results["warm_pool"]),
        ("ProcessPoolExecutor, warm workers", results["warm_pool"], results["warm_pool"]),
    ]
    print(f"machine: {machine()}")
    print(f"{n} no-op trials on {w} workers; ms per trial: median (min..max) of {args.repeat} runs")
    print(f"{'':46}{'median':>9}{'min':>9}{'max':>9}{'ratio':>8}")
    for label, figure, base in rows:
        ratio = figure["median"] / base["median"]
        print(f"{label:46}{figure['median']:9.3f}{figure['min']:9.3f}{figure['max']:9.3f}{ratio:8.2f}")
    out = HERE / "results" / "latest.json"
    out.write_text(json.dumps({"machine": machine(), "trials": n, "workers": w, "ms_per_trial": results,
                               "ratios": {label: figure["median"] / base["median"] for label, figure, base in rows}},
                              indent=2) + "\n")
    print(f"written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
