"""Early stopping across trials: the pure rules, the rung store under concurrent appends, the spec
block, and an ASHA sweep of the mlp end to end."""

from __future__ import annotations

import csv
import json
import multiprocessing
import subprocess
from pathlib import Path

import pytest

from hpt_cli.context import TrialContext, TrialStopped
from hpt_cli.dates import DateRange
from hpt_cli.errors import SpecError
from hpt_cli.search.schedulers import (
    RungStore,
    Scheduler,
    SchedulerSettings,
    asha_continues,
    median_continues,
    rung_epochs,
    rung_of,
)
from hpt_cli.spec import parse_spec
from hpt_cli.spec.model import SchedulerSpec
from tests.helpers import HPT, subprocess_env, write_spec

RANGE = DateRange.from_json(["2015-01-01", "2015-02-01"])


# -- the rules ------------------------------------------------------------------------------------
def test_rung_epochs_and_rung_of():
    assert rung_epochs(2, 3, 60) == [2, 6, 18, 54]
    assert rung_epochs(1, 2, 8) == [1, 2, 4, 8]
    assert [rung_of(e, 2, 3) for e in (1, 2, 3, 6, 17, 18, 54)] == [None, 0, None, 1, None, 2, 3]
    with pytest.raises(ValueError, match="reduction >= 2 must hold, but got grace=2, reduction=1"):
        rung_epochs(2, 1, 10)


def test_asha_goes_on_while_fewer_than_reduction_values():
    assert asha_continues(100.0, [1.0, 100.0], reduction=3)
    assert asha_continues(float("nan"), [float("nan")], reduction=3)


@pytest.mark.parametrize("value, recorded, expected", [
    (1.0, [1.0, 2.0, 3.0], True),  # top 1 of 3
    (2.0, [1.0, 2.0, 3.0], False),
    (2.0, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], True),  # top 2 of 6
    (3.0, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], False),
    (2.0, [2.0, 2.0, 5.0], True),  # ties count in its favour
    (float("nan"), [1.0, 2.0, float("nan")], False),  # NaN is worst
])
def test_asha_keeps_the_top_third(value, recorded, expected):
    assert asha_continues(value, recorded, reduction=3) is expected


def test_asha_max_mode():
    assert asha_continues(9.0, [1.0, 5.0, 9.0], reduction=3, mode="max")
    assert not asha_continues(1.0, [1.0, 5.0, 9.0], reduction=3, mode="max")


def test_median_rule():
    assert median_continues(5.0, [1.0, 2.0], min_others=3)  # too few others
    assert median_continues(2.0, [1.0, 2.0, 3.0])  # at the median: go on
    assert not median_continues(2.5, [1.0, 2.0, 3.0])
    assert median_continues(2.5, [1.0, 2.0, 3.0], mode="max")
    assert not median_continues(2.5, [1.0, 2.0, 4.0, float("nan")])  # NaN ignored: median 2, not 3
    assert not median_continues(2.5, [1.0, 2.0, 3.0, 0.5])


# -- the store and one trial's side ---------------------------------------------------------------
def _append_many(folder: str, worker: int, count: int) -> None:
    store = RungStore(folder)
    for i in range(count):
        store.append("rung-0", {"trial_id": f"w{worker}-{i}", "group": "g", "value": float(i), "pad": "x" * 200})


def test_rung_store_concurrent_appends_from_processes(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w, 200)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    lines = (tmp_path / "rung-0.jsonl").read_text().splitlines()
    assert len(lines) == 800
    records = [json.loads(line) for line in lines]  # every line whole
    assert len({r["trial_id"] for r in records}) == 800
    assert len(RungStore(tmp_path).read("rung-0")) == 800


def _settings(folder: Path, **kw) -> SchedulerSettings:
    base = dict(type="asha", metric="val_mse", mode="min", grace=2, reduction=3, folder=str(folder),
                group="2015-01-01..2015-02-01#0", config="c")
    return SchedulerSettings(**{**base, **kw})


def _context(tmp_path: Path, trial_id: str, settings: SchedulerSettings) -> TrialContext:
    ctx = TrialContext(trial_id, {}, RANGE, 0, artifact_dir=tmp_path / trial_id)
    ctx.scheduler = Scheduler(settings, trial_id)
    return ctx


def test_report_raises_trial_stopped_at_a_rung(tmp_path):
    folder = tmp_path / ".scheduler"
    folder.mkdir()
    for i, value in enumerate([1.0, 2.0]):
        ctx = _context(tmp_path, f"t{i}", _settings(folder))
        ctx.report(epoch=1, val_mse=50.0)
        ctx.report(epoch=2, val_mse=value)  # fewer than 3 values: go on
    other_group = _context(tmp_path, "x", _settings(folder, group="2016-01-01..2016-02-01#0"))
    other_group.report(epoch=2, val_mse=9.0)  # alone in its group: goes on
    worse = _context(tmp_path, "t2", _settings(folder))
    with pytest.raises(TrialStopped) as stop:
        worse.report(epoch=2, val_mse=3.0, train_loss=1.0)
    assert stop.value.epoch == 2
    assert worse.last_metrics == {"val_mse": 3.0, "train_loss": 1.0}
    assert (tmp_path / "t2" / "curve.csv").read_text().splitlines()[-1] == "2,3.0,1.0"  # the row is written


def test_no_stop_at_the_last_epoch(tmp_path):
    folder = tmp_path / ".scheduler"
    folder.mkdir()
    for i in range(4):
        sched = Scheduler(_settings(folder), f"t{i}", epochs=2)
        sched.observe(2, {"val_mse": float(i)})  # the rung is the last epoch: nothing to save
    assert not folder.joinpath("rung-0.jsonl").exists()


def test_without_the_shared_folder_nothing_stops(tmp_path):
    for i in range(5):
        ctx = _context(tmp_path, f"t{i}", _settings(tmp_path / "absent"))
        ctx.report(epoch=2, val_mse=float(10 - i))  # each worse... would stop; no folder: never
    assert not (tmp_path / "absent").exists()


def test_median_scheduler_records_every_epoch_from_grace(tmp_path):
    folder = tmp_path / ".scheduler"
    folder.mkdir()
    for i in range(3):
        ctx = _context(tmp_path, f"t{i}", _settings(folder, type="median"))
        for epoch in (1, 2, 3):
            ctx.report(epoch=epoch, val_mse=float(i))
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-2.jsonl", "epoch-3.jsonl"]
    ctx = _context(tmp_path, "bad", _settings(folder, type="median"))
    ctx.report(epoch=1, val_mse=5.0)  # before grace: never stops
    with pytest.raises(TrialStopped):
        ctx.report(epoch=2, val_mse=5.0)


# -- the spec -------------------------------------------------------------------------------------
def test_spec_scheduler_defaults_from_the_objective():
    spec = parse_spec(json.dumps({"architecture": "mlp", "objective": {"metric": "val_mae", "mode": "max"},
                                  "scheduler": {"type": "asha", "grace": 2}}))
    assert spec.scheduler == SchedulerSpec("asha", "val_mae", "max", 2, 3)
    again = parse_spec(json.dumps(spec.to_json()))
    assert again.scheduler == spec.scheduler
    assert parse_spec(json.dumps({"architecture": "mlp"})).scheduler is None


@pytest.mark.parametrize("block, message", [
    ({"grace": 2}, "s.json:1: scheduler.type: missing; one of 'asha', 'median'"),
    ({"type": "hyperband"}, "s.json:1: scheduler.type: expected one of 'asha', 'median', got \"hyperband\""),
    ({"type": "asha", "reduction": 1}, "s.json:1: scheduler.reduction: expected an integer >= 2, got 1"),
    ({"type": "asha", "grace": 0}, "s.json:1: scheduler.grace: expected an integer >= 1, got 0"),
    ({"type": "median", "metric": ""}, "s.json:1: scheduler.metric: expected a non-empty string, got a string \"\""),
    ({"type": "asha", "eta": 3}, "s.json:1: scheduler.eta: unknown key 'eta'; known keys: type, metric, mode, "
                                 "grace, reduction"),
    ("asha", "s.json:1: scheduler: expected an object, got a string"),
])
def test_spec_scheduler_errors(block, message):
    with pytest.raises(SpecError) as err:
        parse_spec(json.dumps({"architecture": "mlp", "scheduler": block}), source="s.json")
    assert str(err.value) == message


# -- end to end -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_asha_sweep_of_the_mlp_stops_trials(tmp_path):
    spec = write_spec(tmp_path, name="asha", architecture="mlp",
                      parameters={"lr": [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1], "hidden": [[8], [32]],
                                  "patience": 0},
                      trial={"epochs": 30}, scheduler={"type": "asha", "grace": 2, "reduction": 3},
                      **{"date-range": [["2015-01-01", "2015-07-01"]]})
    done = subprocess.run([HPT, "run", str(spec), "--output", str(tmp_path / "runs"), "--workers", "2"],
                          capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    [folder] = (tmp_path / "runs").iterdir()
    with open(folder / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and len({r["trial_id"] for r in rows}) == 12
    stopped = [r for r in rows if r["status"] == "stopped"]
    assert stopped and all(float(r["epochs_run"]) < 30 for r in stopped)
    assert all(r["status"] in ("ok", "stopped") and r["error"] == "" for r in rows)
    assert "hpt_stopped_at_epoch" not in (folder / "results.csv").read_text()
    assert {r["status"] for r in rows} == {"ok", "stopped"}
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["counts"]["stopped"] == len(stopped) and summary["exit_code"] == 0
    assert f"{len(stopped)} stopped early" in done.stderr
