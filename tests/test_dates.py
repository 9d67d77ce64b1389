"""Calendar arithmetic and rolling windows, checked against hand-computed dates."""

from datetime import date

import pytest

from hpt_cli.dates import (
    DateRange,
    Length,
    add_months,
    parse_date,
    parse_duration,
    parse_length,
    rolling_windows,
)
from hpt_cli.spec import parse_spec


def d(text: str) -> date:
    return date.fromisoformat(text)


@pytest.mark.parametrize(
    "start, months, expected",
    [
        ("2016-03-31", -1, "2016-02-29"),  # leap year, clamped
        ("2015-03-31", -1, "2015-02-28"),
        ("2016-01-31", 1, "2016-02-29"),
        ("2016-12-15", 1, "2017-01-15"),
        ("2017-01-15", -1, "2016-12-15"),
        ("2016-02-29", 12, "2017-02-28"),
        ("2016-02-29", 48, "2020-02-29"),
    ],
)
def test_add_months_clamps_to_month_end(start, months, expected):
    assert add_months(d(start), months) == d(expected)


def test_parse_length_units():
    assert parse_length("3M") == Length(3, "M")
    assert parse_length("2w") == Length(2, "W")
    assert parse_length(" 10D ") == Length(10, "D")
    for bad in ("3", "M", "0M", "3Q", "-1M", 3):
        with pytest.raises(ValueError, match="expected a length"):
            parse_length(bad)


def test_parse_duration():
    assert parse_duration("30m") == 1800
    assert parse_duration("2h") == 7200
    assert parse_duration("1.5h") == 5400
    assert parse_duration(90) == 90
    assert parse_duration("45") == 45
    for bad in ("soon", "-1m", 0, True):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_parse_date_strict():
    assert parse_date("2016-02-29") == d("2016-02-29")
    with pytest.raises(ValueError, match="not a day of the calendar"):
        parse_date("2015-02-29")
    with pytest.raises(ValueError, match="expected an ISO date"):
        parse_date("2015/02/01")


def test_issue_example_three_quarters_ending_this_month():
    # run on 2026-11-22: last three 3-month windows ending at the start of November, 1M apart
    spec = parse_spec(
        '{"architecture": "ridge", "date-range": {"rolling": {"count": 3, "length": "3M", "step": "1M", "end": "today"}}}',
        today=d("2026-11-22"),
    )
    assert [str(r) for r in spec.date_ranges] == [
        "2026-06-01..2026-09-01",
        "2026-07-01..2026-10-01",
        "2026-08-01..2026-11-01",
    ]


def test_rolling_moves_with_the_run_month():
    text = '{"architecture": "ridge", "date-range": {"rolling": {"count": 2, "length": "1M"}}}'
    october = parse_spec(text, today=d("2016-10-31")).date_ranges
    november = parse_spec(text, today=d("2016-11-01")).date_ranges
    assert [str(r) for r in october] == ["2016-08-01..2016-09-01", "2016-09-01..2016-10-01"]
    assert [str(r) for r in november] == ["2016-09-01..2016-10-01", "2016-10-01..2016-11-01"]


def test_rolling_with_explicit_end_at_month_end_and_leap_year():
    windows = rolling_windows(d("2016-03-31"), 3, Length(1, "M"), Length(1, "M"))
    # each end is computed from the anchor, so clamping to Feb 29 never drifts into March
    ends = [w.end for w in windows]
    starts = [w.start for w in windows]
    assert ends == [d("2016-01-31"), d("2016-02-29"), d("2016-03-31")]
    assert starts == [d("2015-12-31"), d("2016-01-29"), d("2016-02-29")]


def test_rolling_days_weeks_years():
    assert rolling_windows(d("2016-03-01"), 2, Length(10, "D"), Length(1, "W")) == [
        DateRange(d("2016-02-13"), d("2016-02-23")),
        DateRange(d("2016-02-20"), d("2016-03-01")),  # 2016 is a leap year: Feb has 29 days
    ]
    assert rolling_windows(d("2017-01-01"), 2, Length(1, "Y"), Length(1, "Y")) == [
        DateRange(d("2015-01-01"), d("2016-01-01")),
        DateRange(d("2016-01-01"), d("2017-01-01")),
    ]


def test_default_step_is_the_length():
    spec = parse_spec(
        '{"architecture": "ridge", "date_ranges": {"rolling": {"count": 2, "length": "3M", "end": "2016-07-01"}}}'
    )
    assert [str(r) for r in spec.date_ranges] == ["2016-01-01..2016-04-01", "2016-04-01..2016-07-01"]
