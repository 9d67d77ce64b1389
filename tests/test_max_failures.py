"""`--max-failures`: a count, or a fraction of the trials, said explicitly (review 2, finding 3:
`100%` and `1.0` tolerated one failure instead of every one)."""

from __future__ import annotations

import math
import subprocess
from fractions import Fraction

import pytest
from click.testing import CliRunner

from hpt_cli.cli import cli
from hpt_cli.runner import MaxFailures, RunOptions, failure_budget
from tests.helpers import HPT, subprocess_env, write_spec


@pytest.mark.parametrize("text, kind, allowed_of_3, allowed_of_100", [
    ("0", MaxFailures(count=0), 0, 0),
    ("1", MaxFailures(count=1), 1, 1),  # one trial, not every trial
    ("3", MaxFailures(count=3), 3, 3),
    ("100%", MaxFailures(count=None, fraction=Fraction(1)), math.inf, math.inf),
    ("1.0", MaxFailures(count=None, fraction=Fraction(1)), math.inf, math.inf),
    ("1.", MaxFailures(count=None, fraction=Fraction(1)), math.inf, math.inf),
    ("34%", MaxFailures(count=None, fraction=Fraction(34, 100)), 1, 34),
    ("33%", MaxFailures(count=None, fraction=Fraction(33, 100)), 0, 33),
    ("0.34", MaxFailures(count=None, fraction=Fraction(34, 100)), 1, 34),
    ("29%", MaxFailures(count=None, fraction=Fraction(29, 100)), 0, 29),  # exact: 0.29 * 100 is 28.999...
    ("12.5 %", MaxFailures(count=None, fraction=Fraction(1, 8)), 0, 12),
    (".5", MaxFailures(count=None, fraction=Fraction(1, 2)), 1, 50),
    ("0%", MaxFailures(count=None, fraction=Fraction(0)), 0, 0),
    ("0.0", MaxFailures(count=None, fraction=Fraction(0)), 0, 0),
])
def test_parse(text, kind, allowed_of_3, allowed_of_100):
    parsed = MaxFailures.parse(text)
    assert parsed == kind
    assert parsed.allowed(3) == allowed_of_3 and parsed.allowed(100) == allowed_of_100
    assert failure_budget(text, 3) == allowed_of_3


def test_every_trial_also_where_the_total_is_not_known():
    assert MaxFailures.parse("100%").allowed(0) == math.inf


@pytest.mark.parametrize("text, message", [
    ("lots", "expected a count (3) or a fraction (0.1 or 10%; 1.0 or 100% lets every trial fail), got 'lots'"),
    ("-1", "expected a count (3) or a fraction (0.1 or 10%; 1.0 or 100% lets every trial fail), got '-1'"),
    ("1/3", "expected a count (3) or a fraction (0.1 or 10%; 1.0 or 100% lets every trial fail), got '1/3'"),
    ("nan", "expected a count (3) or a fraction (0.1 or 10%; 1.0 or 100% lets every trial fail), got 'nan'"),
    ("101%", "a percentage is at most 100% (every trial may fail), got '101%'"),
    ("1.5", "a fraction is at most 1.0 (every trial may fail) and a count is a whole number (3), got '1.5'"),
    ("2.0", "a fraction is at most 1.0 (every trial may fail) and a count is a whole number (3), got '2.0'"),
])
def test_parse_errors(text, message):
    with pytest.raises(ValueError) as info:
        MaxFailures.parse(text)
    assert str(info.value) == message


def test_library_values():
    """RunOptions(max_failures=...): an int is a count, a float reads as its text does."""
    assert MaxFailures.of(2) == MaxFailures(count=2)
    assert MaxFailures.of(1.0) == MaxFailures.of("100%")
    assert MaxFailures.of(0.1) == MaxFailures.of("10%")
    assert MaxFailures.of(MaxFailures(count=4)) == MaxFailures(count=4)
    assert RunOptions().max_failures == 0 and MaxFailures.of(RunOptions().max_failures) == MaxFailures(count=0)
    for bad in (True, -1, 2.5):
        with pytest.raises(ValueError):
            MaxFailures.of(bad)
    assert [str(MaxFailures.parse(t)) for t in ("3", "10%", "0.1", "1.0", "12.5%")] == ["3", "10%", "10%", "100%",
                                                                                       "12.5%"]


def test_usage_errors_and_help():
    runner = CliRunner()
    result = runner.invoke(cli, ["run", "x.json", "--max-failures", "150%"])
    assert result.exit_code == 2
    assert "a percentage is at most 100% (every trial may fail), got '150%'" in result.output
    help_text = " ".join(runner.invoke(cli, ["run", "--help"]).output.split())
    assert ("--max-failures N|FRACTION Failed (or timed-out) trials that still exit 0: a count (3; 1 is one trial), "
            "or a fraction of the trials: 10% or 0.1, and 100% or 1.0 for every trial. [default: 0]") in help_text


@pytest.mark.slow
def test_exit_codes_of_hpt_run(tmp_path):
    def code(spec, budget, name):
        return subprocess.run([HPT, "run", str(spec), "-o", str(tmp_path / name), "-j", "2", "-q",
                               "--max-failures", budget], env=subprocess_env(), capture_output=True, text=True,
                              timeout=120).returncode

    (tmp_path / "all").mkdir()
    every = write_spec(tmp_path / "all", architecture="tests.archs:fault",
                       parameters={"kind": "raise", "value": [1, 2, 3]})
    assert {b: code(every, b, f"all-{i}") for i, b in enumerate(["100%", "1.0", "1", "0"])} == {
        "100%": 0, "1.0": 0, "1": 1, "0": 1}
    (tmp_path / "one").mkdir()
    one = write_spec(tmp_path / "one", architecture="tests.archs:fault",  # 1 of 3 trials fails
                     parameters={"kind": ["ok", "sleep", "raise"], "seconds": 0.0})
    assert {b: code(one, b, f"one-{i}") for i, b in enumerate(["34%", "33%", "1"])} == {"34%": 0, "33%": 1, "1": 0}
