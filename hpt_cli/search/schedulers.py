"""Early stopping across trials (multi-fidelity): ASHA and the median rule, decentralised.

No process coordinates the trials. Each trial, when `ctx.report(epoch, **metrics)` reaches a
checkpoint, appends one JSON line to a file shared by every trial of the run
(`<run folder>/.scheduler/`), reads the file back, and decides for itself whether to go on:

- **ASHA** (asynchronous successive halving): rung r is at epoch `grace * reduction**r`. A trial
  reaching a rung goes on only if its value is in the top 1/reduction of the values recorded so
  far at that rung (its own included); with fewer than `reduction` values there, it goes on.
- **Median rule**: from epoch `grace` on, at every epoch, a trial stops if its value is worse than
  the median of the other trials' values at that epoch (with at least `MEDIAN_MIN_OTHERS` of them).

A trial is compared only with trials of the same date range and repeat (its `group`). The value
is the best reported so far (architectures keep their best epoch's weights, as the mlp does).

The decision functions (`rung_epochs`, `asha_continues`, `median_continues`) are pure; the
`RungStore` is the file; `Scheduler` ties them to one trial. Without a shared filesystem (Dask
workers on other machines) the folder is absent on the worker and the scheduler never stops a
trial: the runner creates the folder, a worker never does.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpt_cli.context import TrialStopped

__all__ = ["MEDIAN_MIN_OTHERS", "SCHEDULER_DIR", "RungStore", "Scheduler", "TrialStopped",
           "asha_continues", "median_continues", "rung_epochs", "rung_of"]

SCHEDULER_DIR = ".scheduler"
MEDIAN_MIN_OTHERS = 3  # the median rule waits for this many other trials at an epoch


def rung_epochs(grace: int, reduction: int, max_epoch: int) -> list[int]:
    """The ASHA rung epochs up to max_epoch: grace, grace*reduction, grace*reduction^2, ..."""
    if grace < 1 or reduction < 2:
        raise ValueError(f"grace >= 1 and reduction >= 2 must hold, but got grace={grace}, reduction={reduction}")
    out, epoch = [], grace
    while epoch <= max_epoch:
        out.append(epoch)
        epoch *= reduction
    return out


def rung_of(epoch: int, grace: int, reduction: int) -> int | None:
    """The rung index r with grace * reduction**r == epoch, or None when epoch is no rung."""
    r, at = 0, grace
    while at < epoch:
        at *= reduction
        r += 1
    return r if at == epoch else None


def _key(value: float, mode: str) -> float:
    """Smaller is better; NaN is worst."""
    if value is None or math.isnan(value):
        return math.inf
    return value if mode == "min" else -value


def asha_continues(value: float, recorded: Iterable[float], reduction: int, mode: str = "min") -> bool:
    """ASHA's asynchronous promotion rule. `recorded`: the values at this rung, `value` included.
    Go on when fewer than `reduction` values are there, or when `value` is among the best
    len(recorded) // reduction of them (ties count in its favour)."""
    keys = [_key(v, mode) for v in recorded]
    if len(keys) < reduction:
        return True
    mine = _key(value, mode)
    if math.isinf(mine):
        return False
    better = sum(1 for k in keys if k < mine)
    return better < len(keys) // reduction


def median_continues(value: float, others: Iterable[float], mode: str = "min",
                     min_others: int = MEDIAN_MIN_OTHERS) -> bool:
    """The median stopping rule: go on unless `value` is worse than the median of the other
    trials' values at the same epoch (NaNs among them ignored); too few others: go on."""
    keys = [k for k in (_key(v, mode) for v in others) if not math.isinf(k)]
    if len(keys) < min_others:
        return True
    return _key(value, mode) <= statistics.median(keys)


class RungStore:
    """JSON lines per checkpoint file in a folder shared by all trials of a run. Each record is
    one `os.write` on an O_APPEND descriptor (whole small lines do not interleave on a local
    filesystem); a reader skips a line it cannot parse."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.jsonl"

    def append(self, name: str, record: Mapping[str, Any]) -> None:
        line = (json.dumps(dict(record), sort_keys=True, allow_nan=True) + "\n").encode("utf-8")
        fd = os.open(self.path(name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def read(self, name: str) -> list[dict[str, Any]]:
        try:
            text = self.path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


@dataclass(frozen=True)
class SchedulerSettings:
    """What a worker needs (TrialPayload.scheduler, a plain dict on the wire)."""

    type: str  # asha | median
    metric: str
    mode: str
    grace: int
    reduction: int
    folder: str  # <run folder>/.scheduler
    group: str  # date range and repeat: trials are compared within a group only
    config: str  # the configuration's key

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SchedulerSettings:
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__})


class Scheduler:
    """One trial's side of the scheduler: `observe(epoch, metrics)` raises TrialStopped(epoch)
    when the trial should stop. Attach it to a TrialContext (`ctx.scheduler`)."""

    def __init__(self, settings: SchedulerSettings, trial_id: str, epochs: int | None = None):
        self.s = settings
        self.trial_id = trial_id
        self.epochs = epochs  # the trial's last epoch, when known: a stop there would save nothing
        self.store = RungStore(settings.folder)
        self.enabled = self.store.folder.is_dir()  # no shared filesystem: never stop
        self.best: float | None = None

    def observe(self, epoch: int | None, metrics: Mapping[str, Any]) -> None:
        if not self.enabled or epoch is None or self.s.metric not in metrics:
            return
        try:
            value = float(metrics[self.s.metric])
        except (TypeError, ValueError):
            return
        if self.best is None or _key(value, self.s.mode) < _key(self.best, self.s.mode):
            self.best = value
        epoch = int(epoch)
        if self.epochs is not None and epoch >= self.epochs:
            return
        if self.s.type == "asha":
            rung = rung_of(epoch, self.s.grace, self.s.reduction)
            if rung is None:
                return
            name = f"rung-{rung}"
        else:
            if epoch < self.s.grace:
                return
            name = f"epoch-{epoch}"
        if not self._record(name, epoch):
            return
        values = self._values(name)
        if self.s.type == "asha":
            go_on = asha_continues(self.best, values.values(), self.s.reduction, self.s.mode)
        else:
            others = [v for t, v in values.items() if t != self.trial_id]
            go_on = median_continues(self.best, others, self.s.mode)
        if not go_on:
            raise TrialStopped(epoch)

    def _record(self, name: str, epoch: int) -> bool:
        record = {"trial_id": self.trial_id, "config": self.s.config, "group": self.s.group,
                  "epoch": epoch, "value": self.best}
        try:
            self.store.append(name, record)
        except OSError:  # the shared folder went away: go on, as without a scheduler
            self.enabled = False
            return False
        return True

    def _values(self, name: str) -> dict[str, float]:
        """trial id -> value for this trial's group (a rerun trial's last record counts)."""
        out: dict[str, float] = {}
        for rec in self.store.read(name):
            if rec.get("group") == self.s.group and isinstance(rec.get("value"), (int, float)):
                out[str(rec.get("trial_id"))] = float(rec["value"])
        out[self.trial_id] = self.best  # our own, even if the read raced the write
        return out
