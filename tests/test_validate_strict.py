"""`hpt validate` as a CI gate (readme review 10-12): a near miss of a built-in name is an error,
--strict makes what `hpt run` would refuse here an error, built-in parameter values are checked,
and a command spec's dates outside the data get a note."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner

from hpt_cli.cli import cli
from hpt_cli.runner import check_data
from hpt_cli.spec import parse_spec
from tests.helpers import write_spec

pytestmark = pytest.mark.usefixtures("fresh_registry")  # tests/conftest.py
KNOWN = "known: mlp, ridge, lstm, lstm-attention, branin, hartmann6; or give 'package.module:function'"


def validate(*args):
    return CliRunner().invoke(cli, ["validate", *map(str, args)])


@pytest.mark.parametrize("text, where, typo, meant", [
    ('{"architecture": "rigde", "date-range": [["2015-01-01", "2015-02-01"]]}', "1: architecture", "rigde", "ridge"),
    ('{"architecture": ["ridge",\n "mpl"], "date-range": [["2015-01-01", "2015-02-01"]]}', "2: architecture[1]",
     "mpl", "mlp"),
])
def test_a_near_miss_of_a_built_in_is_an_error_without_strict(tmp_path, text, where, typo, meant):
    path = tmp_path / "s.json"
    path.write_text(text)
    result = validate(path)
    assert result.exit_code == 2
    assert result.output == f"error: {path}:{where}: unknown architecture '{typo}'; did you mean '{meant}'? ({KNOWN})\n"


def test_another_unknown_name_may_be_a_plugin_of_the_runner_so_a_note_unless_strict(tmp_path):
    spec = write_spec(tmp_path, architecture="forecaster")
    result = validate(spec)
    assert result.exit_code == 0
    assert result.stderr == (f"note: on this machine `hpt run` would stop here: unknown architecture "
                             f"'forecaster' ({KNOWN})\n")
    strict = validate("--strict", spec)
    assert strict.exit_code == 2
    assert strict.output == (f"error: unknown architecture 'forecaster' ({KNOWN}) (hpt validate --strict: "
                             f"`hpt run` would stop here)\n")


@pytest.mark.parametrize("data, message", [
    ({"path": "sales.csv", "date_column": "day", "target": "unit"},
     "no column 'unit' in sales.csv (did you mean 'units'?); columns: day, units; set data.target"),
    ({"path": "missing.csv"},
     "no data file 'missing.csv' (looked for {tmp}/missing.csv); check data.path in the spec (a relative "
     "path is read from the folder hpt runs in)"),
    ({"path": "sales.csv", "date_column": "day", "target": "units", "validation": "1M"},
     None),
])
def test_strict_makes_what_hpt_run_would_refuse_an_error(tmp_path, monkeypatch, data, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sales.csv").write_text("day,units\n" + "".join(
        f"2020-{m:02d}-{d:02d},{m * d}\n" for m in range(1, 5) for d in range(1, 29)))
    spec = write_spec(tmp_path, architecture="ridge", data=data, parameters={"lags": 2},
                      **{"date-range": [["2020-01-01", "2020-03-01"]]})
    plain, strict = validate(spec), validate("--strict", spec)
    if message is None:
        assert plain.exit_code == strict.exit_code == 0 and strict.stderr.startswith("note: sales.csv has no row")
        return
    message = message.format(tmp=tmp_path)
    assert plain.exit_code == 0 and plain.stderr == f"note: on this machine `hpt run` would stop here: {message}\n"
    assert strict.exit_code == 2
    assert strict.output == f"error: {message} (hpt validate --strict: `hpt run` would stop here)\n"


def test_built_in_parameter_values_are_checked_with_their_readers(tmp_path):
    # review F11 (readme): "lags": [7, "14"] was ok in validate and failed every trial with it
    path = tmp_path / "s.json"
    path.write_text(json.dumps({
        "architecture": ["ridge", "mlp"], "date-range": [["2015-01-01", "2015-07-01"]],
        "parameters": {"ridge": {"alpha": "1.0", "lags": [7, "14"]},
                       "mlp": {"lr": {"distribution": "uniform", "low": -0.1, "high": 0.1},
                               "batch_size": {"distribution": "uniform", "low": 16, "high": 64},
                               "decay": {"distribution": "uniform", "low": 0.5, "high": 1.0},
                               "hidden": [[32], [0]],
                               "patience": {"distribution": "int", "low": -1, "high": 5}}},
        "search": {"strategy": "random", "trials": 5, "initial": [{"architecture": "mlp", "lr": 0}]}}, indent=1))
    result = validate(path)
    assert result.exit_code == 2
    lines = [line.split(":", 3)[3] for line in result.output.splitlines()]  # after "error: <path>:<line>:"
    assert lines == [
        " parameters.ridge.alpha: ridge: alpha >= 0 must hold, got alpha='1.0'",
        " parameters.ridge.lags[1]: ridge: lags: expected a count or a list of positive integers, got '14'",
        " parameters.mlp.lr.low: mlp: lr > 0 must hold, got lr=-0.1",
        " parameters.mlp.batch_size: mlp: batch_size >= 1 must hold (an integer), got batch_size=30.4 "
        "(a uniform draws such values; \"int\" draws integers)",
        " parameters.mlp.hidden[1]: mlp: hidden: expected a list of layer widths such as [64, 32], got [0]",
        " parameters.mlp.patience.low: mlp: patience >= 0 must hold (an integer), got patience=-1",
        " search.initial[0].lr: mlp: lr > 0 must hold, got lr=0",
    ]


def test_bounds_a_distribution_never_draws_are_not_checked(tmp_path):
    # review of the day's diff, 2: a continuous draw never hits low; quniform and int with a step
    # draw only their multiples and steps
    ok = write_spec(tmp_path, architecture="mlp", parameters={
        "decay": {"distribution": "uniform", "low": 0, "high": 1},
        "lr": {"distribution": "uniform", "low": 0, "high": 0.01},
        "batch_size": {"distribution": "quniform", "low": 0.5, "high": 64.5, "q": 1},
        "patience": {"distribution": "int", "low": 1, "high": 10, "step": 4}})
    assert validate(ok).exit_code == 0, validate(ok).output
    refused = validate(write_spec(tmp_path, architecture="mlp", parameters={
        "batch_size": {"distribution": "quniform", "low": -1.5, "high": 64.5, "q": 1}}))
    assert refused.exit_code == 2
    assert "parameters.batch_size.low: mlp: batch_size >= 1 must hold (an integer), got batch_size=-1 (a multiple " \
           "of q=1 it draws)" in refused.output, refused.output
    crossing = validate(write_spec(tmp_path, architecture="mlp", parameters={
        "decay": {"distribution": "uniform", "low": 0.5, "high": 1.5}}))  # half its draws are past 1
    assert crossing.exit_code == 2
    assert crossing.output.endswith("parameters.decay.high: mlp: 0 < decay <= 1 must hold, got decay=1.5\n"), \
        crossing.output


def test_epochs_is_not_checked_where_trial_epochs_overrides_it(tmp_path):
    spec = write_spec(tmp_path, architecture="mlp", parameters={"epochs": [0, 10]}, trial={"epochs": 5})
    assert validate(spec).exit_code == 0
    refused = validate(write_spec(tmp_path, architecture="mlp", parameters={"epochs": [0, 10]}))
    assert refused.exit_code == 2 and "parameters.epochs[0]: mlp: epochs >= 1 must hold (an integer), got " \
                                      "epochs=0" in refused.output


def test_a_command_spec_outside_the_bundled_data_gets_a_note_not_a_refusal(tmp_path):
    # review F12 (readme): the README's command example ran on dates without data, exit 0, no note
    spec = parse_spec(json.dumps({"command": ["python", "train.py", "--lr", "{lr}"], "parameters": {"lr": [1]}}),
                      today=date(2030, 1, 15))
    assert check_data(spec) == [
        "this spec has no \"date-range\", so it trains on the last year before --today's month "
        "(2029-01-01..2030-01-01); the data covers 2001-01-22..2016-08-28: give a \"date-range\" inside the "
        "data, or --today YYYY-MM-DD (at the latest --today 2016-08-31) (a command need not read hpt's data, "
        "so it runs anyway)"]
    inside = write_spec(tmp_path, command=["python", "train.py", "--lr", "{lr}"], parameters={"lr": [1]})
    result = validate(inside)
    assert result.exit_code == 0 and result.stderr == ""
