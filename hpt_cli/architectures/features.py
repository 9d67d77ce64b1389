"""Train and validation frames to standardised (X, y): lagged target values plus the numeric
covariates (every numeric column but the date and the target, and but columns named
`Unnamed: <n>`: the index pandas writes with `to_csv` unless told not to).

A row is one time step: a lag of k is the value k rows earlier, so the built-ins that use these
features (`ROW_STEP_ARCHITECTURES`) need one row per day (hpt_cli.datasets.check_coverage refuses
a date with several rows before a run, and notes days without a row); `make_features` refuses
repeated dates too.

Statistics (means, standard deviations) come from the training rows only. A validation row's
lags may reach back into the training period (the frames are joined before lagging, then cut),
so no validation row is lost; the first training rows, whose lags reach before the range, are
dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_LAGS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 14)
# the built-in architectures whose features these are: one row per day, as one time step
ROW_STEP_ARCHITECTURES: tuple[str, ...] = ("ridge", "mlp", "lstm", "lstm-attention")
_SAVED_INDEX = re.compile(r"Unnamed: \d+")


def is_saved_index(column: object) -> bool:
    """A column named as pandas names a saved index or a header cell left empty (`Unnamed: 0`)."""
    return isinstance(column, str) and _SAVED_INDEX.fullmatch(column) is not None


def parse_lags(value: Any = None) -> tuple[int, ...]:
    """`None` -> DEFAULT_LAGS (1..7 and 14); an int n -> 1..n; a list -> those lags (0 = none)."""
    if value is None:
        return DEFAULT_LAGS
    if isinstance(value, bool):
        raise ValueError(f"lags: expected a count or a list of positive integers, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"lags: expected a count >= 0, got {value!r}")
        return tuple(range(1, value + 1))
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                for v in value):
        return tuple(sorted(set(value)))
    raise ValueError(f"lags: expected a count or a list of positive integers, got {value!r}")


@dataclass(frozen=True)
class Features:
    """Standardised inputs, targets in original units, and what it takes to redo the transform."""

    names: tuple[str, ...]
    lags: tuple[int, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_mean: np.ndarray
    x_std: np.ndarray

    @property
    def y_mean(self) -> float:
        return float(self.y_train.mean()) if len(self.y_train) else 0.0

    @property
    def y_std(self) -> float:
        std = float(self.y_train.std()) if len(self.y_train) else 0.0
        return std if std > 0 else 1.0

    def arrays(self) -> dict[str, np.ndarray]:
        """What model.npz keeps of the transform (no pickled objects)."""
        return {"feature_names": np.array(self.names), "lags": np.array(self.lags, dtype=np.int64),
                "x_mean": self.x_mean, "x_std": self.x_std,
                "y_mean": np.float64(self.y_mean), "y_std": np.float64(self.y_std)}


def make_features(train: pd.DataFrame, validation: pd.DataFrame, target: str, date_column: str,
                  lags: Any = None) -> Features:
    lags = parse_lags(lags)
    covariates = [c for c in train.columns
                  if c not in (target, date_column) and not is_saved_index(c) and _numeric(train[c])]
    both = pd.concat([train, validation], ignore_index=True)
    _one_row_per_date(both, date_column)
    y_all = both[target].to_numpy(dtype=np.float64)
    cols = [_shift(y_all, k) for k in lags]
    cols += [both[c].to_numpy(dtype=np.float64) for c in covariates]
    names = tuple(f"{target}_lag{k}" for k in lags) + tuple(covariates)
    x_all = np.column_stack(cols) if cols else np.empty((len(both), 0))

    n_train = len(train)
    first = min(max(lags, default=0), n_train)
    keep = np.zeros(len(both), dtype=bool)
    keep[first:] = True
    keep &= ~np.isnan(y_all)
    tr = keep.copy()
    tr[n_train:] = False
    va = keep.copy()
    va[:n_train] = False

    x_train = x_all[tr]
    mean = _nanmean(x_train)
    std = _nanstd(x_train, mean)
    x_all = (x_all - mean) / std
    np.nan_to_num(x_all, copy=False, nan=0.0)  # a missing input counts as the training mean
    return Features(names=names, lags=lags, x_train=x_all[tr], y_train=y_all[tr], x_val=x_all[va],
                    y_val=y_all[va], x_mean=mean, x_std=std)


def _one_row_per_date(frame: pd.DataFrame, date_column: str) -> None:
    """A lag counts rows: several rows on one date would make another series' value "lag 1"."""
    if date_column not in frame.columns:
        return
    stamps = frame[date_column]
    repeated = stamps[stamps.duplicated(keep=False)]
    if len(repeated):
        day = pd.Timestamp(repeated.iloc[0])
        shown = day.date().isoformat() if day == day.normalize() else day.isoformat(sep=" ")
        raise ValueError(f"{int((repeated == day).sum())} rows on {shown} in column {date_column!r}; the built-in "
                         f"features take one row per day as one time step: aggregate the data to one row per day")


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype)


def _shift(values: np.ndarray, k: int) -> np.ndarray:
    out = np.full_like(values, np.nan)
    if k < len(values):
        out[k:] = values[:-k]
    return out


def _nanmean(x: np.ndarray) -> np.ndarray:
    if not len(x):
        return np.zeros(x.shape[1])
    finite = ~np.isnan(x)
    counts = finite.sum(axis=0)
    sums = np.where(finite, x, 0.0).sum(axis=0)
    return np.divide(sums, counts, out=np.zeros(x.shape[1]), where=counts > 0)


def _nanstd(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    if not len(x):
        return np.ones(x.shape[1])
    finite = ~np.isnan(x)
    counts = finite.sum(axis=0)
    sq = np.where(finite, (x - mean) ** 2, 0.0).sum(axis=0)
    var = np.divide(sq, counts, out=np.zeros(x.shape[1]), where=counts > 0)
    std = np.sqrt(var)
    return np.where(std > 1e-12, std, 1.0)  # a constant column (a flag never set) stays 0
