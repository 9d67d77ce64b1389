"""TrialContext.report: curve.csv keeps every key, whenever it first appears."""

from __future__ import annotations

import csv
from datetime import date

import numpy as np

from hpt_cli.context import TrialContext
from hpt_cli.dates import DateRange


def context(tmp_path) -> TrialContext:
    return TrialContext(trial_id="t1", params={}, date_range=DateRange(date(2014, 1, 1), date(2014, 4, 1)),
                        seed=0, artifact_dir=tmp_path / "art")


def rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_later_key_widens_the_header_and_nothing_is_dropped(tmp_path):
    ctx = context(tmp_path)
    ctx.report(epoch=1, loss=0.5)
    ctx.report(epoch=2, loss=0.25, val_mse=np.float64(0.75))
    ctx.report(epoch=3, val_mse=0.5)
    got = rows(ctx.curve_path)
    assert list(got[0]) == ["epoch", "loss", "val_mse"]
    assert got == [
        {"epoch": "1", "loss": "0.5", "val_mse": ""},
        {"epoch": "2", "loss": "0.25", "val_mse": "0.75"},
        {"epoch": "3", "loss": "", "val_mse": "0.5"},
    ]


def test_each_report_is_on_disk_at_once_and_floats_round_trip(tmp_path):
    ctx = context(tmp_path)
    ctx.report(epoch=1, loss=0.1 + 0.2)
    assert float(rows(ctx.curve_path)[0]["loss"]) == 0.1 + 0.2
    ctx.report(loss=float("nan"))
    assert rows(ctx.curve_path)[1]["epoch"] == ""
    assert rows(ctx.curve_path)[1]["loss"] == "nan"


def test_a_new_context_starts_the_curve_afresh(tmp_path):
    context(tmp_path).report(epoch=1, loss=9.0)
    ctx = context(tmp_path)  # a retry of the same trial
    ctx.report(epoch=1, loss=1.0)
    assert rows(ctx.curve_path) == [{"epoch": "1", "loss": "1.0"}]


def test_report_keeps_strings_and_bools_and_refuses_other_values_before_writing(tmp_path):
    import pytest

    ctx = context(tmp_path)
    ctx.report(epoch=0, loss=np.array([0.5]), steps=np.int64(3), note="warm", nan_seen=np.bool_(False))
    assert ctx.last_metrics == {"loss": 0.5, "steps": 3.0, "note": "warm", "nan_seen": False}
    with pytest.raises(TypeError) as bad:
        ctx.report(epoch=1, loss=np.zeros((2, 3)))
    assert str(bad.value) == (
        "metric 'loss' is a numpy ndarray of shape (2, 3); a metric must be a number, a string or a bool: return "
        "one number (e.g. float(x.mean())) and save arrays and other values as files in the trial's artifact_dir")
    assert rows(ctx.curve_path) == [{"epoch": "0", "loss": "0.5", "steps": "3", "note": "warm", "nan_seen": "false"}]
