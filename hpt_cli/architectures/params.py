"""Reading a trial's parameters with the rules the built-in architectures share.

Each reader raises ValueError saying what must hold ("lr > 0 must hold, got lr=-1"), which the
trial's row shows as its error.
"""

from __future__ import annotations

from typing import Any

# the parameter names `training` reads (an architecture's `parameters` include them)
TRAINING = frozenset({"lr", "decay", "epochs", "patience", "batch_size", "l2"})


def number(params: dict, key: str, default: float, ok, rule: str) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
        raise ValueError(f"{rule} must hold, got {key}={value!r}")
    return float(value)


def integer(params: dict, key: str, default: int, minimum: int) -> int:
    value = params.get(key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key} >= {minimum} must hold (an integer), got {key}={value!r}")
    return value


def training(params: dict, defaults: Any, epochs: int | None) -> dict[str, Any]:
    """lr, decay, epochs (ctx.epochs wins), patience, batch_size and l2 of a gradient-trained
    architecture, with `defaults` (a Settings dataclass) for what the trial does not set."""
    return {
        "lr": number(params, "lr", defaults.lr, lambda v: v > 0, "lr > 0"),
        "decay": number(params, "decay", defaults.decay, lambda v: 0 < v <= 1, "0 < decay <= 1"),
        "epochs": int(epochs if epochs is not None else integer(params, "epochs", defaults.epochs, 1)),
        "patience": integer(params, "patience", defaults.patience, 0),
        "batch_size": integer(params, "batch_size", defaults.batch_size, 1),
        "l2": number(params, "l2", defaults.l2, lambda v: v >= 0, "l2 >= 0"),
    }
