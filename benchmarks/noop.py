"""Trial functions for the benchmarks (imported by workers as "noop:<function>")."""

import time


def train(params, ctx):
    """A no-op trial (or a sleep of params["sleep"] seconds): the runner's own cost is what is left."""
    if params.get("sleep"):
        time.sleep(float(params["sleep"]))
    return {"val_mse": float(params.get("i", 0)), "returned_at": time.time()}


def call(i):
    """The same no-op as a plain function, for the ProcessPoolExecutor and joblib baselines."""
    return {"val_mse": float(i)}


def burn(params, ctx):
    """CPU-bound work of a fixed size (numpy on one thread)."""
    return {"val_mse": work(int(params["iterations"]))}


def work(iterations: int) -> float:
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((160, 160))
    total = 0.0
    for _ in range(iterations):
        total += float(np.linalg.eigvalsh(a @ a.T)[-1])
    return total
