"""What a trial function gets besides its parameters: `train(params, ctx) -> dict[str, float]`."""

from __future__ import annotations

import csv
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
        to the curve of the failed attempt).

        With a scheduler in the spec, raises TrialStopped(epoch) once the row is written when
        the trial should stop (see hpt_cli.search.schedulers)."""
        row: dict[str, Any] = {"epoch": "" if epoch is None else int(epoch)}
        row.update({str(k): _cell(v) for k, v in metrics.items()})
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
        self.last_metrics = dict(metrics)
        if self.scheduler is not None:
            self.scheduler.observe(epoch, metrics)


def _cell(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):  # numpy scalars, 0-d arrays
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, float):
        return repr(float(value))  # shortest text that reads back to the same float
    return value
