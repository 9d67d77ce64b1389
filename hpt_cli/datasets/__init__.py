"""Trial data: load a CSV (optionally gzipped) or Parquet file once per process, split by date.

`path` None in the spec means the bundled Chicago ridership data set (NOTICE.md beside it).
Date ranges are half-open: a range [start, end) trains on start <= date < end and validates on
the `data.validation` length that follows, end <= date < end + validation.
"""

from __future__ import annotations

import calendar
import difflib
import functools
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from hpt_cli.dates import DateRange, Length, month_start, rolling_windows
from hpt_cli.errors import DataError
from hpt_cli.spec.model import DataSpec, Rolling

BUNDLED_FILE = "chicago_ridership.csv.gz"
_PARQUET_SUFFIXES = (".parquet", ".pq")
_SHOWN_COLUMNS = 8

__all__ = ["Dataset", "bundled_path", "check_coverage", "data_path", "load_dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """One table sorted by date; `frame[date_column]` is datetime64. Treat `frame` as read-only:
    it is shared by every trial of the worker process."""

    name: str
    frame: pd.DataFrame
    date_column: str
    target: str

    def coverage(self) -> tuple[date, date]:
        """The first and the last day with a row."""
        days = self.frame[self.date_column]
        return days.iloc[0].date(), days.iloc[-1].date()

    def rows(self, start: date, end: date) -> tuple[int, int]:
        """Positions [i, j) of the rows with start <= date < end."""
        days = self.frame[self.date_column].to_numpy()
        lo, hi = np.datetime64(start, "D"), np.datetime64(end, "D")
        return int(np.searchsorted(days, lo, "left")), int(np.searchsorted(days, hi, "left"))

    def split(self, date_range: DateRange, validation: Length) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(train, validation): start <= date < end, then end <= date < end + validation.
        Both are fresh copies with a 0-based index, so a trial may change them freely."""
        i, j = self.rows(date_range.start, date_range.end)
        _, k = self.rows(date_range.end, validation.add_to(date_range.end))
        train = self.frame.iloc[i:j].reset_index(drop=True).copy()
        val = self.frame.iloc[j:k].reset_index(drop=True).copy()
        return train, val


def bundled_path() -> Path:
    """The bundled data file (a real file inside the installed package)."""
    return Path(str(resources.files("hpt_cli.datasets").joinpath(BUNDLED_FILE)))


def data_path(spec: DataSpec) -> Path:
    """The absolute path of the file `spec` names (the bundled file when `spec.path` is None)."""
    return bundled_path() if spec.path is None else Path(spec.path).expanduser().resolve()


def load_dataset(spec: DataSpec) -> Dataset:
    """Read, check and sort the data once per process; raise DataError with one clear line."""
    return _load(str(data_path(spec)), spec.path or BUNDLED_FILE, spec.name, spec.date_column, spec.target)


@functools.lru_cache(maxsize=8)
def _load(path: str, shown: str, name: str, date_column: str, target: str) -> Dataset:
    frame = _read(Path(path), shown)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    _need_column(columns, date_column, shown, "data.date_column")
    _need_column(columns, target, shown, "data.target")
    frame[date_column] = _dates(frame[date_column], date_column, shown)
    frame[target] = _numbers(frame[target], target, shown)
    if frame.empty:
        raise DataError(f"{shown} has no rows")
    frame = frame.sort_values(date_column, kind="stable").reset_index(drop=True)
    return Dataset(name=name, frame=frame, date_column=date_column, target=target)


def _read(path: Path, shown: str) -> pd.DataFrame:
    if not path.is_file():
        where = "" if str(path) == shown else f" (looked for {path})"
        raise DataError(f"no data file {shown!r}{where}; check data.path in the spec (a relative path is read "
                        "from the folder hpt runs in)")
    parquet = path.name.lower().endswith(_PARQUET_SUFFIXES)
    try:
        if parquet:
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise DataError("reading parquet needs pyarrow: pip install 'hpt-cli[parquet]'") from None
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except DataError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        kind = "Parquet" if parquet else "CSV"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {shown} as {kind}: {first}") from None


def _need_column(columns: list[str], column: str, shown: str, key: str) -> None:
    if column in columns:
        return
    hint = difflib.get_close_matches(column, columns, n=1)
    hint_text = f" (did you mean {hint[0]!r}?)" if hint else ""
    listed = ", ".join(columns[:_SHOWN_COLUMNS])
    if len(columns) > _SHOWN_COLUMNS:
        listed += f", ... ({len(columns)} in all)"
    raise DataError(f"no column {column!r} in {shown}{hint_text}; columns: {listed}; set {key}")


def _dates(values: pd.Series, column: str, shown: str) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = values
    else:
        try:
            parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
        except (ValueError, TypeError):
            parsed = pd.Series(pd.NaT, index=values.index)
        if parsed.isna().any():  # not ISO throughout: let pandas guess one format
            try:
                parsed = pd.to_datetime(values, errors="coerce")
            except (ValueError, TypeError):
                parsed = pd.Series(pd.NaT, index=values.index)
        if isinstance(getattr(parsed, "dtype", None), pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_localize(None)
    bad = parsed.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"column {column!r} of {shown} has values that are not dates, e.g. {values.iloc[row]!r} "
            f"(data row {row + 1}); use ISO dates such as 2017-01-31 or set data.date_column"
        )
    return parsed.astype("datetime64[ns]")


def _numbers(values: pd.Series, column: str, shown: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("float64")
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values
    parsed = pd.to_numeric(values, errors="coerce")
    bad = parsed.isna() & values.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"column {column!r} of {shown} is not numeric, e.g. {values.iloc[row]!r} (data row {row + 1}); "
            f"set data.target to a numeric column"
        )
    return parsed.astype("float64")


def check_coverage(spec: DataSpec, date_ranges: Iterable[DateRange], rolling: Rolling | None = None,
                   default_day: date | None = None) -> list[str]:
    """Raise DataError before anything starts when a range has no training rows, or when the
    validation window after it has none. `rolling`: the spec's rolling rule, when the ranges are
    its windows (the hint then says how to move them: `--today`, or `end`). `default_day`: the run
    day, when the spec has no "date-range" and the ranges are the default (the last year before
    that day's month; the message then says so, not "rolling windows").

    Returns notes (one line each, without "note: ") on what runs but may not be meant: ranges
    that start before the data does, so their trials train on less than the range."""
    dataset = load_dataset(spec)
    first, last = dataset.coverage()
    covers = f"the data covers {first.isoformat()}..{last.isoformat()}"
    ranges = list(date_ranges)
    for r in ranges:
        i, j = dataset.rows(r.start, r.end)
        val = DateRange(r.end, spec.validation.add_to(r.end))
        if default_day is not None and (i == j or _no_rows(dataset, val)):
            raise DataError(_default_message(dataset, spec, r, val, default_day, rolling, i == j, covers))
        if i == j:
            if rolling is not None:
                hint = "; " + _rolling_hint(dataset, spec, rolling, validation=False)
            elif spec.path is None and r.start > last:  # e.g. the seed article's 2017 spec
                hint = ("; the bundled demo data ends in 2016: set \"data\" to a file that covers these "
                        "dates, or move them into 2001-2016 (as experiments/seed-lstm-attention-bundled.json does)")
            else:
                hint = ""
            raise DataError(f"no rows of {dataset.name} in {r}; {covers}{hint}")
        if _no_rows(dataset, val):
            fix = "end the range earlier or shorten data.validation"
            if rolling is not None:
                fix = _rolling_hint(dataset, spec, rolling, validation=True)
            raise DataError(
                f"no validation rows of {dataset.name} in {val} ({_after(spec.validation)} {r}); {covers}; {fix}"
            )
    early = [r for r in ranges if r.start < first]
    if not early:
        return []
    r = early[0]
    if len(early) == 1:
        return [f"date range {r} starts before the data, which begins on {first.isoformat()}: its trials "
                f"train on {DateRange(first, r.end)} only"]
    return [f"{len(early)} date ranges start before the data, which begins on {first.isoformat()} (the first: "
            f"{r}): their trials train only on the part from {first.isoformat()}"]


def _no_rows(dataset: Dataset, r: DateRange) -> bool:
    return not _has_rows(dataset, r)


def _default_message(dataset: Dataset, spec: DataSpec, r: DateRange, val: DateRange, day: date,
                     rolling: Rolling | None, no_training: bool, covers: str) -> str:
    """The spec has no "date-range": say what the default is, not "rolling windows"."""
    month = "this month" if month_start(day) == month_start(date.today()) else "--today's month"
    shown = str(r) if rolling is not None else f"quick mode: {r}"
    what = f"it trains on the last year before {month} ({shown})"
    if not no_training:
        what += f" and validates on {val}, which has no rows"
    latest = _latest_today(dataset, spec, rolling) if rolling is not None else ""
    return (f"this spec has no \"date-range\", so {what}; {covers}: give a \"date-range\" inside the data, "
            f"or --today YYYY-MM-DD{latest}")


def _rolling_hint(dataset: Dataset, spec: DataSpec, rolling: Rolling, validation: bool) -> str:
    """How to move rolling windows into the data: a run day (`--today`) for `end: "today"`."""
    other = "or shorten data.validation" if validation else "or set \"data\" to a file that covers these dates"
    if rolling.end != "today":
        return f"the rolling windows end at {rolling.end}: move date-range.rolling.end into the data, {other}"
    latest = _latest_today(dataset, spec, rolling)
    return (f"rolling windows end at the start of the run day's month: give --today YYYY-MM-DD so that "
            f"they fall inside the data{latest}, {other}")


def _latest_today(dataset: Dataset, spec: DataSpec, rolling: Rolling) -> str:
    """" (at the latest --today <last day of the data's last month>)" when every window of that
    month, and its validation window, has rows (windows end on the run day's 1st, so any day of the
    month gives the same ones); else nothing."""
    day = dataset.coverage()[1]
    windows = rolling_windows(month_start(day), rolling.count, rolling.length, rolling.step)
    if all(_has_rows(dataset, w) and _has_rows(dataset, DateRange(w.end, spec.validation.add_to(w.end)))
           for w in windows):
        last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        return f" (at the latest --today {last.isoformat()})"
    return ""


def _has_rows(dataset: Dataset, r: DateRange) -> bool:
    i, j = dataset.rows(r.start, r.end)
    return i != j


def _after(length: Length) -> str:
    unit = {"D": "day", "W": "week", "M": "month", "Y": "year"}[length.unit]
    return f"the {unit} after" if length.count == 1 else f"the {length.count} {unit}s after"
