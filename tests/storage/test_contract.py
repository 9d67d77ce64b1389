"""The storage contract: every RunStore implementation passes these (local now; gs:// next)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpt_cli.storage import LocalRunStore
from hpt_cli.storage.results import Columns, csv_line, read_rows


@pytest.fixture(params=["local"])
def make_store(request, tmp_path):
    counter = iter(range(10**6))

    def make():
        if request.param == "local":
            return LocalRunStore(tmp_path / f"run{next(counter)}")
        raise AssertionError(request.param)

    return make


def test_new_store_has_no_results(make_store):
    assert make_store().read_results() == (None, [])


def test_appended_rows_read_back_whole_and_in_order(make_store):
    store = make_store()
    header = ["trial_id", "status", "note"]
    store.append_results(header, [])
    store.append_results(header, [csv_line(["a", "ok", "x, y"]), csv_line(["b", "failed", 'say "hi"'])])
    store.append_results(header, [csv_line(["c", "ok", ""])])
    got_header, rows = store.read_results()
    assert got_header == header
    assert rows == [{"trial_id": "a", "status": "ok", "note": "x, y"},
                    {"trial_id": "b", "status": "failed", "note": 'say "hi"'},
                    {"trial_id": "c", "status": "ok", "note": ""}]
    store.close()


def test_reopening_appends_without_a_second_header(make_store):
    store = make_store()
    header = ["trial_id", "status"]
    store.append_results(header, [csv_line(["a", "ok"])])
    store.close()
    again = type(store)(store.root)
    again.append_results(header, [csv_line(["b", "ok"])])
    again.close()
    assert [r["trial_id"] for r in again.read_results()[1]] == ["a", "b"]


def test_write_json_replaces(make_store):
    store = make_store()
    store.write_json("summary.json", {"a": 1})
    store.write_json("summary.json", {"a": 2})
    assert json.loads((store.root / "summary.json").read_text()) == {"a": 2}


def test_trial_dir_stays_inside_the_run_folder(make_store):
    store = make_store()
    assert store.trial_dir("abc123").is_dir()
    for bad in ("../x", "a/b", "", ".hidden", "/etc"):
        with pytest.raises(ValueError):
            store.trial_dir(bad)


def test_a_torn_last_line_is_skipped_and_mended(tmp_path):
    store = LocalRunStore(tmp_path / "run")
    store.append_results(["trial_id", "status"], [csv_line(["a", "ok"])])
    store.close()
    with open(store.results_path, "a") as fh:
        fh.write("b,o")  # a crash in the middle of a row
    assert [r["trial_id"] for r in store.read_results()[1]] == ["a"]
    again = LocalRunStore(tmp_path / "run")
    again.append_results(["trial_id", "status"], [csv_line(["c", "ok"])])
    again.close()
    frame = pd.read_csv(store.results_path)
    assert list(frame["trial_id"]) == ["a", "c"]  # the torn row is cut off; a resume reruns it
    assert list(frame["status"]) == ["ok", "ok"]


def test_columns_keep_unknown_metrics_in_extra_and_avoid_clashes():
    cols = Columns(["lr", "status", "hidden"], ["val_mse", "val_mse", "lr"])
    assert cols.header[:7] == ["trial_id", "status", "architecture", "start", "end", "repeat", "seed"]
    assert "param_status" in cols.header and "param_lr" in cols.header and "lr" in cols.header
    row = dict(zip(cols.header, cols.row({"trial_id": "t", "status": "ok"},
                                          {"lr": 0.1, "status": "x", "hidden": [64, 32]},
                                          {"val_mse": 1.25, "lr": 0.1, "surprise": 3.0})))
    assert row["param_lr"] == "0.1" and row["lr"] == "0.1" and row["param_status"] == "x"
    assert row["hidden"] == "[64, 32]" and row["val_mse"] == "1.25"
    assert json.loads(row["extra"]) == {"surprise": 3.0}


cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=20)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(cell, min_size=3, max_size=3), max_size=8))
def test_csv_round_trip(rows):
    header = ["a", "b", "c"]
    text = csv_line(header) + "".join(csv_line(r) for r in rows)
    assert [[d[h] for h in header] for d in read_rows(text)] == rows
