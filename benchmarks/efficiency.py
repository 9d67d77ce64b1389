"""2. Parallel efficiency: 16 CPU-bound trials of ~0.5 s on 2 workers, hpt vs a process pool."""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import noop
from common import Figure

from hpt_cli.runner import RunOptions, run_spec
from hpt_cli.spec import parse_spec


def calibrate(seconds: float = 0.5) -> tuple[int, float]:
    """Iterations of noop.work that take about `seconds` here, and their single-trial time."""
    noop.work(5)  # the first calls pay numpy's warm-up: timed, they made trials 3-5x too short
    started = time.perf_counter()
    noop.work(50)
    per = (time.perf_counter() - started) / 50
    iterations = max(1, round(seconds / per))
    started = time.perf_counter()
    noop.work(iterations)
    return iterations, time.perf_counter() - started


def _limited(iterations: int) -> float:
    return noop.work(iterations)


def run(trials: int, workers: int, repeat: int) -> list[Figure]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the pool's workers inherit it (hpt sets its own)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    iterations, single = calibrate()
    text = json.dumps({"name": "burn", "architecture": "noop:burn", "date-range": [["2015-01-01", "2015-02-01"]],
                       "parameters": {"i": list(range(trials)), "iterations": iterations}})
    hpt, pool = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat):
            started = time.perf_counter()
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
                list(ex.map(_limited, [iterations] * trials))
            pool.append(trials * single / (workers * (time.perf_counter() - started)))
            started = time.perf_counter()
            result = run_spec(parse_spec(text), RunOptions(output=str(Path(tmp) / f"r{i}"), workers=workers,
                                                           fresh=True))
            assert result.exit_code == 0
            hpt.append(trials * single / (workers * (time.perf_counter() - started)))
    f_pool = Figure(f"efficiency: ProcessPoolExecutor(spawn), {trials} x {single:.2f} s trials", pool, "ratio")
    f_hpt = Figure(f"efficiency: hpt, {trials} x {single:.2f} s trials on {workers} workers", hpt, "ratio", f_pool,
                   target=">= 0.95 of the pool's")
    f_hpt.met = (f_hpt.ratio or 0) >= 0.95
    f_hpt.extra = {"iterations": iterations, "single_s": single}
    return [f_hpt, f_pool]
