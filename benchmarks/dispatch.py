"""1. Dispatch overhead: N no-op trials on W workers, per trial, against process pools and joblib."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, wait
from pathlib import Path

import noop
from common import HPT, Figure, env_with_benchmarks

from hpt_cli.runner import RunOptions, run_spec
from hpt_cli.spec import parse_spec


def spec_text(trials: int) -> str:
    return json.dumps({"name": "noop", "architecture": "noop:train", "date-range": [["2015-01-01", "2015-02-01"]],
                       "parameters": {"i": list(range(trials))}})


def sweep(text: str, out: Path, workers: int) -> float:
    spec = parse_spec(text)
    started = time.perf_counter()
    result = run_spec(spec, RunOptions(output=str(out), workers=workers, fresh=True))
    assert result.exit_code == 0, result.summary
    return time.perf_counter() - started


def whole_process(spec_path: Path, out: Path, workers: int) -> float:
    started = time.perf_counter()
    subprocess.run([HPT, "run", str(spec_path), "-o", str(out), "-j", str(workers), "--fresh", "-q"], check=True,
                   env=env_with_benchmarks(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def pool(trials: int, workers: int, method: str) -> float:
    started = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as ex:
        wait([ex.submit(noop.call, i) for i in range(trials)])
    return time.perf_counter() - started


def joblib_run(trials: int, workers: int) -> float | None:
    try:
        from joblib import Parallel, delayed
    except ImportError:
        return None
    started = time.perf_counter()
    Parallel(n_jobs=workers)(delayed(noop.call)(i) for i in range(trials))
    return time.perf_counter() - started


def run(trials: int, workers: int, repeat: int) -> list[Figure]:
    text = spec_text(trials)
    whole, swept, fork, spawn, jl = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        spec_path = tmp_path / "noop.json"
        spec_path.write_text(text)
        for i in range(repeat):  # interleaved, so a drift of the machine hits all alike
            fork.append(pool(trials, workers, "fork"))
            spawn.append(pool(trials, workers, "spawn"))
            j = joblib_run(trials, workers)
            if j is not None:
                jl.append(j)
            swept.append(sweep(text, tmp_path / f"sweep{i}", workers))
            whole.append(whole_process(spec_path, tmp_path / f"whole{i}", workers))
    ms = lambda xs: [1000 * x / trials for x in xs]  # noqa: E731
    f_fork = Figure("ProcessPoolExecutor(fork): start, calls, stop", ms(fork), "ms/trial")
    f_spawn = Figure("ProcessPoolExecutor(spawn): start, calls, stop", ms(spawn), "ms/trial")
    f_sweep = Figure("hpt sweep alone (run_spec), incl. durable rows", ms(swept), "ms/trial", f_fork,
                     target="<= 2 ms and <= 5x pool")
    f_sweep.met = f_sweep.median <= 2 and (f_sweep.ratio or 0) <= 5
    out = [
        Figure(f"dispatch: whole `hpt run` process, {trials} no-op trials", ms(whole), "ms/trial", f_fork),
        f_sweep,
        Figure("hpt sweep alone vs a spawn pool", ms(swept), "ms/trial", f_spawn),
        f_fork,
        f_spawn,
    ]
    if jl:
        f_jl = Figure("joblib (loky): same calls", ms(jl), "ms/trial")
        out.append(Figure("hpt sweep alone vs joblib", ms(swept), "ms/trial", f_jl))
        out.append(f_jl)
    return out
