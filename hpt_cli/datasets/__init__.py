"""Trial data: load a CSV (optionally gzipped) or Parquet file once per process, split by date.

`path` None in the spec means the bundled Chicago ridership data set (NOTICE.md beside it).
Date ranges are half-open: a range [start, end) trains on start <= date < end and validates on
the `data.validation` length that follows, end <= date < end + validation.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from hpt_cli.architectures.features import ROW_STEP_ARCHITECTURES, is_saved_index
from hpt_cli.dates import DateRange, Length, add_months, month_end, month_start, rolling_windows
from hpt_cli.errors import DataError
from hpt_cli.spec.model import DataSpec, Rolling
from hpt_cli.words import and_list, plural

BUNDLED_FILE = "chicago_ridership.csv.gz"
_PARQUET_SUFFIXES = (".parquet", ".pq")
_SHOWN_COLUMNS = 8
# an ISO date-time's UTC offset ("...T00:00:00+01:00", "...Z"): dropped, keeping the wall-clock time
_OFFSET = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$")

# a date written with its day and month first (01/02/2020, 1.2.20): refused, not guessed
_SLASHED = re.compile(r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b")

__all__ = ["Dataset", "bundled_path", "check_coverage", "data_path", "load_dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """One table sorted by date; `frame[date_column]` is datetime64. Treat `frame` as read-only:
    it is shared by every trial of the worker process."""

    name: str
    frame: pd.DataFrame
    date_column: str
    target: str
    file: str = ""  # the file as the spec names it, for messages ("" : the name)

    @property
    def shown(self) -> str:
        return self.file or self.name

    def coverage(self) -> tuple[date, date]:
        """The first and the last day with a row."""
        days = self.frame[self.date_column]
        return days.iloc[0].date(), days.iloc[-1].date()

    def rows(self, start: date, end: date) -> tuple[int, int]:
        """Positions [i, j) of the rows with start <= date < end."""
        days = self.frame[self.date_column].to_numpy()
        lo, hi = np.datetime64(start, "D"), np.datetime64(end, "D")
        return int(np.searchsorted(days, lo, "left")), int(np.searchsorted(days, hi, "left"))

    def values(self, start: date, end: date) -> tuple[int, int]:
        """(rows, rows with a target value) with start <= date < end."""
        i, j = self.rows(start, end)
        return j - i, int(self.frame[self.target].iloc[i:j].notna().sum())

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
    if target == date_column:
        raise DataError(f"data.target {target!r} is also data.date_column; set data.target to the numeric column "
                        f"to predict")
    frame[date_column] = _dates(frame[date_column], date_column, shown)
    frame[target] = _numbers(frame[target], target, shown)
    if frame.empty:
        raise DataError(f"{shown} has no rows")
    if frame[target].isna().all():
        raise DataError(f"column {target!r} of {shown} is empty ({len(frame)} rows, no values); "
                        f"fill it or set data.target to a column with values")
    frame = frame.sort_values(date_column, kind="stable").reset_index(drop=True)
    return Dataset(name=name, frame=frame, date_column=date_column, target=target, file=shown)


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
    elif pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        parsed = _yyyymmdd(values, column, shown)
    else:
        try:
            parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
        except (ValueError, TypeError):  # e.g. UTC offsets that change with daylight saving
            parsed = _wall_clock(values)
        if isinstance(getattr(parsed, "dtype", None), pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_localize(None)
    bad = parsed.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        example = values.iloc[row]
        example = example.item() if isinstance(example, np.generic) else example  # nan, not np.float64(nan)
        if isinstance(example, str) and _SLASHED.match(example.strip()):  # 01/02/2020: January or February?
            raise DataError(
                f"column {column!r} of {shown} has dates that are not ISO, e.g. {example!r} (data row {row + 1}): "
                f"day/month or month/day cannot be told apart; write yyyy-mm-dd dates (with pandas: "
                f"pd.to_datetime(df[{column!r}], format='%m/%d/%Y').dt.strftime('%Y-%m-%d'), or '%d/%m/%Y')")
        raise DataError(
            f"column {column!r} of {shown} has values that are not dates, e.g. {example!r} "
            f"(data row {row + 1}); use ISO dates such as 2017-01-31 or set data.date_column"
        )
    return parsed.astype("datetime64[ns]")


def _wall_clock(values: pd.Series) -> pd.Series:
    """ISO date-times with differing UTC offsets (+01:00 in winter, +02:00 in summer): each row's
    local time, the offset dropped, as for a tz-aware Parquet column (not UTC, which would move
    local midnights to the day before)."""
    text = values.astype("string").str.strip().str.replace(_OFFSET, r"\1", regex=True)
    try:
        return pd.to_datetime(text, errors="coerce", format="ISO8601")
    except (ValueError, TypeError):
        return pd.Series(pd.NaT, index=values.index)


def _yyyymmdd(values: pd.Series, column: str, shown: str) -> pd.Series:
    """Numbers in the date column: 20170131 is a date; anything else (Unix times: 1485820800) is
    refused rather than guessed (pandas would read it as nanoseconds since 1970)."""
    numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    given = np.isfinite(numbers)
    whole = given & (numbers == np.round(numbers))
    eight = whole & (numbers >= 1000_01_01) & (numbers <= 9999_12_31)
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    if (eight == given).all():  # missing values stay NaT: the caller's "not dates" names them
        text = pd.Series(np.where(given, np.nan_to_num(numbers).astype(np.int64).astype(str), ""), index=values.index)
        parsed = pd.to_datetime(text.where(given), errors="coerce", format="%Y%m%d")
    if parsed[given].notna().all():
        return parsed
    row = int(np.flatnonzero((parsed.isna() & given).to_numpy())[0])
    shown_value = int(numbers[row]) if numbers[row] == round(numbers[row]) else float(numbers[row])
    raise DataError(
        f"column {column!r} of {shown} holds numbers, not dates, e.g. {shown_value!r} (data row {row + 1}); "
        f"write ISO dates such as 2017-01-31 (Unix times: convert them first, e.g. with "
        f"pandas.to_datetime(..., unit='s')) or set data.date_column"
    )


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
                   default_day: date | None = None, architectures: Iterable[str] | None = None) -> list[str]:
    """Raise DataError before anything starts when a range has no training rows, or when the
    validation window after it has none, or when the target has no value in either. `rolling`: the
    spec's rolling rule, when the ranges are its windows (the hint then says how to move them:
    `--today`, or `end`). `default_day`: the run day, when the spec has no "date-range" and the
    ranges are the default (the last year before that day's month; the message then says so, not
    "rolling windows"). `architectures`: the spec's; when one of them takes one row per day as one
    time step (`ROW_STEP_ARCHITECTURES`: ridge, mlp, lstm), a date with several rows in the ranges
    used is refused (None: not known, not checked).

    Returns notes (one line each, without "note: ") on what runs but may not be meant: ranges
    that start before the data does, so their trials train on less than the range; validation
    windows that the end of the data cuts to less than half; and for the one-row-per-day built-ins,
    days without a row (a lag counts rows, not days) and `Unnamed: <n>` columns left out of their
    features."""
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
        _need_values(dataset, r, "")
        _need_values(dataset, val, f" ({_after(spec.validation)} {r})")
    step = [a for a in dict.fromkeys(architectures or ()) if a in ROW_STEP_ARCHITECTURES]
    notes = _early_notes(ranges, first) + _short_notes(ranges, spec.validation, last)
    if step:
        notes += _step_notes(dataset, [(r.start, spec.validation.add_to(r.end)) for r in ranges], step)
    return notes


def _need_values(dataset: Dataset, r: DateRange, what: str) -> None:
    """The target has a value in `r` (which has rows): else one line naming the column and range."""
    rows, values = dataset.values(r.start, r.end)
    if rows and not values:
        raise DataError(
            f"column {dataset.target!r} of {dataset.shown} has no values in {r}{what}: {rows} rows, all empty; "
            f"fill them or choose date ranges where it has values"
        )


def _early_notes(ranges: list[DateRange], first: date) -> list[str]:
    early = [r for r in ranges if r.start < first]
    if not early:
        return []
    r = early[0]
    if len(early) == 1:
        return [f"date range {r} starts before the data, which begins on {first.isoformat()}: its trials "
                f"train on {DateRange(first, r.end)} only"]
    return [f"{len(early)} date ranges start before the data, which begins on {first.isoformat()} (the first: "
            f"{r}): their trials train only on the part from {first.isoformat()}"]


def _short_notes(ranges: list[DateRange], validation: Length, last: date) -> list[str]:
    """Validation windows that the end of the data cuts to less than half of their days (a month's
    window on data ending on the 28th is not worth a note; one day of it is)."""
    short = []
    for r in ranges:
        end = validation.add_to(r.end)
        days, kept = (end - r.end).days, (last - r.end).days + 1
        if kept * 2 < days:
            short.append((r, DateRange(r.end, end), kept))
    if not short:
        return []
    r, val, kept = short[0]
    if len(short) == 1:
        return [f"the validation window {val} of {r} ends after the data (last day {last.isoformat()}): "
                f"its trials validate on {plural(kept, 'day')} only"]
    return [f"{len(short)} validation windows end after the data, whose last day is {last.isoformat()} (the first: "
            f"{val} of {r}, {plural(kept, 'day')}): their trials validate on less than half a window"]


def _step_notes(dataset: Dataset, spans: list[tuple[date, date]], archs: list[str]) -> list[str]:
    """For architectures that take one row per day as one time step: a DataError for a date with
    several rows; notes for days without a row and for saved-index columns."""
    who = and_list(archs)
    take = "takes" if len(archs) == 1 else "take"
    used = np.zeros(len(dataset.frame), dtype=bool)
    for start, end in spans:
        i, j = dataset.rows(start, end)
        used[i:j] = True
    stamps = dataset.frame[dataset.date_column][used]
    notes: list[str] = []
    repeated = stamps[stamps.duplicated(keep=False)]
    if len(repeated):
        day = repeated.iloc[0]
        count = int((repeated == day).sum())
        more = repeated.nunique() - 1
        others = f" (and {plural(more, 'more date')} with several rows)" if more else ""
        raise DataError(
            f"{dataset.shown} has {count} rows on {_stamp(day)} in column {dataset.date_column!r}{others}; "
            f"{who} {take} one row per day as one time step: aggregate the file to one row per day "
            f"(a module:function or command gets the rows as they are)")
    lo, hi = dataset.coverage()
    days = [np.arange(max(start, lo), min(end, hi + timedelta(days=1)), dtype="datetime64[D]")
            for start, end in spans if max(start, lo) < min(end, hi + timedelta(days=1))]
    if days:
        missing = np.setdiff1d(np.unique(np.concatenate(days)), stamps.to_numpy().astype("datetime64[D]"))
        if len(missing):
            n = len(missing)
            notes.append(f"{dataset.shown} has no row on {plural(n, 'day')} of the date ranges used "
                         f"(column {dataset.date_column!r}; the first: {missing[0]}); {who} lag{'s' if take == 'takes' else ''} "
                         f"by rows, so across a gap a lag reaches back more days than its number")
    unnamed = [c for c in dataset.frame.columns
               if is_saved_index(c) and c not in (dataset.date_column, dataset.target)
               and pd.api.types.is_numeric_dtype(dataset.frame[c].dtype)]
    if unnamed:
        names = ", ".join(repr(c) for c in unnamed)
        notes.append(f"column{'s' if len(unnamed) > 1 else ''} {names} of {dataset.shown} "
                     f"{'are' if len(unnamed) > 1 else 'is'} left out of the features of {who}: a saved pandas "
                     f"index, by its name (rename it to use it as a covariate)")
    return notes


def _stamp(value: pd.Timestamp) -> str:
    return value.date().isoformat() if value == value.normalize() else value.isoformat(sep=" ")


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
    """How to move rolling windows into the data: a run day (`--today`) for `end: "today"` (or
    "today-1M")."""
    other = "or shorten data.validation" if validation else "or set \"data\" to a file that covers these dates"
    if rolling.end_on(date.today()) is None:
        return f"the rolling windows end at {rolling.end}: move date-range.rolling.end into the data, {other}"
    latest = _latest_today(dataset, spec, rolling)
    when = "at" if rolling.end == "today" else f"{rolling.end.partition('-')[2]} before"
    return (f"rolling windows end {when} the start of the run day's month: give --today YYYY-MM-DD so that "
            f"they fall inside the data{latest}, {other}")


_LATEST_MONTHS = 24  # how far after the data's last month _latest_today looks for a run day


def _latest_today(dataset: Dataset, spec: DataSpec, rolling: Rolling) -> str:
    """" (at the latest --today <last day of a month>)": the latest run day whose windows, and
    their validation windows, all have values (windows end on a 1st, so any day of the month gives
    the same ones), looked for from a while after the data's last month back to it; else nothing."""
    last = month_start(dataset.coverage()[1])
    if rolling.end_on(last) is None:
        return ""
    for ahead in range(_LATEST_MONTHS, -1, -1):
        day = add_months(last, ahead)
        windows = rolling_windows(rolling.end_on(day), rolling.count, rolling.length, rolling.step)
        if all(_has_values(dataset, w) and _has_values(dataset, DateRange(w.end, spec.validation.add_to(w.end)))
               for w in windows):
            return f" (at the latest --today {month_end(day).isoformat()})"
    return ""


def _has_rows(dataset: Dataset, r: DateRange) -> bool:
    i, j = dataset.rows(r.start, r.end)
    return i != j


def _has_values(dataset: Dataset, r: DateRange) -> bool:
    return dataset.values(r.start, r.end)[1] > 0


def _after(length: Length) -> str:
    unit = {"D": "day", "W": "week", "M": "month", "Y": "year"}[length.unit]
    return f"the {unit} after" if length.count == 1 else f"the {length.count} {unit}s after"
