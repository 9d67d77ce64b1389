"""Calendar arithmetic and rolling windows, checked against hand-computed dates."""

from datetime import date, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    # each end and each start is computed from the anchor, so clamping to Feb 29 never drifts,
    # and the windows lie side by side (review F8: 2016-01-29..2016-02-29 overlapped January)
    assert [str(w) for w in windows] == [
        "2015-12-31..2016-01-31",
        "2016-01-31..2016-02-29",
        "2016-02-29..2016-03-31",
    ]


def test_rolling_month_end_anchor_keeps_to_month_ends():
    # review F8: "end": "2016-05-31" gave 2016-03-30..2016-04-30, overlapping March 30
    windows = rolling_windows(d("2016-05-31"), 3, Length(1, "M"), Length(1, "M"))
    assert [str(w) for w in windows] == [
        "2016-02-29..2016-03-31",
        "2016-03-31..2016-04-30",
        "2016-04-30..2016-05-31",
    ]
    # a 30-day month's last day is a month end too: 2016-04-30 minus 1M is 2016-03-31
    assert [str(w) for w in rolling_windows(d("2016-04-30"), 2, Length(1, "M"), Length(1, "M"))] == [
        "2016-02-29..2016-03-31",
        "2016-03-31..2016-04-30",
    ]
    spec = parse_spec(
        '{"architecture": "ridge", "date-range": {"rolling": {"count": 4, "length": "1M", "step": "1M", '
        '"end": "2016-03-31"}}}'
    )
    assert [str(r) for r in spec.date_ranges] == [
        "2015-11-30..2015-12-31",
        "2015-12-31..2016-01-31",
        "2016-01-31..2016-02-29",
        "2016-02-29..2016-03-31",
    ]


def test_rolling_mid_month_anchor_windows_share_boundaries():
    # the 30th: Feb clamps to the 29th, but January and December keep the 30th
    assert [str(w) for w in rolling_windows(d("2016-03-30"), 3, Length(1, "M"), Length(1, "M"))] == [
        "2015-12-30..2016-01-30",
        "2016-01-30..2016-02-29",
        "2016-02-29..2016-03-30",
    ]


def _old_rolling_windows(end, count, length, step):
    """The algorithm before review F8 (each start = its own end minus the length): the reference
    for anchors on the 1st, whose windows must not change."""
    out = []
    for k in range(count - 1, -1, -1):
        window_end = Length(step.count * k, step.unit).add_to(end, -1) if k else end
        out.append(DateRange(length.add_to(window_end, -1), window_end))
    return out


_lengths = st.builds(Length, st.integers(min_value=1, max_value=14), st.sampled_from("DWMY"))
_anchors = st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 12, 31))


@settings(max_examples=300, deadline=None)
@given(anchor=_anchors, count=st.integers(min_value=1, max_value=8), length=_lengths)
def test_property_step_equal_to_length_tiles_exactly(anchor, count, length):
    windows = rolling_windows(anchor, count, length, length)
    assert len(windows) == count
    assert windows[-1].end == anchor
    for w in windows:
        assert w.start < w.end
    for earlier, later in pairwise(windows):
        assert earlier.end == later.start  # side by side: no gap, no overlap
    if length.unit in "MY" and anchor == _last_day(anchor):
        assert all(w.start == _last_day(w.start) and w.end == _last_day(w.end) for w in windows)


@settings(max_examples=300, deadline=None)
@given(anchor=_anchors, count=st.integers(min_value=1, max_value=8), length=_lengths, step=_lengths)
def test_property_windows_are_ordered_and_anchored(anchor, count, length, step):
    windows = rolling_windows(anchor, count, length, step)
    assert windows[-1].end == anchor
    assert all(w.start < w.end for w in windows)
    assert all(a.end < b.end and a.start <= b.start for a, b in pairwise(windows))
    # one more window adds an older one and changes none of the others
    assert rolling_windows(anchor, count + 1, length, step)[1:] == windows
    # a length that is a whole number of steps (same unit) starts where an older window ends
    if length.unit == step.unit and length.count % step.count == 0:
        k = length.count // step.count
        longer = rolling_windows(anchor, count + k, length, step)
        assert all(longer[i].start == longer[i - k].end for i in range(k, len(longer)))


@settings(max_examples=300, deadline=None)
@given(
    anchor=st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 12, 31)).map(lambda day: day.replace(day=1)),
    count=st.integers(min_value=1, max_value=8),
    length=_lengths,
    step=_lengths,
)
def test_property_anchor_on_the_first_is_unchanged(anchor, count, length, step):
    # "end": "today" resolves to the first day of the run month: those windows keep their dates
    assert rolling_windows(anchor, count, length, step) == _old_rolling_windows(anchor, count, length, step)


def _last_day(day: date) -> date:
    return add_months(day.replace(day=1), 1) - timedelta(days=1)


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
