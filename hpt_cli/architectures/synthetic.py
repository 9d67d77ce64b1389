"""Benchmark objectives with known optima, for tests and demos of the searchers.

`branin` (x1 in [-5, 10], x2 in [0, 15]; minimum 0.397887 at three points) and `hartmann6`
(x1..x6 in [0, 1]; minimum -3.32237, reported shifted by +3.32237 so it is >= 0) report their
value as `val_mse`, so the default objective (val_mse, min) works unchanged. They never look at
the data (so no frames are loaded: ctx.data is lazy) and return at once, unless the parameter
`delay_s` asks them to sleep that many seconds to stand in for a costly model.
"""

from __future__ import annotations

import math
import time

from hpt_cli.architectures import Architecture
from hpt_cli.context import TrialContext

BRANIN_MIN = 0.397887
HARTMANN6_MIN = -3.32237

_ALPHA = (1.0, 1.2, 3.0, 3.2)
_A = (
    (10, 3, 17, 3.5, 1.7, 8),
    (0.05, 10, 17, 0.1, 8, 14),
    (3, 3.5, 1.7, 10, 17, 8),
    (17, 8, 0.05, 10, 0.1, 14),
)
_P = (
    (0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886),
    (0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991),
    (0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650),
    (0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381),
)


def branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def hartmann6(x: tuple[float, ...]) -> float:
    return -sum(
        alpha * math.exp(-sum(a * (xi - p) ** 2 for a, xi, p in zip(row, x, prow)))
        for alpha, row, prow in zip(_ALPHA, _A, _P)
    )


def _coordinates(params: dict, names: tuple[str, ...], architecture: str) -> list[float]:
    missing = [n for n in names if n not in params]
    if missing:
        raise ValueError(f"{architecture} needs parameters {', '.join(names)}; missing {', '.join(missing)}")
    return [float(params[n]) for n in names]


def _pause(params: dict) -> None:
    delay = float(params.get("delay_s", 0))
    if delay > 0:
        time.sleep(delay)


def train_branin(params: dict, ctx: TrialContext) -> dict[str, float]:
    x1, x2 = _coordinates(params, ("x1", "x2"), "branin")
    _pause(params)
    return {"val_mse": branin(x1, x2)}


HARTMANN_NAMES = tuple(f"x{i}" for i in range(1, 7))


def train_hartmann6(params: dict, ctx: TrialContext) -> dict[str, float]:
    x = _coordinates(params, HARTMANN_NAMES, "hartmann6")
    _pause(params)
    return {"val_mse": hartmann6(tuple(x)) - HARTMANN6_MIN}


BRANIN = Architecture(
    name="branin",
    train=train_branin,
    default_space={
        "x1": {"distribution": "uniform", "low": -5.0, "high": 10.0},
        "x2": {"distribution": "uniform", "low": 0.0, "high": 15.0},
    },
    metrics=("val_mse",),
    parameters=frozenset({"x1", "x2", "delay_s"}),
    description="the Branin function as a benchmark objective (val_mse; minimum 0.397887); ignores data",
    needs_data=False,
)

HARTMANN6 = Architecture(
    name="hartmann6",
    train=train_hartmann6,
    default_space={n: {"distribution": "uniform", "low": 0.0, "high": 1.0} for n in HARTMANN_NAMES},
    metrics=("val_mse",),
    parameters=frozenset({*HARTMANN_NAMES, "delay_s"}),
    description="the 6-d Hartmann function + 3.32237 as a benchmark objective (val_mse; minimum 0); "
                "ignores data",
    needs_data=False,
)
