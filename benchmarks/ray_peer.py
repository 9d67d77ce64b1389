"""Ray Tune as a peer (`make bench-peers`, in its own environment .venv-peers): the same 200 no-op
trials and 16 CPU-bound trials on 2 CPUs as `make bench`, hpt measured in the same run.

    .venv-peers/bin/python benchmarks/ray_peer.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import dispatch  # noqa: E402
import efficiency  # noqa: E402
import noop  # noqa: E402
from common import Figure, machine  # noqa: E402


def ray_tune(trials: int, workers: int, iterations: int | None, reuse_actors: bool) -> float:
    import ray
    from ray import tune

    def trainable(config):
        value = noop.work(iterations) if iterations else 0.0
        return {"val_mse": value}

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            tuner = tune.Tuner(
                tune.with_resources(trainable, {"cpu": 1}),
                param_space={"i": tune.grid_search(list(range(trials)))},
                tune_config=tune.TuneConfig(reuse_actors=reuse_actors, max_concurrent_trials=workers),
                run_config=tune.RunConfig(storage_path=tmp, verbose=0),
            )
            tuner.fit()
            return time.perf_counter() - started
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    n, w = args.trials, 2
    hpt = dispatch.run(n, w, args.repeat)[1]
    ms = lambda xs, k: [1000 * x / k for x in xs]  # noqa: E731
    reuse = Figure(f"Ray Tune, {n} no-op trials, reuse_actors=True", ms([ray_tune(n, w, None, True)
                                                                        for _ in range(args.repeat)], n), "ms/trial")
    default = Figure("Ray Tune, 20 no-op trials, defaults", ms([ray_tune(20, w, None, False)
                                                                 for _ in range(1)], 20), "ms/trial")
    iterations, single = efficiency.calibrate()
    eff = Figure("Ray Tune, efficiency of 16 CPU-bound trials",
                 [16 * single / (w * ray_tune(16, w, iterations, True)) for _ in range(1)], "ratio")
    figures = [hpt, reuse, Figure("hpt sweep alone vs Ray Tune (reuse_actors)", hpt.samples, "ms/trial", reuse),
               default, eff]
    print(f"machine: {machine()}")
    for f in figures:
        ratio = f"  ratio {f.ratio:.3f} ({f.baseline.name})" if f.ratio is not None else ""
        print(f"{f.name:60} {f.median:10.3f} {f.unit}{ratio}")


if __name__ == "__main__":
    main()
