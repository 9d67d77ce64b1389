"""Loading and splitting trial data: the bundled set, user files, one clear line per problem."""

from __future__ import annotations

import sys
from datetime import date

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
