"""What the preflight refuses or notes before any trial starts, beyond the declared names
(tests/test_declared_names.py): a trial function with the wrong signature, a command whose program
is not there, the default date range outside the data, ranges that start before the data, and
the order and place of a spec's problems in `hpt validate` and `hpt run`."""

from __future__ import annotations

import functools
import json
import stat
from datetime import date

import pytest
from click.testing import CliRunner

from hpt_cli.architectures import ArchitectureError
from hpt_cli.architectures.check import command_problem, signature_problem
from hpt_cli.cli import cli
from hpt_cli.dates import DateRange
from hpt_cli.errors import DataError, HptError, Problem, SpecError
from hpt_cli.runner import check_data, preflight, resolve_architectures
from hpt_cli.runner.run_id import run_id
from hpt_cli.spec import parse_spec
from hpt_cli.spec.modes import for_running

TODAY = date(2026, 11, 22)
COVERS = "the data covers 2001-01-22..2016-08-28"


pytestmark = pytest.mark.usefixtures("fresh_registry")  # tests/conftest.py


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


# -- 1. a trial function must take (params, ctx) --------------------------------------------------
class _Model:
    def train(self, params, ctx):
        return {}


def _defaults(params, ctx, extra=1):
    return {}


def _star(*args):
    return {}


def _one(p):
    return {}


def _three(a, b, c):
    return {}


def _keyword(params, ctx, *, extra):
    return {}


def _none():
    return {}


def _annotated(p: dict) -> dict:
    return {}


@pytest.mark.parametrize("fn", [_Model().train, functools.partial(_defaults, extra=2), _star, _defaults,
                                print, dict.get, lambda params, ctx: {}])
def test_a_callable_signature_or_one_that_cannot_be_read_passes(fn):
    assert signature_problem("m:train", fn) is None


@pytest.mark.parametrize("fn, line", [
    (_one, "architecture 'm:train': _one(p) takes 1 argument; a trial function is _one(params, ctx)"),
    (_annotated, "architecture 'm:train': _annotated(p) takes 1 argument; a trial function is _annotated(params, ctx)"),
    (_none, "architecture 'm:train': _none() takes no arguments; a trial function is _none(params, ctx)"),
    (_three, "architecture 'm:train': _three(a, b, c) needs 3 arguments; a trial function is _three(params, ctx)"),
    (_keyword, "architecture 'm:train': _keyword(params, ctx, *, extra) needs the keyword argument extra; "
               "a trial function is _keyword(params, ctx)"),
    (functools.partial(_three, 1, 2),
     "architecture 'm:train': _three(c) takes 1 argument; a trial function is _three(params, ctx)"),
])
def test_a_wrong_signature_is_named(fn, line):
    assert signature_problem("m:train", fn) == line


def test_run_refuses_a_trial_function_with_the_wrong_signature(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "wrongsig_model.py").write_text("def train(p):\n    return {'val_mse': 1.0}\n")
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"architecture": "wrongsig_model:train", "parameters": {"x": [1, 2]},
                                "date-range": [["2014-01-01", "2014-04-01"]]}))
    line = ("architecture 'wrongsig_model:train': train(p) takes 1 argument; a trial function is "
            "train(params, ctx)")
    result = invoke("run", spec, "--output", tmp_path / "runs")
    assert result.exit_code == 2 and result.stderr == f"error: {line}\n"
    assert not (tmp_path / "runs").exists()
    with pytest.raises(ArchitectureError, match="takes 1 argument"):
        resolve_architectures(parse_spec(spec.read_text(), today=TODAY))


# -- 2. a command's program must be there ----------------------------------------------------------
def command_spec(program: str, **body):
    return parse_spec(json.dumps({"command": [program, "t.py", "{x}"], "parameters": {"x": [1]}, **body}),
                      today=TODAY)


def test_a_program_not_on_path_is_refused_for_the_local_executor(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    line = "command[0]: 'pythn' is not on PATH; check the spelling, install it, or give its full path"
    assert command_problem(("pythn", "t.py")) == line
    with pytest.raises(HptError) as caught:
        resolve_architectures(command_spec("pythn"))
    assert str(caught.value) == line and caught.value.exit_code == 2
    # on Dask the workers are other machines: a note, not a refusal
    assert resolve_architectures(command_spec("pythn"), executor="dask") == [
        f"{line} (on this machine; the Dask workers run it)"]
    assert resolve_architectures(command_spec("pythn", executor={"type": "dask"})) == [
        f"{line} (on this machine; the Dask workers run it)"]


def test_a_program_given_as_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "train.sh"
    assert command_problem(("./train.sh",)) == (
        f"command[0]: './train.sh' does not exist (looked for {script}; a relative path is read from the "
        "folder hpt runs in)")
    assert command_problem((str(script),)) == f"command[0]: {str(script)!r} does not exist"
    script.write_text("#!/bin/sh\necho '{\"val_mse\": 1}'\n")
    assert command_problem(("./train.sh",)) == (
        "command[0]: './train.sh' is not executable: chmod +x ./train.sh, or start it with its interpreter "
        "(\"python\", \"./train.sh\")")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert command_problem(("./train.sh",)) is None
    assert command_problem((str(tmp_path),)) == f"command[0]: {str(tmp_path)!r} is a folder, not a program"


def test_a_program_on_path_or_from_a_placeholder_passes(monkeypatch, tmp_path):
    assert command_problem(("sh", "-c", "true")) is None
    assert command_problem(("{program}", "t.py")) is None  # decided per trial: not checked
    assert resolve_architectures(command_spec("sh")) == []


def test_validate_notes_and_run_refuses_a_missing_program(tmp_path):
    spec = tmp_path / "c.json"
    spec.write_text(json.dumps({"command": ["pythn-not-a-program", "t.py", "{x}"], "parameters": {"x": [1]}}))
    line = ("command[0]: 'pythn-not-a-program' is not on PATH; check the spelling, install it, or give its "
            "full path")
    validate = invoke("validate", spec)
    assert validate.exit_code == 0 and validate.stdout.startswith("ok: ")
    assert validate.stderr == f"note: on this machine `hpt run` would stop here: {line}\n"
    run = invoke("run", spec, "--output", tmp_path / "runs")
    assert run.exit_code == 2 and run.stderr == f"error: {line}\n"
    assert not (tmp_path / "runs").exists()


# -- 3. no "date-range": say so, not "rolling windows" ---------------------------------------------
def test_the_default_date_range_is_marked_but_changes_nothing_else():
    default = parse_spec('{"architecture": "ridge"}', today=TODAY)
    explicit = parse_spec('{"architecture": "ridge", "date-range": {"rolling": {"count": 1, "length": "1Y"}}}',
                          today=TODAY)
    assert default.default_dates and not explicit.default_dates
    assert default == explicit and default.to_json() == explicit.to_json()
    assert run_id(default) == run_id(explicit)
    assert default.date_ranges == (DateRange(date(2025, 11, 1), date(2026, 11, 1)),)
    assert parse_spec(json.dumps(default.to_json()), today=TODAY).to_json() == default.to_json()
    assert for_running(default, quick=True).default_dates  # quick mode keeps the mark


def test_no_date_range_outside_the_data_says_so():
    spec = parse_spec('{"architecture": "ridge"}', today=TODAY)
    month = "this month" if TODAY.replace(day=1) == date.today().replace(day=1) else "--today's month"
    with pytest.raises(DataError) as caught:
        check_data(spec)
    assert str(caught.value) == (
        f"this spec has no \"date-range\", so it trains on the last year before {month} "
        f"(2025-11-01..2026-11-01); {COVERS}: give a \"date-range\" inside the data, or --today YYYY-MM-DD "
        "(at the latest --today 2016-08-31)")
    with pytest.raises(DataError, match=r"before .* \(quick mode: 2026-10-01..2026-11-01\); the data covers"):
        check_data(for_running(spec, quick=True))


def test_no_date_range_with_today_and_no_validation_rows(tmp_path):
    spec = tmp_path / "d.json"
    spec.write_text('{"architecture": "ridge"}')
    result = invoke("run", spec, "--today", "2016-09-15", "--output", tmp_path / "runs")
    assert result.exit_code == 2 and result.stderr == (
        "error: this spec has no \"date-range\", so it trains on the last year before --today's month "
        "(2015-09-01..2016-09-01) and validates on 2016-09-01..2016-10-01, which has no rows; "
        f"{COVERS}: give a \"date-range\" inside the data, or --today YYYY-MM-DD "
        "(at the latest --today 2016-08-31)\n")
    assert "rolling" not in result.stderr
    assert check_data(parse_spec('{"architecture": "ridge"}', today=date(2016, 8, 28))) == []


def test_a_written_rolling_range_keeps_its_rolling_hint():
    spec = parse_spec('{"architecture": "ridge", "date-range": {"rolling": {"count": 1, "length": "1Y"}}}',
                      today=TODAY)
    with pytest.raises(DataError, match="rolling windows end at the start of the run day's month"):
        check_data(spec)


# -- 4. a range that starts before the data: a note ------------------------------------------------
EARLY = {"architecture": "ridge", "parameters": {"alpha": [1]},
         "date-range": [["2000-06-01", "2001-06-01"]]}
EARLY_NOTE = ("date range 2000-06-01..2001-06-01 starts before the data, which begins on 2001-01-22: its "
              "trials train on 2001-01-22..2001-06-01 only")


def test_a_range_that_starts_before_the_data_is_a_note():
    assert preflight(parse_spec(json.dumps(EARLY), today=TODAY)) == [EARLY_NOTE]
    both = {**EARLY, "date-range": [["2000-06-01", "2001-06-01"], ["2000-09-01", "2001-09-01"],
                                    ["2001-06-01", "2001-09-01"]]}
    assert preflight(parse_spec(json.dumps(both), today=TODAY)) == [
        "2 date ranges start before the data, which begins on 2001-01-22 (the first: 2000-06-01..2001-06-01): "
        "their trials train only on the part from 2001-01-22"]
    inside = {**EARLY, "date-range": [["2001-01-22", "2001-06-01"]]}
    assert preflight(parse_spec(json.dumps(inside), today=TODAY)) == []


def test_validate_and_run_print_the_note_once(tmp_path):
    spec = tmp_path / "early.json"
    spec.write_text(json.dumps(EARLY))
    validate = invoke("validate", spec)
    assert validate.exit_code == 0 and validate.stderr == f"note: {EARLY_NOTE}\n"
    run = invoke("run", spec, "--output", tmp_path / "runs", "--workers", "1")
    assert run.exit_code == 0, run.output
    assert run.stderr.count(f"note: {EARLY_NOTE}\n") == 1
    lines = run.stderr.splitlines()
    assert lines.index(f"note: {EARLY_NOTE}") < next(i for i, t in enumerate(lines) if t.startswith("done"))


# -- 5, 6. problems in line order; `hpt run` says where --------------------------------------------
def test_spec_error_lists_problems_in_line_order():
    error = SpecError([Problem("b", "second", 6), Problem("a", "first", 5), Problem("c", "third", 6),
                       Problem("", "no line", None)], "s.json")
    assert str(error).splitlines() == ["s.json: $: no line", "s.json:5: a: first", "s.json:6: b: second",
                                       "s.json:6: c: third"]


def test_validate_lists_problems_in_line_order(tmp_path):
    spec = tmp_path / "bad2.json"
    spec.write_text('{\n  "objective": {"metric": 5},\n  "search": {"strategy": "nope"},\n  "architecture": 5\n}\n')
    result = invoke("validate", spec)
    assert result.exit_code == 2
    assert [line.split(": ")[1] for line in result.stderr.splitlines()] == [
        f"{spec}:2", f"{spec}:3", f"{spec}:4"]


def test_run_names_the_file_and_line_of_a_preflight_problem(tmp_path):
    spec = tmp_path / "t.json"
    spec.write_text('{\n  "architecture": "ridge",\n  "date-range": [["2014-01-01", "2014-04-01"]],\n'
                    '  "parameters": {"alpah": [1]}\n}\n')
    line = "parameters.alpah: ridge has no parameter 'alpah'; did you mean 'alpha'? (its parameters: alpha, lags)"
    assert invoke("validate", spec).stderr == f"error: {spec}:4: {line}\n"
    run = invoke("run", spec, "--output", tmp_path / "runs")
    assert run.exit_code == 2 and run.stderr == f"error: {spec}:4: {line}\n"


def test_trial_epochs_with_a_tuned_epochs_parameter_is_a_note():
    spec = parse_spec(json.dumps({"architecture": ["mlp", "ridge"], "date-range": [["2015-01-01", "2015-07-01"]],
                                  "parameters": {"mlp": {"epochs": [50, 100]}, "ridge": {"alpha": [1.0, 2.0]}},
                                  "trial": {"epochs": 30}}), today=TODAY)
    assert resolve_architectures(spec) == [
        "trial.epochs (30) is what mlp trains for: its tuned parameter epochs changes nothing, so configurations "
        "that differ only in it run alike; drop trial.epochs to tune epochs"]
    untuned = parse_spec(json.dumps({"architecture": "mlp", "parameters": {"epochs": 50}, "trial": {"epochs": 30}}),
                         today=TODAY)
    assert resolve_architectures(untuned) == []


def test_run_refuses_several_rows_per_day_for_a_built_in_before_any_trial(tmp_path):
    import pandas as pd

    days = pd.date_range("2021-01-01", periods=200, freq="D").strftime("%Y-%m-%d")
    frame = pd.DataFrame({"day": list(days) * 2, "units": range(400)})  # two stores per day
    frame.to_csv(tmp_path / "stores.csv", index=False)
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"architecture": "ridge", "date-range": [["2021-01-01", "2021-05-01"]],
                                "data": {"path": str(tmp_path / "stores.csv"), "date_column": "day",
                                         "target": "units"}}))
    result = invoke("run", spec, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {tmp_path / 'stores.csv'} has 2 rows on 2021-01-01 in column 'day' "
                                    "(and ")
    assert "more dates with several rows); ridge takes one row per day as one time step" in result.output
    assert not (tmp_path / "out").exists()
