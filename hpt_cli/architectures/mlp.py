"""A numpy multi-layer perceptron (ReLU hidden layers, linear output) trained with mini-batch Adam.

Parameters: lr (1e-3), decay (learning rate multiplied by this each epoch, 1.0 = none),
epochs (50; ctx.epochs overrides), patience (early stopping on validation loss, 10; 0 = off),
batch_size (64), l2 (0.0), hidden ([64]), lags (see features). Seeded by ctx.seed, float64
throughout: the same seed and parameters give the same numbers. The weights of the best epoch
(lowest validation MSE) are kept, reported and saved.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpt_cli.architectures import Architecture
from hpt_cli.architectures.features import make_features, parse_lags
from hpt_cli.architectures.params import TRAINING, training
from hpt_cli.context import TrialContext

METRICS = ("val_mse", "val_mae", "train_loss", "epochs_run", "train_time_s")
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


@dataclass(frozen=True)
class Settings:
    lr: float = 1e-3
    decay: float = 1.0
    epochs: int = 50
    patience: int = 10
    batch_size: int = 64
    l2: float = 0.0
    hidden: tuple[int, ...] = (64,)


def settings(params: dict[str, Any], epochs: int | None = None) -> Settings:
    """Read and check the parameters; raise ValueError saying what must hold."""
    s = Settings()
    common = training(params, s, epochs)
    hidden = params.get("hidden", list(s.hidden))
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = [hidden]
    if not isinstance(hidden, (list, tuple)) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden):
        raise ValueError(f"hidden: expected a list of layer widths such as [64, 32], got {hidden!r}")
    return Settings(**common, hidden=tuple(hidden))


def read_params(params: dict[str, Any]) -> None:
    """Every parameter mlp reads, checked as its trials read them (ValueError saying what must
    hold): what `hpt validate` checks each value of a spec with."""
    settings(params)
    parse_lags(params.get("lags"))


def train(params: dict, ctx: TrialContext) -> dict[str, float]:
    if ctx.data is None:
        raise ValueError("mlp needs data: give \"data\" in the spec (or leave it out for the bundled set)")
    started = time.perf_counter()
    s = settings(params, ctx.epochs)
    d = ctx.data
    f = make_features(d.train, d.validation, d.target, d.date_column, params.get("lags"))
    n = len(f.y_train)
    if not n:
        raise ValueError(f"no training rows left in {ctx.date_range} once the first {max(f.lags)} "
                         f"days go to lags; use a longer range or fewer lags")
    y_mean, y_std = f.y_mean, f.y_std
    x, y = f.x_train, ((f.y_train - y_mean) / y_std)[:, None]
    has_val = len(f.y_val) > 0

    rng = np.random.default_rng(ctx.seed)
    sizes = [x.shape[1], *s.hidden, 1]
    weights = [rng.standard_normal((a, b)) * math.sqrt((2.0 if i < len(sizes) - 2 else 1.0) / max(a, 1))
               for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    biases = [np.zeros(b) for b in sizes[1:]]
    params_ = weights + biases
    m = [np.zeros_like(p) for p in params_]
    v = [np.zeros_like(p) for p in params_]
    step = 0

    best = (math.inf, None, 0)  # (val mse, weights, epoch)
    bad = 0
    epochs_run = 0
    for epoch in range(1, s.epochs + 1):
        lr = s.lr * s.decay ** (epoch - 1)
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, s.batch_size):
            idx = order[start:start + s.batch_size]
            loss, grads = _loss_and_grads(weights, biases, x[idx], y[idx], s.l2)
            total += loss * len(idx)
            step += 1
            c1, c2 = 1 - _BETA1 ** step, 1 - _BETA2 ** step
            for p, g, mi, vi in zip(params_, grads, m, v):
                mi *= _BETA1
                mi += (1 - _BETA1) * g
                vi *= _BETA2
                vi += (1 - _BETA2) * g * g
                p -= lr * (mi / c1) / (np.sqrt(vi / c2) + _EPS)
        epochs_run = epoch
        train_loss = total / n * y_std ** 2
        val_mse = _mse(_predict(weights, biases, f.x_val) * y_std + y_mean, f.y_val) if has_val else math.nan
        ctx.report(epoch=epoch, train_loss=train_loss, val_mse=val_mse, lr=lr)
        if not math.isfinite(train_loss):
            break  # diverged: keep the best epoch so far
        score = val_mse if has_val else train_loss
        if score < best[0]:
            best = (score, [p.copy() for p in params_], epoch)
            bad = 0
        else:
            bad += 1
            if s.patience and bad >= s.patience:
                break

    if best[1] is not None:
        for p, kept in zip(params_, best[1]):
            p[...] = kept
    pred_train = _predict(weights, biases, x) * y_std + y_mean
    pred_val = _predict(weights, biases, f.x_val) * y_std + y_mean
    out = {
        "val_mse": _mse(pred_val, f.y_val),
        "val_mae": float(np.mean(np.abs(pred_val - f.y_val))) if has_val else math.nan,
        "train_loss": _mse(pred_train, f.y_train),
        "epochs_run": float(epochs_run),
        "best_epoch": float(best[2]),
    }
    arrays = {f"w{i}": w for i, w in enumerate(weights)} | {f"b{i}": b for i, b in enumerate(biases)}
    np.savez(ctx.artifact_dir / "model.npz", hidden=np.array(s.hidden, dtype=np.int64), **arrays, **f.arrays())
    out["train_time_s"] = time.perf_counter() - started
    return out


def _predict(weights: list[np.ndarray], biases: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    h = x
    for i, (w, b) in enumerate(zip(weights, biases)):
        h = h @ w + b
        if i < len(weights) - 1:
            np.maximum(h, 0.0, out=h)
    return h[:, 0]


def _loss_and_grads(weights, biases, x, y, l2):
    """Mean squared error of one batch and the gradients of it (plus l2/2 * |W|^2) for every
    weight, then every bias (the order of `weights + biases`)."""
    acts = [x]
    h = x
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases)):
        h = h @ w + b
        if i < last:
            h = np.maximum(h, 0.0)
        acts.append(h)
    err = acts[-1] - y
    loss = float(np.mean(err * err))
    delta = 2.0 * err / len(x)
    gw: list[np.ndarray] = [None] * len(weights)  # type: ignore[list-item]
    gb: list[np.ndarray] = [None] * len(weights)  # type: ignore[list-item]
    for i in range(last, -1, -1):
        gw[i] = acts[i].T @ delta + l2 * weights[i]
        gb[i] = delta.sum(axis=0)
        if i:
            delta = (delta @ weights[i].T) * (acts[i] > 0)
    return loss, gw + gb


def _mse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((pred - y) ** 2)) if len(y) else math.nan


ARCHITECTURE = Architecture(
    name="mlp",
    train=train,
    default_space={
        "lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-1},
        "decay": {"distribution": "uniform", "low": 0.9, "high": 1.0},
        "patience": {"distribution": "int", "low": 3, "high": 20},
        "hidden": [[32], [64], [64, 32]],
        "batch_size": [32, 64, 128],
        "l2": {"distribution": "loguniform", "low": 1e-6, "high": 1e-2},
    },
    lr_params=("lr", "decay", "patience"),
    metrics=METRICS + ("best_epoch",),
    parameters=TRAINING | {"hidden", "lags"},
    description="numpy MLP (ReLU layers, Adam, early stopping) on lagged target values and the covariates",
)
