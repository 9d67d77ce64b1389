"""Click parameter types shared by several commands."""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime

import click


class IsoDate(click.ParamType):
    """A day as a strict ISO date, YYYY-MM-DD (2016-08-05, not 2016-8-5): a `datetime.date`."""

    name = "YYYY-MM-DD"

    def get_metavar(self, param, ctx=None):  # click < 8.2 passes no ctx
        return self.name

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        text = str(value).strip()
        m = re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", text)
        if not m:
            self.fail(f"expected an ISO date YYYY-MM-DD such as 2016-08-15, got {value!r}", param, ctx)
        year, month, day = (int(g) for g in m.groups())
        if year < 1 or not 1 <= month <= 12:
            self.fail(f"{text} is not a day of the calendar (years from 0001, months 01 to 12)", param, ctx)
        last = calendar.monthrange(year, month)[1]
        if not 1 <= day <= last:
            self.fail(
                f"{text} is not a day of the calendar ({calendar.month_name[month]} {year} has {last} days)",
                param,
                ctx,
            )
        return date(year, month, day)
