"""Loading and splitting trial data: the bundled set, user files, one clear line per problem."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from hpt_cli.datasets import bundled_path, check_coverage, load_dataset
from hpt_cli.dates import DateRange, Length
from hpt_cli.errors import DataError
from hpt_cli.spec import parse_spec
from hpt_cli.spec.model import DataSpec

Q1_2014 = DateRange(date(2014, 1, 1), date(2014, 4, 1))


def write_csv(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_the_bundled_data_loads_sorted_with_dates_and_its_notice():
    ds = load_dataset(DataSpec())
    assert ds.name == "chicago_ridership"
    assert ds.coverage() == (date(2001, 1, 22), date(2016, 8, 28))
    assert len(ds.frame) == 5698
    assert pd.api.types.is_datetime64_any_dtype(ds.frame["date"])
    assert ds.frame["date"].is_monotonic_increasing
    assert ds.frame.shape[1] == 50
    assert bundled_path().with_name("NOTICE.md").is_file()


def test_loading_is_cached_per_process():
    assert load_dataset(DataSpec()) is load_dataset(DataSpec(validation=Length(2, "W")))


def test_split_is_half_open_with_the_validation_window_after():
    train, val = load_dataset(DataSpec()).split(Q1_2014, Length(1, "M"))
    assert train["date"].min() == pd.Timestamp("2014-01-01")
    assert train["date"].max() == pd.Timestamp("2014-03-31")
    assert len(train) == 90
    assert val["date"].min() == pd.Timestamp("2014-04-01")
    assert val["date"].max() == pd.Timestamp("2014-04-30")
    assert len(val) == 30
    train.loc[0, "ridership"] = -1.0  # a trial may change its copy; the cache stays intact
    assert load_dataset(DataSpec()).split(Q1_2014, Length(1, "M"))[0].loc[0, "ridership"] != -1.0


def test_a_user_csv_is_sorted_and_gzip_and_other_names_work(tmp_path):
    path = write_csv(tmp_path / "shop.csv", "day,sales,x\n2020-01-03,3,1\n2020-01-01,1,0\n2020-01-02,2,1\n")
    ds = load_dataset(DataSpec(path=path, date_column="day", target="sales"))
    assert ds.name == "shop"
    assert list(ds.frame["sales"]) == [1, 2, 3]
    assert ds.coverage() == (date(2020, 1, 1), date(2020, 1, 3))
    gz = tmp_path / "shop2.csv.gz"
    pd.read_csv(path).to_csv(gz, index=False)
    assert load_dataset(DataSpec(path=str(gz), date_column="day", target="sales")).name == "shop2"


def test_a_missing_file_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as err:
        load_dataset(DataSpec(path="data.csv"))
    assert str(err.value) == (f"no data file 'data.csv' (looked for {tmp_path / 'data.csv'}); "
                              f"check data.path in the spec (a relative path is read from the folder hpt runs in)")


def test_a_missing_date_column_lists_the_columns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data.csv", "date,ridership,temp\n2020-01-01,1,2\n")
    with pytest.raises(DataError) as err:
        load_dataset(DataSpec(path="data.csv", date_column="day"))
    assert str(err.value) == "no column 'day' in data.csv; columns: date, ridership, temp; set data.date_column"


def test_a_missing_target_suggests_a_close_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data.csv", "date,Ridership\n2020-01-01,1\n")
    with pytest.raises(DataError) as err:
        load_dataset(DataSpec(path="data.csv"))
    assert str(err.value) == ("no column 'ridership' in data.csv (did you mean 'Ridership'?); "
                              "columns: date, Ridership; set data.target")


def test_unparseable_dates_name_a_bad_value(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data.csv", "date,ridership\n2020-01-01,1\nsoon,2\n")
    with pytest.raises(DataError) as err:
        load_dataset(DataSpec(path="data.csv"))
    assert str(err.value) == ("column 'date' of data.csv has values that are not dates, e.g. 'soon' (data row 2); "
                              "use ISO dates such as 2017-01-31 or set data.date_column")


def test_a_non_numeric_target_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data.csv", "date,ridership\n2020-01-01,1\n2020-01-02,many\n")
    with pytest.raises(DataError) as err:
        load_dataset(DataSpec(path="data.csv"))
    assert str(err.value) == ("column 'ridership' of data.csv is not numeric, e.g. 'many' (data row 2); "
                              "set data.target to a numeric column")


def test_parquet_without_pyarrow_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    path = tmp_path / "data.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(DataError) as err:
        load_dataset(DataSpec(path=str(path)))
    assert str(err.value) == "reading parquet needs pyarrow: pip install 'hpt-cli[parquet]'"


def test_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "data.parquet"
    pd.DataFrame({"date": pd.to_datetime(["2020-01-02", "2020-01-01"]), "ridership": [2.0, 1.0]}).to_parquet(path)
    assert list(load_dataset(DataSpec(path=str(path))).frame["ridership"]) == [1.0, 2.0]


def test_coverage_passes_for_ranges_inside_the_data():
    check_coverage(DataSpec(), [Q1_2014, DateRange(date(2016, 6, 1), date(2016, 8, 1))])


def test_coverage_names_a_range_with_no_training_rows():
    with pytest.raises(DataError) as err:
        check_coverage(DataSpec(), [Q1_2014, DateRange(date(2017, 1, 1), date(2017, 4, 1))])
    assert str(err.value) == ("no rows of chicago_ridership in 2017-01-01..2017-04-01; "
                              "the data covers 2001-01-22..2016-08-28; the bundled demo data ends in 2016: "
                              "set \"data\" to a file that covers these dates, or move them into 2001-2016 "
                              "(as experiments/seed-lstm-attention-bundled.json does)")


def _rolling_spec(today: str, end: str = "today"):
    return parse_spec(
        '{"architecture": "ridge", "date-range": {"rolling": {"count": 3, "length": "3M", "step": "1M", '
        f'"end": "{end}"}}}}}}', today=date.fromisoformat(today),
    )


def test_coverage_of_rolling_windows_after_the_data_suggests_today():
    # review F13: a rolling spec was told to copy the seed spec's dates; its fix is --today
    spec = _rolling_spec("2026-11-22")
    with pytest.raises(DataError) as err:
        check_coverage(spec.data, spec.date_ranges, spec.rolling)
    assert str(err.value) == (
        "no rows of chicago_ridership in 2026-06-01..2026-09-01; the data covers 2001-01-22..2016-08-28; "
        "rolling windows end at the start of the run day's month: give --today YYYY-MM-DD so that they "
        "fall inside the data (at the latest --today 2016-08-31), or set \"data\" to a file that covers "
        "these dates"
    )
    latest = _rolling_spec("2016-08-28")  # the suggested run day does pass
    check_coverage(latest.data, latest.date_ranges, latest.rolling)


def test_coverage_of_rolling_windows_without_validation_rows_suggests_today():
    spec = _rolling_spec("2016-09-15")
    with pytest.raises(DataError) as err:
        check_coverage(spec.data, spec.date_ranges, spec.rolling)
    assert str(err.value).endswith(
        "the data covers 2001-01-22..2016-08-28; rolling windows end at the start of the run day's month: "
        "give --today YYYY-MM-DD so that they fall inside the data (at the latest --today 2016-08-31), "
        "or shorten data.validation"
    )


def test_coverage_of_rolling_windows_with_a_fixed_end_names_the_end():
    spec = _rolling_spec("2016-08-15", end="2017-03-31")
    with pytest.raises(DataError) as err:
        check_coverage(spec.data, spec.date_ranges, spec.rolling)
    assert "--today" not in str(err.value)
    assert str(err.value).endswith(
        "the rolling windows end at 2017-03-31: move date-range.rolling.end into the data, "
        "or set \"data\" to a file that covers these dates"
    )


def test_coverage_names_an_empty_validation_window():
    with pytest.raises(DataError) as err:
        check_coverage(DataSpec(), [DateRange(date(2016, 6, 1), date(2016, 9, 1))])
    assert str(err.value) == (
        "no validation rows of chicago_ridership in 2016-09-01..2016-10-01 (the month after "
        "2016-06-01..2016-09-01); the data covers 2001-01-22..2016-08-28; end the range earlier "
        "or shorten data.validation"
    )


def test_coverage_describes_other_validation_lengths():
    with pytest.raises(DataError, match=r"\(the 2 weeks after 2016-06-01\.\.2016-09-01\)"):
        check_coverage(DataSpec(validation=Length(2, "W")), [DateRange(date(2016, 6, 1), date(2016, 9, 1))])


# -- bringing your own data (review of day one: findings 4, 5, 6, 9, 11, 14) -----------------------

def _daily(path, days: int = 120, start: str = "2021-01-01", units=None, extra: str = "") -> str:
    """A daily CSV with columns day, units, temp (and `extra` columns' header cells)."""
    stamps = pd.date_range(start, periods=days, freq="D")
    values = units if units is not None else [f"{100 + i % 7}" for i in range(days)]
    lines = ["day,units,temp" + extra] + [f"{d.date()},{u},{i % 11}" for i, (d, u) in enumerate(zip(stamps, values))]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


JAN_APR = DateRange(date(2021, 1, 1), date(2021, 3, 1))  # validates on March


def _spec(path: str) -> DataSpec:
    return DataSpec(path=path, date_column="day", target="units")


@pytest.mark.parametrize("empty, message", [
    ((date(2021, 3, 1), date(2021, 4, 1)),
     "has no values in 2021-03-01..2021-04-01 (the month after 2021-01-01..2021-03-01): 31 rows, all empty"),
    ((date(2021, 1, 1), date(2021, 3, 1)), "has no values in 2021-01-01..2021-03-01: 59 rows, all empty"),
], ids=["validation", "training"])
def test_a_range_without_target_values_is_refused(tmp_path, empty, message):
    units = ["" if empty[0] <= d.date() < empty[1] else "5" for d in pd.date_range("2021-01-01", periods=120)]
    spec = _spec(_daily(tmp_path / "holes.csv", units=units))
    with pytest.raises(DataError) as err:
        check_coverage(spec, [JAN_APR])
    assert str(err.value) == (f"column 'units' of {spec.path} {message}; "
                              "fill them or choose date ranges where it has values")


def test_an_empty_target_column_is_refused_on_loading(tmp_path):
    spec = _spec(_daily(tmp_path / "nanall.csv", units=[""] * 120))
    with pytest.raises(DataError) as err:
        load_dataset(spec)
    assert str(err.value) == (f"column 'units' of {spec.path} is empty (120 rows, no values); "
                              "fill it or set data.target to a column with values")


def test_iso_times_with_daylight_saving_offsets_keep_their_wall_clock_time(tmp_path):
    path = tmp_path / "tz.csv"
    path.write_text("day,units\n2020-03-28T00:00:00+01:00,1\n2020-03-29T00:00:00+01:00,2\n"
                    "2020-03-30T00:00:00+02:00,3\n2020-03-31 00:00+0200,4\n")
    days = load_dataset(_spec(str(path))).frame["day"]
    assert [d.isoformat() for d in days.dt.date] == ["2020-03-28", "2020-03-29", "2020-03-30", "2020-03-31"]
    assert (days == days.dt.normalize()).all()  # local midnights, not UTC's 22:00 the day before


def test_unix_times_in_the_date_column_are_refused_and_yyyymmdd_numbers_are_dates(tmp_path):
    path = tmp_path / "epoch.csv"
    path.write_text("day,units\n1577836800,1\n1577923200,2\n")
    with pytest.raises(DataError) as err:
        load_dataset(_spec(str(path)))
    assert str(err.value) == (
        f"column 'day' of {path} holds numbers, not dates, e.g. 1577836800 (data row 1); write ISO dates "
        "such as 2017-01-31 (Unix times: convert them first, e.g. with pandas.to_datetime(..., unit='s')) "
        "or set data.date_column")
    ymd = tmp_path / "ymd.csv"
    ymd.write_text("day,units\n20200102,2\n20200101,1\n")
    assert load_dataset(_spec(str(ymd))).coverage() == (date(2020, 1, 1), date(2020, 1, 2))
    gap = tmp_path / "ymd_gap.csv"
    gap.write_text("day,units\n20200103,2\n,1\n")  # a date missing: not "holds numbers"
    with pytest.raises(DataError, match=r"has values that are not dates, e\.g\. nan \(data row 2\)"):
        load_dataset(_spec(str(gap)))


def test_several_rows_on_a_date_are_refused_for_the_built_ins_only(tmp_path):
    frame = pd.read_csv(_daily(tmp_path / "one.csv"))
    three = pd.concat([frame.assign(store=s) for s in "abc"]).sort_values("day", kind="stable")
    three.to_csv(tmp_path / "stores.csv", index=False)
    spec = _spec(str(tmp_path / "stores.csv"))
    with pytest.raises(DataError) as err:
        check_coverage(spec, [JAN_APR], architectures=["ridge", "mlp", "mymod:train"])
    assert str(err.value) == (
        f"{spec.path} has 3 rows on 2021-01-01 in column 'day' (and 89 more dates with several rows); "
        "ridge and mlp take one row per day as one time step: aggregate the file to one row per day "
        "(a module:function or command gets the rows as they are)")
    assert check_coverage(spec, [JAN_APR], architectures=["mymod:train"]) == []
    assert check_coverage(spec, [JAN_APR]) == []  # architectures not said: not checked
    train, val = load_dataset(spec).split(JAN_APR, Length(1, "M"))
    from hpt_cli.architectures.features import make_features
    with pytest.raises(ValueError, match=r"^3 rows on 2021-01-01 in column 'day'; .* aggregate the data"):
        make_features(train, val, "units", "day")  # a trial of ridge, mlp or lstm says so too


def test_days_without_a_row_in_the_ranges_used_are_a_note(tmp_path):
    frame = pd.read_csv(_daily(tmp_path / "all.csv"))
    weekdays = frame[pd.to_datetime(frame["day"]).dt.day_of_week < 5]
    weekdays.to_csv(tmp_path / "weekdays.csv", index=False)
    spec = _spec(str(tmp_path / "weekdays.csv"))
    assert check_coverage(spec, [JAN_APR], architectures=["ridge"]) == [
        f"{spec.path} has no row on 26 days of the date ranges used (column 'day'; the first: 2021-01-02); "
        "ridge lags by rows, so across a gap a lag reaches back more days than its number"]
    assert check_coverage(spec, [JAN_APR], architectures=["mymod:train"]) == []
    assert check_coverage(_spec(str(tmp_path / "all.csv")), [JAN_APR], architectures=["ridge"]) == []


def test_a_validation_window_cut_short_by_the_end_of_the_data_is_a_note(tmp_path):
    spec = _spec(_daily(tmp_path / "end.csv", days=60))  # 2021-01-01..2021-03-01
    assert check_coverage(spec, [JAN_APR]) == [
        "the validation window 2021-03-01..2021-04-01 of 2021-01-01..2021-03-01 ends after the data "
        "(last day 2021-03-01): its trials validate on 1 day only"]
    two = [JAN_APR, DateRange(date(2021, 1, 15), date(2021, 3, 1))]
    assert check_coverage(spec, two) == [
        "2 validation windows end after the data, whose last day is 2021-03-01 (the first: 2021-03-01..2021-04-01 "
        "of 2021-01-01..2021-03-01, 1 day): their trials validate on less than half a window"]
    full = _spec(_daily(tmp_path / "full.csv", days=88))  # ends 2021-03-29: 29 of 31 days is no note
    assert check_coverage(full, [JAN_APR]) == []


def test_a_saved_pandas_index_is_left_out_of_the_features_with_a_note(tmp_path):
    frame = pd.read_csv(_daily(tmp_path / "plain.csv"))
    frame.to_csv(tmp_path / "indexed.csv")  # writes the index as a column named "" -> "Unnamed: 0"
    spec = _spec(str(tmp_path / "indexed.csv"))
    assert check_coverage(spec, [JAN_APR], architectures=["ridge", "lstm"]) == [
        f"column 'Unnamed: 0' of {spec.path} is left out of the features of ridge and lstm: a saved pandas "
        "index, by its name (rename it to use it as a covariate)"]
    train, val = load_dataset(spec).split(JAN_APR, Length(1, "M"))
    from hpt_cli.architectures.features import make_features
    assert make_features(train, val, "units", "day", lags=[1]).names == ("units_lag1", "temp")


def test_the_bundled_data_passes_the_new_checks_without_notes():
    spec = parse_spec((Path(__file__).parents[1] / "experiments" / "quickstart.json").read_text())
    assert check_coverage(spec.data, spec.date_ranges, architectures=spec.architectures) == []


@pytest.mark.parametrize("first", ["01/02/2020", "13/01/2020", "1.2.20"])
def test_day_month_or_month_day_dates_are_refused_not_guessed(tmp_path, monkeypatch, first):
    # review F20 (readme): 01/02/2020 was read as January 2 silently; a DD/MM file failed only at the 13th
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data.csv", f"day,ridership\n{first},1\n2020-01-03,2\n")
    with pytest.raises(DataError) as err:
        load_dataset(DataSpec(path="data.csv", date_column="day"))
    assert str(err.value) == (
        f"column 'day' of data.csv has dates that are not ISO, e.g. '{first}' (data row 1): day/month or "
        f"month/day cannot be told apart; write yyyy-mm-dd dates (with pandas: pd.to_datetime(df['day'], "
        f"format='%m/%d/%Y').dt.strftime('%Y-%m-%d'), or '%d/%m/%Y')")


def test_iso_dates_with_times_still_load(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data.csv", "date,ridership\n2020-01-02 00:00:00,1\n2020-01-01T00:00,2\n")
    frame = load_dataset(DataSpec(path="data.csv")).frame
    assert [d.isoformat() for d in frame["date"].dt.date] == ["2020-01-01", "2020-01-02"]


def test_a_target_that_is_the_date_column_is_a_data_error(tmp_path, monkeypatch):
    # review F3 (readme): was AttributeError ('numpy.float64' ... 'date'), exit 70; the parser says it first
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data.csv", "day,ridership\n2020-01-01,1\n")
    with pytest.raises(DataError, match=r"^data.target 'day' is also data.date_column; set data.target to the "
                                        r"numeric column to predict$"):
        load_dataset(DataSpec(path="data.csv", date_column="day", target="day"))


def test_coverage_of_rolling_windows_ending_a_length_before_today_suggests_a_later_today():
    spec = _rolling_spec("2026-11-22", end="today-1M")
    with pytest.raises(DataError) as err:
        check_coverage(spec.data, spec.date_ranges, spec.rolling)
    assert str(err.value).endswith(
        "rolling windows end 1M before the start of the run day's month: give --today YYYY-MM-DD so that they "
        "fall inside the data (at the latest --today 2016-09-30), or set \"data\" to a file that covers these dates")
    latest = _rolling_spec("2016-09-30", end="today-1M")  # the suggested run day passes, without a short window
    assert check_coverage(latest.data, latest.date_ranges, latest.rolling) == []
