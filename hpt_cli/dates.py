"""Dates, calendar lengths ("3M") and durations ("30m"): pure functions, no clock.

A date range is half-open, [start, end): ["2017-01-01", "2017-04-01"] is the first quarter of
2017. Month and year arithmetic clamps to the end of the month (2016-03-31 minus 1M is
2016-02-29).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

_LENGTH = re.compile(r"^\s*(\d+)\s*([DWMY])\s*$", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True, order=True)
class DateRange:
    """Half-open range of days [start, end)."""

    start: date
    end: date

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    def to_json(self) -> list[str]:
        return [self.start.isoformat(), self.end.isoformat()]

    @classmethod
    def from_json(cls, pair: list[str] | tuple[str, str]) -> DateRange:
        return cls(date.fromisoformat(pair[0]), date.fromisoformat(pair[1]))


@dataclass(frozen=True)
class Length:
    """A calendar length: a count of days, weeks, months or years."""

    count: int
    unit: str  # one of D W M Y

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"

    def add_to(self, day: date, sign: int = 1) -> date:
        n = sign * self.count
        if self.unit == "D":
            return day + timedelta(days=n)
        if self.unit == "W":
            return day + timedelta(weeks=n)
        months = n if self.unit == "M" else 12 * n
        return add_months(day, months)


def parse_length(text: str) -> Length:
    """Parse "3M", "2W", "10D", "1Y"; raise ValueError with what is expected."""
    m = _LENGTH.match(text) if isinstance(text, str) else None
    if not m or int(m.group(1)) == 0:
        raise ValueError(
            f"expected a length such as '3M', '2W', '10D' or '1Y' (a positive count and one of "
            f"D, W, M, Y), got {text!r}"
        )
    return Length(int(m.group(1)), m.group(2).upper())


def add_months(day: date, months: int) -> date:
    """Shift by whole months, clamping the day to the target month's length."""
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))


def parse_date(text: str) -> date:
    """Parse an ISO date (YYYY-MM-DD) strictly; raise ValueError with what is expected."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(f"expected an ISO date YYYY-MM-DD, got {text!r}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a day of the calendar") from None


def rolling_windows(end: date, count: int, length: Length, step: Length) -> list[DateRange]:
    """`count` windows of `length`, the last one ending at `end`, each `step` after the previous.

    Returned oldest first. Window i (0 = the last) ends at `end - i*step` and starts at
    `end - (i*step + length)`: both computed from the anchor `end` in one shift, never by
    repeated stepping, so with `step == length` the windows lie side by side (each one's end is
    the next one's start) and month-end clamping never drifts. When the anchor is the last day of
    its month, month shifts keep to month ends (2016-04-30 minus 1M is 2016-03-31). When step and
    length mix day units (D, W) with month units (M, Y), a window starts `length` before its end.
    """
    keep_ends = _is_month_end(end)
    windows = []
    for i in range(count - 1, -1, -1):
        back = _times(step, i)
        window_end = _back(end, back, keep_ends)
        if _monthly(step) == _monthly(length):
            window_start = _back(end, _plus(back, length), keep_ends)
        else:
            window_start = _back(window_end, length, keep_ends)
        windows.append(DateRange(window_start, window_end))
    return windows


def _monthly(length: Length) -> bool:
    return length.unit in ("M", "Y")


def _in_base_unit(length: Length) -> int:
    """Months for M and Y, days for D and W."""
    return length.count * {"D": 1, "W": 7, "M": 1, "Y": 12}[length.unit]


def _times(length: Length, n: int) -> Length:
    return Length(length.count * n, length.unit)


def _plus(a: Length, b: Length) -> Length:
    """The sum of two lengths of the same kind (both in days or weeks, or both in months or years)."""
    if a.unit == b.unit:
        return Length(a.count + b.count, a.unit)
    return Length(_in_base_unit(a) + _in_base_unit(b), "M" if _monthly(a) else "D")


def _back(day: date, length: Length, keep_ends: bool) -> date:
    """`day` minus `length`; with `keep_ends`, the last day of a month maps to the last day of a month."""
    if keep_ends and _monthly(length) and _is_month_end(day):
        return month_end(add_months(day.replace(day=1), -_in_base_unit(length)))
    return length.add_to(day, -1)


def _is_month_end(day: date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def month_start(day: date) -> date:
    return day.replace(day=1)


def parse_duration(value: str | int | float, allow_zero: bool = False) -> float:
    """Seconds from 90, "90s", "30m", "2h", "1.5h", "1d" (and 0, "0s" ... where `allow_zero`);
    raise ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 90, '30m' or '2h', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _DURATION.match(value) if isinstance(value, str) else None
        if not m:
            raise ValueError(
                f"expected a duration such as 90, '90s', '30m' or '2h', got {value!r}"
            )
        seconds = float(m.group(1)) * _DURATION_UNITS[(m.group(2) or "s").lower()]
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds
