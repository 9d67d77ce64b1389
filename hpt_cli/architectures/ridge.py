"""Closed-form ridge regression on lagged target values and the covariates.

Parameters: alpha (L2 strength on standardised inputs, default 1.0), lags (see features).
"""

from __future__ import annotations

import time

import numpy as np

from hpt_cli.architectures import Architecture
from hpt_cli.architectures.features import make_features, parse_lags
from hpt_cli.architectures.params import number
from hpt_cli.context import TrialContext

METRICS = ("val_mse", "val_mae", "train_loss", "epochs_run", "train_time_s")


def train(params: dict, ctx: TrialContext) -> dict[str, float]:
    if ctx.data is None:
        raise ValueError("ridge needs data: give \"data\" in the spec (or leave it out for the bundled set)")
    started = time.perf_counter()
    alpha, _ = read_params(params)
    d = ctx.data
    f = make_features(d.train, d.validation, d.target, d.date_column, params.get("lags"))
    if not len(f.y_train):
        raise ValueError(f"no training rows left in {ctx.date_range} once the first {max(f.lags)} "
                         f"days go to lags; use a longer range or fewer lags")
    y_mean = f.y_mean
    x = f.x_train
    gram = x.T @ x + alpha * np.eye(x.shape[1])
    rhs = x.T @ (f.y_train - y_mean)
    try:
        coef = np.linalg.solve(gram, rhs)
    except np.linalg.LinAlgError:  # alpha 0 and collinear inputs
        coef = np.linalg.lstsq(x, f.y_train - y_mean, rcond=None)[0]

    train_loss = _mse(x @ coef + y_mean, f.y_train)
    pred = f.x_val @ coef + y_mean
    out = {"val_mse": _mse(pred, f.y_val), "val_mae": _mae(pred, f.y_val), "train_loss": train_loss,
           "epochs_run": 1.0}
    np.savez(ctx.artifact_dir / "model.npz", coef=coef, intercept=np.float64(y_mean),
             alpha=np.float64(alpha), **f.arrays())
    ctx.report(epoch=1, train_loss=train_loss, val_mse=out["val_mse"])
    out["train_time_s"] = time.perf_counter() - started
    return out


def read_params(params: dict) -> tuple[float, tuple[int, ...]]:
    """alpha and lags, checked: ValueError saying what must hold (also what `hpt validate` checks
    each value of a spec with)."""
    return number(params, "alpha", 1.0, lambda v: v >= 0, "alpha >= 0"), parse_lags(params.get("lags"))


def _mse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((pred - y) ** 2)) if len(y) else float("nan")


def _mae(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - y))) if len(y) else float("nan")


ARCHITECTURE = Architecture(
    name="ridge",
    train=train,
    default_space={"alpha": {"distribution": "loguniform", "low": 1e-3, "high": 1e3}},
    lr_params=(),
    metrics=METRICS,
    parameters=frozenset({"alpha", "lags"}),
    description="closed-form ridge regression on lagged target values and the covariates",
)
