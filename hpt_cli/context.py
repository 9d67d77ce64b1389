"""What a trial function gets besides its parameters: `train(params, ctx) -> dict[str, float]`."""

from __future__ import annotations

import csv
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpt_cli.dates import DateRange

if TYPE_CHECKING:
    import pandas as pd

CURVE_FILE = "curve.csv"


class TrialStopped(Exception):
    """Raised by `ctx.report` when the spec's scheduler stops the trial early (at `epoch`).
    Let it propagate: run_trial turns it into a row with status "stopped"."""

    def __init__(self, epoch: int):
        super().__init__(f"stopped early by the scheduler at epoch {epoch}")
        self.epoch = epoch


class TrialData:
    """The rows of the trial's date range (`train`) and of the window after it (`validation`).

    Built with the frames, or with a `loader` returning (train, validation) that runs on first
    access: a trial that never looks at its data never pays for reading or slicing it (nor for
    importing pandas).
    """

    def __init__(
        self,
        train: pd.DataFrame | None = None,
        validation: pd.DataFrame | None = None,
        target: str = "",
        date_column: str = "",
        loader: Callable[[], tuple[pd.DataFrame, pd.DataFrame]] | None = None,
    ):
        if loader is None and (train is None or validation is None):
            raise ValueError("TrialData needs train and validation frames, or a loader")
        self._frames = None if loader is not None else (train, validation)
        self._loader = loader
        self.target = target
        self.date_column = date_column

    def _load(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self._frames is None:
            self._frames = self._loader()
        return self._frames

    @property
    def train(self) -> pd.DataFrame:
        return self._load()[0]

    @property
    def validation(self) -> pd.DataFrame:
        return self._load()[1]


@dataclass
class TrialContext:
    trial_id: str
    params: dict[str, Any]
    date_range: DateRange
    seed: int
    device: str = "cpu"  # "cpu" or "cuda:0"
    epochs: int | None = None  # the spec's trial.epochs; overrides an architecture's default
    artifact_dir: Path = field(default_factory=Path.cwd)
    data: TrialData | None = None
    scheduler: Any = None  # hpt_cli.search.schedulers.Scheduler: may stop the trial in report()
    last_metrics: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _header: list[str] = field(default_factory=list, init=False, repr=False)
    _rows: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.artifact_dir = Path(self.artifact_dir)

    @property
    def curve_path(self) -> Path:
        return self.artifact_dir / CURVE_FILE

    def report(self, epoch: int | None = None, **metrics: Any) -> None:
        """Append one row to artifact_dir/curve.csv and flush it. A key first seen in a later
        row widens the header: the (small) file is rewritten whole, so nothing is dropped.
        The first report of a context starts the file afresh (a retried trial does not append
        to the curve of the failed attempt). Metrics follow the rule of a trial's returned ones
        (`metric_value`): numbers, strings and bools; anything else raises TypeError naming it,
        before anything is written.

        With a scheduler in the spec, raises TrialStopped(epoch) once the row is written when
        the trial should stop (see hpt_cli.search.schedulers)."""
        scalars = {str(k): _scalar(str(k), v) for k, v in metrics.items()}  # TypeError: a bad one
        values = {k: _kept(s) for k, s in scalars.items()}
        row: dict[str, Any] = {"epoch": "" if epoch is None else int(epoch)}
        row.update({k: _cell(s) for k, s in scalars.items()})
        new = [k for k in row if k not in self._header]
        self._rows.append(row)
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        if new or len(self._rows) == 1:
            self._header.extend(new)
            with open(self.curve_path, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=self._header, restval="")
                writer.writeheader()
                writer.writerows(self._rows)
        else:
            with open(self.curve_path, "a", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, fieldnames=self._header, restval="").writerow(row)
        self.last_metrics = values
        if self.scheduler is not None:
            self.scheduler.observe(epoch, values)


def _cell(scalar: bool | str | numbers.Real) -> str:
    if isinstance(scalar, bool):
        return "true" if scalar else "false"  # as JSON (and results.csv's `extra`) write it
    if isinstance(scalar, numbers.Integral):
        return str(int(scalar))  # an integer stays one: "5", not "5.0"
    if isinstance(scalar, numbers.Real):
        return repr(float(scalar))  # shortest text that reads back to the same float
    return scalar


def _kept(scalar: bool | str | numbers.Real) -> float | str | bool:
    return scalar if isinstance(scalar, (bool, str)) else float(scalar)


def metric_value(name: str, value: Any) -> float | str | bool:
    """One metric as hpt keeps it: a number as a float (numpy scalars, 0-d and size-1 arrays,
    one-element tensors included; NaN and infinity pass), a string or a bool as it is (they go
    into results.csv's JSON `extra` column). Anything else raises TypeError naming the metric."""
    return _kept(_scalar(name, value))


def _scalar(name: str, value: Any) -> bool | str | numbers.Real:
    """`value` as a plain scalar, read once (a tensor's .item() syncs its device); TypeError
    naming the metric for anything that is not one number, string or bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)  # a numpy str_ too
    if isinstance(value, numbers.Real):
        return value
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (dict, list, tuple, set)):
        try:
            scalar = item()  # a numpy scalar or array of one value, a one-element torch tensor
        except (ValueError, RuntimeError, TypeError):
            scalar = item
        if scalar is not item and isinstance(scalar, (bool, str, numbers.Real)):
            return _scalar(name, scalar)
    raise TypeError(f"metric {name!r} is {_describe(value)}; a metric must be a number, a string or a bool: "
                    f"return one number (e.g. float(x.mean())) and save arrays and other values as files in "
                    f"the trial's artifact_dir")


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None and not callable(shape):
        return f"a {type(value).__module__.partition('.')[0]} {type(value).__name__} of shape {tuple(shape)}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"
