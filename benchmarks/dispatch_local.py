"""Dispatch cost of LocalExecutor against concurrent.futures.ProcessPoolExecutor.

Runs N no-op calls on 2 warm workers with each and prints ms/job and the ratio:

    python benchmarks/dispatch_local.py [--jobs 200] [--workers 2] [--repeat 5]

LocalExecutor is driven the way the runner drives it (submit while a slot is free, then wait),
so it has at most one job per worker in flight; the pool gets every call submitted at once.
The best of --repeat rounds is reported for each.
"""

from __future__ import annotations

import argparse
import operator
import sys
import time
from concurrent.futures import ProcessPoolExecutor, wait
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hpt_cli.executors import Job, LocalExecutor  # noqa: E402

NOOP = "operator:truth"  # the same stdlib function on both sides: nothing extra to import


def time_local(jobs: int, workers: int) -> float:
    with LocalExecutor(workers) as ex:
        _drive(ex, workers)  # warm-up: every worker up and its function imported
        started = time.perf_counter()
        _drive(ex, jobs)
        return time.perf_counter() - started


def _drive(ex: LocalExecutor, jobs: int) -> None:
    submitted = done = 0
    while done < jobs:
        while submitted < jobs and ex.free_slots():
            ex.submit(Job(f"j{submitted}", NOOP, submitted))
            submitted += 1
        done += len(ex.wait())


def time_pool(jobs: int, workers: int) -> float:
    with ProcessPoolExecutor(workers) as pool:
        wait([pool.submit(operator.truth, n) for n in range(workers * 2)])  # warm-up
        started = time.perf_counter()
        wait([pool.submit(operator.truth, n) for n in range(jobs)])
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    local = min(time_local(args.jobs, args.workers) for _ in range(args.repeat))
    pool = min(time_pool(args.jobs, args.workers) for _ in range(args.repeat))
    local_ms, pool_ms = 1000 * local / args.jobs, 1000 * pool / args.jobs
    print(f"{args.jobs} no-op jobs on {args.workers} workers (best of {args.repeat})")
    print(f"hpt LocalExecutor:   {local_ms:.3f} ms/job")
    print(f"ProcessPoolExecutor: {pool_ms:.3f} ms/job")
    print(f"ratio hpt/pool:      {local_ms / pool_ms:.2f}")


if __name__ == "__main__":
    main()
