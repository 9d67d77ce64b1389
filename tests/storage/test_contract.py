"""The storage contract: every RunStore implementation passes these (local now; gs:// next)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpt_cli.storage import LocalRunStore
from hpt_cli.storage.results import Columns, csv_line, read_rows


class Backend:
    """How the contract reaches one implementation: make a store, reopen it, read it as an
    outside reader would (the local file, or the bucket's object)."""

    def __init__(self, kind, tmp_path, request):
        self.kind = kind
        self.tmp_path = tmp_path
        self.count = 0
        if kind == "gcs":
            from tests.gcs.emulator import client

            emulator = request.getfixturevalue("gcs_emulator")
            self.bucket = request.getfixturevalue("gcs_bucket")
            self.client = client(emulator.url)

    def new(self):
        self.count += 1
        return self._open(self.count)

    def _open(self, n):
        if self.kind == "local":
            return LocalRunStore(self.tmp_path / f"run{n}")
        from hpt_cli.storage.gcs import GcsLocation
        from hpt_cli.storage.remote import GcsRunStore

        return GcsRunStore(GcsLocation(self.bucket, f"sweeps/run{n}"), self.tmp_path / f"spool{n}",
                           client=self.client, interval=0.05, upload_timeout=10)

    def reopen(self, store):
        return self._open(self.count)

    def outside(self, store, name="results.csv") -> bytes:
        if self.kind == "local":
            return (store.root / name).read_bytes()
        return self.client.bucket(self.bucket).blob(store.location.key(name)).download_as_bytes()


@pytest.fixture(params=["local", "gcs"])
def backend(request, tmp_path):
    return Backend(request.param, tmp_path, request)


@pytest.fixture
def make_store(backend):
    return backend.new


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


def test_reopening_appends_without_a_second_header(backend):
    store = backend.new()
    header = ["trial_id", "status"]
    store.append_results(header, [csv_line(["a", "ok"])])
    store.close()
    again = backend.reopen(store)
    assert [r["trial_id"] for r in again.read_results()[1]] == ["a"]
    again.append_results(header, [csv_line(["b", "ok"])])
    again.close()
    assert [r["trial_id"] for r in again.read_results()[1]] == ["a", "b"]
    assert backend.outside(again) == b"trial_id,status\na,ok\nb,ok\n"


def test_what_an_outside_reader_sees_after_close(backend):
    store = backend.new()
    header = ["trial_id", "status"]
    store.append_results(header, [csv_line(["a", "ok"])])
    store.write_json("spec.json", {"name": "x"})
    folder = store.trial_dir("abc")
    (folder / "model.npz").write_bytes(b"weights")
    store.trial_finished("abc")
    store.write_json("summary.json", {"done": True})
    store.close()
    assert backend.outside(store) == b"trial_id,status\na,ok\n"
    assert json.loads(backend.outside(store, "spec.json")) == {"name": "x"}
    assert json.loads(backend.outside(store, "summary.json")) == {"done": True}
    assert backend.outside(store, "trials/abc/model.npz") == b"weights"


def test_write_json_replaces(backend):
    store = backend.new()
    store.write_json("summary.json", {"a": 1})
    store.write_json("summary.json", {"a": 2})
    store.close()
    assert json.loads(backend.outside(store, "summary.json")) == {"a": 2}


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
