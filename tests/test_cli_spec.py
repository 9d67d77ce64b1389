"""`hpt validate / expand / schema / --version`: exact output and exit codes."""

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from hpt_cli import __version__
from hpt_cli.cli import cli
from hpt_cli.spec import parse as spec_parse

ROOT = Path(__file__).resolve().parent.parent
SEED = str(ROOT / "experiments/seed-lstm-attention.json")


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.output == f"hpt {__version__}\n"


def test_validate_seed_spec():
    result = run("validate", SEED)
    assert result.exit_code == 0
    assert "the bundled demo data ends in 2016" in result.stderr  # a note: `hpt run` needs other data
    assert result.stdout == (
        f"ok: {SEED}: 27 trials (lstm-attention: 27 configurations x 1 date range x 1 repeat)\n"
    )


def test_expand_seed_spec_table():
    result = run("expand", SEED, "--limit", "2")
    assert result.exit_code == 0
    assert result.output == (
        f"spec     {SEED} (seed-lstm-attention)\n"
        "search   grid, shuffled order, seed 0\n"
        "trials   27 = 27 configurations x 1 date range x 1 repeat\n"
        "\n"
        "architecture    date range              trials\n"
        "lstm-attention  2017-01-01..2017-04-01  27\n"
        "\n"
        "first 2 of 27 trials:\n"
        "#  trial         architecture    date range              num_of_attentions  attention_hidden_layer_size  attention_regularization\n"
        "0  7659f0daa3db  lstm-attention  2017-01-01..2017-04-01  2                  256                          0.01\n"
        "1  335630e1964b  lstm-attention  2017-01-01..2017-04-01  1                  32                           0.01\n"
    )


def test_expand_json_and_csv():
    data = json.loads(run("expand", SEED, "--format", "json", "--limit", "1").output)
    assert data["total"] == 27 and data["date_ranges"] == [["2017-01-01", "2017-04-01"]]
    assert data["counts"] == [{"architecture": "lstm-attention", "date_range": "2017-01-01..2017-04-01", "trials": 27}]
    assert data["trials"][0]["id"] == "7659f0daa3db"
    csv_out = run("expand", SEED, "--format", "csv", "--limit", "1").output
    assert csv_out == (
        "index,trial_id,architecture,start,end,repeat,seed,num_of_attentions,attention_hidden_layer_size,"
        "attention_regularization\n0,7659f0daa3db,lstm-attention,2017-01-01,2017-04-01,0,1097046224,2,256,0.01\n"
    )


def test_expand_rolling_with_today():
    result = run("expand", str(ROOT / "experiments/rolling.json"), "--today", "2016-08-15", "--limit", "0")
    assert result.exit_code == 0
    # "end": "today-1M": the newest window validates on the last whole month before the run day's
    assert "trials   30 = 10 configurations x 3 date ranges (rolling: 3 x 3M, step 1M, ending 2016-07-01)" in result.output
    assert "ridge         2016-04-01..2016-07-01  10\n" in result.output


@pytest.mark.parametrize(
    "day, message",
    [
        ("2015-02-29", "2015-02-29 is not a day of the calendar (February 2015 has 28 days)"),
        ("2016-04-31", "2016-04-31 is not a day of the calendar (April 2016 has 30 days)"),
        ("2016-13-01", "2016-13-01 is not a day of the calendar (years from 0001, months 01 to 12)"),
        ("2016-8-5", "expected an ISO date YYYY-MM-DD such as 2016-08-15, got '2016-8-5'"),
        ("2016/08/05", "expected an ISO date YYYY-MM-DD such as 2016-08-15, got '2016/08/05'"),
    ],
)
def test_today_must_be_a_strict_iso_day(day, message):
    # review F13: 2015-02-29 was said not to match '%Y-%m-%d', while 2016-8-5 was accepted
    rolling = str(ROOT / "experiments/rolling.json")
    for command in ("expand", "validate"):
        result = CliRunner().invoke(cli, [command, rolling, "--today", day], prog_name="hpt")
        assert result.exit_code == 2
        assert result.output == f"error: Invalid value for '--today': {message} (see hpt {command} --help)\n"


def test_today_metavar_in_help():
    for command in (["expand"], ["validate"], ["run"], ["calibrate"]):
        help_text = run(*command, "--help").output
        assert "--today YYYY-MM-DD" in help_text and "%Y" not in help_text


def test_today_sets_the_run_day_for_run_too(tmp_path):
    result = CliRunner().invoke(cli, ["run", str(ROOT / "experiments/rolling.json"), "--today", "2016-02-30",
                                      "--output", str(tmp_path)])
    assert result.exit_code == 2 and "2016-02-30 is not a day of the calendar (February 2016 has 29 days)" in result.output
    assert not any(tmp_path.iterdir())


def test_rolling_spec_outside_the_data_suggests_today():
    # review F13: a rolling spec was pointed at the seed spec's dates; its fix is --today
    result = run("validate", str(ROOT / "experiments/rolling.json"), "--today", "2026-11-22")
    assert result.exit_code == 0
    assert ("rolling windows end 1M before the start of the run day's month: give --today YYYY-MM-DD so that they "
            "fall inside the data (at the latest --today 2016-09-30)") in result.stderr
    assert "seed-lstm-attention-bundled" not in result.stderr


def test_bad_spec_exit_2_one_line_no_traceback(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"architecture": "mlp",\n "paramters": {"lr": [1]}}')
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 2
    assert result.output == f"error: {bad}:2: paramters: unknown key 'paramters'; did you mean 'parameters'?\n"


def test_missing_spec_file(tmp_path):
    result = CliRunner().invoke(cli, ["expand", str(tmp_path / "x.json")])
    assert result.exit_code == 2
    assert result.output == f"error: {tmp_path / 'x.json'}: no such file; give the path of a JSON spec\n"


def test_bad_option_is_usage_error():
    result = CliRunner().invoke(cli, ["expand", SEED, "--limit", "-1"])
    assert result.exit_code == 2 and "Invalid value for '--limit'" in result.output


def test_schema_command_prints_the_shipped_schema():
    result = run("schema")
    assert json.loads(result.output) == spec_parse.schema()


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.json")), ids=lambda p: p.name)
def test_examples_are_valid_against_the_schema_and_the_parser(path):
    document = json.loads(path.read_text())
    jsonschema.validate(document, spec_parse.schema())
    assert run("validate", str(path), "--today", "2016-08-15").exit_code == 0


def test_resolved_specs_are_valid_against_the_schema():
    from hpt_cli.spec import load_spec

    for path in (ROOT / "experiments").glob("*.json"):
        jsonschema.validate(load_spec(path).to_json(), spec_parse.schema())


@pytest.mark.parametrize(
    "document",
    [
        {"architecture": "mlp", "paramters": {}},
        {"architecture": "mlp", "parameters": {"lr": []}},
        {"architecture": "mlp", "parameters": {"lr": {"distribution": "gaussian"}}},
        {"architecture": "mlp", "date-range": {"rolling": {"count": 0, "length": "3M"}}},
        {"architecture": "mlp", "search": {"trials": "ten"}},
        {"architecture": "mlp", "search": {"strategy": "random", "trials": 10**20}},
        {"architecture": "mlp", "search": {"repeats": 10**5}},
        {"parameters": {}},
        {"architecture": "ridge", "command": ["python", "train.py"]},
    ],
)
def test_schema_rejects_what_the_parser_rejects(document):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, spec_parse.schema())
    assert CliRunner().invoke(cli, ["validate", "-"], input=json.dumps(document)).exit_code == 2


def test_every_command_has_help_with_an_example_and_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name, command in cli.commands.items():
        result = run(name, "--help")
        assert result.exit_code == 0
        assert "Example" in result.output, f"hpt {name} --help has no example"
        assert f"hpt {name}" in readme, f"hpt {name} is not documented in README.md"


def _peak_rss_kib(args):
    code = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_billion_point_expand_does_not_grow_memory(tmp_path):
    spec = tmp_path / "huge.json"
    spec.write_text(json.dumps({
        "architecture": "mlp",
        "date-range": [["2016-01-01", "2016-02-01"]],
        "parameters": {f"p{i}": list(range(10)) for i in range(9)},
    }))
    hpt = str(Path(sys.executable).with_name("hpt"))
    baseline = _peak_rss_kib([hpt, "--help"])
    huge = _peak_rss_kib([hpt, "expand", str(spec), "--limit", "5"])
    assert huge < baseline + 20 * 1024, (baseline, huge)  # within 20 MiB of `hpt --help`
    out = subprocess.run([hpt, "expand", str(spec), "--limit", "5"], capture_output=True, text=True, check=True)
    assert re.search(r"^trials   1000000000 = 1000000000 configurations", out.stdout, re.M)


@pytest.mark.parametrize("args, line", [
    (["run", "--outptu", "x"], "error: No such option '--outptu'. Did you mean '--output'? (see hpt run --help)"),
    (["runn"], "error: No such command 'runn'. Did you mean 'run'? (see hpt --help)"),
    (["--bogus"], "error: No such option '--bogus'. (see hpt --help)"),
    (["expand", "-", "--limit", "-1"],
     "error: Invalid value for '--limit' / '-n': -1 is not in the range x>=0. (see hpt expand --help)"),
])
def test_a_usage_error_is_one_line_exit_2(args, line):
    result = CliRunner().invoke(cli, args, prog_name="hpt")
    assert (result.exit_code, result.output) == (2, line + "\n")


def test_hpt_alone_shows_the_help():
    result = CliRunner().invoke(cli, [], prog_name="hpt")
    assert result.output.startswith("Usage: hpt [OPTIONS] COMMAND [ARGS]...")


def test_the_command_line_loads_without_numpy_or_pandas():
    """`hpt --help`, `hpt watch`, `hpt sync` start in a fraction of a second: the command group
    imports neither (a grid or a random draw imports numpy when it needs it)."""
    import subprocess
    import sys

    code = "import sys; from hpt_cli.cli import main; print(sorted(m for m in ('numpy', 'pandas', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_the_monthly_cron_example_validates_its_newest_window_on_a_whole_month(tmp_path, monkeypatch):
    # review F9 (readme): run on the 2nd on a feed that ends the day before, "end": "today" validated
    # the newest window on one day; rolling.json ends a month earlier ("today-1M")
    import pandas as pd

    from hpt_cli.datasets import bundled_path

    monkeypatch.chdir(tmp_path)
    frame = pd.read_csv(bundled_path())
    frame[frame["date"] < "2016-08-02"].to_csv(tmp_path / "feed.csv", index=False)
    spec = json.loads((ROOT / "experiments/rolling.json").read_text())
    (tmp_path / "feed.json").write_text(json.dumps({**spec, "data": "feed.csv"}))
    result = run("validate", "feed.json", "--today", "2016-08-02")
    assert result.exit_code == 0 and result.stderr == ""
    assert "ending 2016-07-01" in result.stdout
    old = {**spec, "data": "feed.csv", "date-range": {"rolling": {**spec["date-range"]["rolling"], "end": "today"}}}
    one_day = CliRunner().invoke(cli, ["validate", "-", "--today", "2016-08-02"], input=json.dumps(old))
    assert "its trials validate on 1 day only" in one_day.stderr
