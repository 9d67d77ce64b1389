"""7. Peers: Optuna running the same no-op and CPU-bound trials (threads, and two processes on a
journal file). Ray Tune is measured by `make bench-peers` when it is installed (see
docs/benchmarks.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Figure

JOURNAL_WORKER = """
import sys, optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
sys.path[:0] = {paths!r}
import noop
optuna.logging.set_verbosity(optuna.logging.WARNING)
storage = JournalStorage(JournalFileBackend({path!r}))
study = optuna.load_study(study_name="bench", storage=storage)
kind, n, iterations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def objective(trial):
    trial.suggest_int("i", 0, 10**9)
    return noop.work(iterations) if kind == "burn" else 0.0
study.optimize(objective, n_trials=n)
"""


def _optuna():
    try:
        import optuna
    except ImportError:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def threads(trials: int, workers: int, iterations: int | None) -> float:
    import noop

    optuna = _optuna()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial):
        trial.suggest_int("i", 0, 10**9)
        return noop.work(iterations) if iterations else 0.0

    started = time.perf_counter()
    study.optimize(objective, n_trials=trials, n_jobs=workers)
    return time.perf_counter() - started


def journal(trials: int, workers: int, iterations: int | None) -> float:
    optuna = _optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "journal.log")
        storage = JournalStorage(JournalFileBackend(path))
        optuna.create_study(study_name="bench", storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
        code = JOURNAL_WORKER.format(paths=[str(here), str(here.parent)], path=path)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        kind = "burn" if iterations else "noop"
        started = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", code, kind, str(trials // workers), str(iterations or 0)],
                                  env=env) for _ in range(workers)]
        for p in procs:
            p.wait()
        return time.perf_counter() - started


def run(trials: int, workers: int, repeat: int, hpt_noop: Figure | None, burn: tuple[int, float] | None,
        hpt_efficiency: Figure | None) -> list[Figure]:
    if _optuna() is None:
        return []
    ms = lambda xs: [1000 * x / trials for x in xs]  # noqa: E731
    th = [threads(trials, workers, None) for _ in range(repeat)]
    jr = [journal(trials, workers, None) for _ in range(repeat)]
    out = [Figure(f"peer: Optuna, {workers} threads, {trials} no-op trials", ms(th), "ms/trial"),
           Figure(f"peer: Optuna, {workers} processes on a journal file", ms(jr), "ms/trial")]
    if hpt_noop is not None:
        out.append(Figure("hpt sweep alone vs Optuna journal (processes)", hpt_noop.samples, "ms/trial", out[1]))
    if burn is not None:
        iterations, single = burn
        eff = lambda wall: 16 * single / (workers * wall)  # noqa: E731
        out.append(Figure("peer: Optuna threads, efficiency of 16 CPU-bound trials",
                          [eff(threads(16, workers, iterations)) for _ in range(max(1, repeat // 2))], "ratio"))
        out.append(Figure("peer: Optuna journal processes, efficiency of 16 CPU-bound trials",
                          [eff(journal(16, workers, iterations)) for _ in range(max(1, repeat // 2))], "ratio"))
        if hpt_efficiency is not None:
            out.append(Figure("hpt efficiency vs Optuna journal processes", hpt_efficiency.samples, "ratio", out[-1]))
    return out
