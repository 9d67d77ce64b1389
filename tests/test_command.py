"""Command-template trials: no shell, facts in the environment, metrics as JSON."""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from hpt_cli.command import NO_METRICS, build_argv, build_env
from hpt_cli.dates import Length
from hpt_cli.errors import SpecError
from hpt_cli.spec import parse_spec
from hpt_cli.spec.model import DataSpec
from hpt_cli.trialrun import TrialPayload, run_trial

HELPER = str(Path(__file__).with_name("command_trial.py"))
EVIL = "; touch pwned #"


def payload(tmp_path: Path, mode: str, *extra: str, params: dict | None = None, **kw) -> TrialPayload:
    fields = dict(
        trial_id="abc123", architecture="command", params=params or {"lr": 0.01, "evil": EVIL},
        date_range=("2014-01-01", "2014-04-01"), seed=7, epochs=5, data=None,
        artifact_dir=str(tmp_path / "trials" / "abc123"),
        command=(sys.executable, HELPER, mode, *extra),
    )
    fields.update(kw)
    return TrialPayload(**fields)


def seen(p: TrialPayload) -> dict:
    return json.loads(Path(p.artifact_dir, "seen.json").read_text())


def test_metrics_from_the_last_json_line_of_stdout(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    p = payload(tmp_path, "stdout")
    assert run_trial(p) == {"val_mse": 1.5, "accuracy": 0.75}
    out = capsys.readouterr()
    assert "epoch 1 loss 0.5" in out.out  # the child's stdout reaches ours (the trial log)
    assert "done" in out.err


def test_metrics_file_wins_over_stdout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_trial(payload(tmp_path, "file")) == {"val_mse": 2.5}


def test_a_stale_metrics_file_from_an_earlier_attempt_is_not_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = payload(tmp_path, "none")
    Path(p.artifact_dir).mkdir(parents=True)
    Path(p.artifact_dir, "metrics.json").write_text('{"val_mse": 1}')
    with pytest.raises(RuntimeError) as err:
        run_trial(p)
    assert str(err.value) == NO_METRICS


def test_a_parameter_value_is_one_exact_argument_and_never_reaches_a_shell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = payload(tmp_path, "stdout", "--lr={lr}", "{evil}", "--out={artifact_dir}/m.npz", "{start}..{end}",
                "seed={seed}", "{epochs}", "{trial_id}")
    run_trial(p)
    got = seen(p)
    assert got["argv"] == ["--lr=0.01", EVIL, f"--out={Path(p.artifact_dir).resolve()}/m.npz",
                           "2014-01-01..2014-04-01", "seed=7", "5", "abc123"]
    assert got["cwd"] == str(tmp_path)
    assert not list(tmp_path.rglob("pwned"))
    assert not Path("pwned").exists()


def test_the_environment_carries_the_trial_facts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HPT_EPOCHS", "stale")  # the worker's own environment must not leak through
    params = {"lr": 0.01, "hidden": [64, 32], "evil": EVIL, "batch-size": 32}
    p = payload(tmp_path, "stdout", params=params, epochs=None, data=DataSpec(path="data/x.csv"))
    run_trial(p)
    env = seen(p)["env"]
    art = str(Path(p.artifact_dir).resolve())
    assert env["HPT_TRIAL_ID"] == "abc123"
    assert env["HPT_ARTIFACT_DIR"] == art
    assert env["HPT_DATE_START"] == "2014-01-01" and env["HPT_DATE_END"] == "2014-04-01"
    assert env["HPT_SEED"] == "7"
    assert "HPT_EPOCHS" not in env
    assert env["HPT_DEVICE"] == "cpu"
    assert json.loads(env["HPT_PARAMS"]) == params
    assert env["HPT_METRICS_FILE"] == str(Path(art) / "metrics.json")
    assert env["HPT_DATA_PATH"] == str(tmp_path / "data" / "x.csv")
    assert env["HPT_PARAM_LR"] == "0.01"
    assert json.loads(env["HPT_PARAM_HIDDEN"]) == [64, 32]
    assert env["HPT_PARAM_EVIL"] == EVIL
    assert env["HPT_PARAM_BATCH_SIZE"] == "32"


def test_build_env_sets_epochs_when_given(tmp_path):
    env = build_env(payload(tmp_path, "stdout"), base={"PATH": "/bin"})
    assert env["HPT_EPOCHS"] == "5" and env["PATH"] == "/bin" and "HPT_DATA_PATH" not in env


def test_build_argv_names_a_bad_placeholder(tmp_path):
    with pytest.raises(ValueError, match=r"cannot fill the command item '\{nope\}': KeyError"):
        build_argv(payload(tmp_path, "{nope}"))


def test_a_non_zero_exit_is_an_error_with_the_last_stderr_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError) as err:
        run_trial(payload(tmp_path, "fail"))
    assert str(err.value) == "command exited with code 3: ValueError: lr must be positive"


@pytest.mark.parametrize(("script", "error"), [
    ("echo stopping >&2; kill -TERM $$", "command exited with signal SIGTERM: stopping"),  # a CI abort
    ("kill -HUP $$", "command exited with signal SIGHUP"),
    ("kill -40 $$", "command exited with signal 40"),  # a real-time signal has no name
])
def test_a_command_killed_by_a_signal_is_an_error_that_names_it(tmp_path, monkeypatch, script, error):
    # the runner tells "stopped from outside" (SIGTERM, SIGHUP, SIGINT) by these names
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError) as err:
        run_trial(payload(tmp_path, "stdout", command=("sh", "-c", script)))
    assert str(err.value) == error


def test_no_metrics_is_an_error_that_says_how_to_report_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError) as err:
        run_trial(payload(tmp_path, "none"))
    assert str(err.value) == ("command printed no metrics: print a JSON object as the last line of stdout, "
                              "or write one to $HPT_METRICS_FILE")


def test_a_missing_program_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = payload(tmp_path, "stdout", command=("no-such-program-hpt", "{lr}"))
    with pytest.raises(RuntimeError, match="cannot start the command 'no-such-program-hpt'"):
        run_trial(p)


def test_the_timeout_kills_the_child_and_the_worker_lives_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="ran past its timeout of 0.5s"):
        run_trial(payload(tmp_path, "sleep", timeout=0.5))
    assert time.monotonic() - started < 10


# -- parameters named like hpt's placeholders, {epochs} without trial.epochs (review-data #1) -------

def spec_problems(body: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(json.dumps(body), source="s.json", today=date(2026, 11, 22))
    return str(info.value).splitlines()


def test_a_parameter_named_like_a_placeholder_is_refused():
    # every trial got hpt's {epochs} and {seed} while results.csv labelled them 10/50 and 1/2
    body = {"command": ["python", "t.py", "--epochs", "{epochs}", "--seed", "{seed}"], "trial": {"epochs": 5},
            "parameters": {"epochs": [10, 50], "seed": [1, 2], "lr": [0.1]}}
    assert spec_problems(body) == [
        "s.json:1: parameters.epochs: 'epochs' is hpt's own placeholder {epochs} (trial.epochs): the command's "
        "{epochs} gets that, never this parameter; rename the parameter (e.g. 'my_epochs', used as {my_epochs}); "
        "trial.epochs stays available as {epochs}",
        "s.json:1: parameters.seed: 'seed' is hpt's own placeholder {seed} (the trial's seed): the command's {seed} "
        "gets that, never this parameter; rename the parameter (e.g. 'my_seed', used as {my_seed}); the trial's "
        "seed stays available as {seed}",
    ]


@pytest.mark.parametrize("name", ["trial_id", "artifact_dir", "start", "end", "seed", "epochs", "device",
                                  "data_path"])
def test_every_fact_name_is_refused_as_a_parameter_also_when_the_command_does_not_use_it(name):
    body = {"command": ["python", "t.py", "{x}"], "trial": {"epochs": 5}, "parameters": {"x": [1], name: [1, 2]}}
    (line,) = spec_problems(body)
    assert line.startswith(f"s.json:1: parameters.{name}: '{name}' is hpt's own placeholder {{{name}}} (")


def test_epochs_placeholder_needs_trial_epochs():
    body = {"command": ["python", "t.py", "--epochs={epochs}"], "parameters": {"x": [1]}}
    assert spec_problems(body) == [
        "s.json:1: command[2]: {epochs} is trial.epochs, which this spec does not set (the command would get an "
        "empty argument); set \"trial\": {\"epochs\": N}, or tune a parameter of your own such as {n_epochs}"]
    body["trial"] = {"epochs": 3}
    assert parse_spec(json.dumps(body), today=date(2026, 11, 22)).trial.epochs == 3


# -- argument text is JSON, as HPT_PARAM_* and results.csv (review-data #7) ----------------------------

def test_arguments_are_the_same_text_as_the_param_variables(tmp_path):
    params = {"flag": True, "off": False, "none": None, "hid": ["a b", "c"], "cfg": {"a": "x", "b": [1, 2]},
              "lr": 0.001, "n": 3, "big": 1e-05, "name": "adam"}
    p = payload(tmp_path, *(f"{{{k}}}" for k in params), "{lr:.2f}", "{hid[0]}", "{cfg[b]}", "{name!r}",
                params=params)
    argv = build_argv(p)[2:]
    assert argv == ["true", "false", "null", '["a b", "c"]', '{"a": "x", "b": [1, 2]}', "0.001", "3", "1e-05",
                    "adam", "0.00", "a b", "[1, 2]", "'adam'"]
    env = build_env(p, base={})
    assert argv[:len(params)] == [env["HPT_PARAM_" + k.upper()] for k in params]


# -- what the built-ins read from the spec (review-data #12) -------------------------------------------

def test_the_environment_carries_target_date_column_and_validation_end(tmp_path):
    data = DataSpec(path="x.csv", date_column="day", target="units", validation=Length(2, "W"))
    env = build_env(payload(tmp_path, "stdout", data=data), base={"HPT_TARGET": "stale"})
    assert env["HPT_TARGET"] == "units" and env["HPT_DATE_COLUMN"] == "day"
    assert env["HPT_DATE_END"] == "2014-04-01" and env["HPT_VALIDATION_END"] == "2014-04-15"
    default = build_env(payload(tmp_path, "stdout", data=DataSpec()), base={})
    assert default["HPT_VALIDATION_END"] == "2014-05-01" and default["HPT_TARGET"] == "ridership"
    assert not {"HPT_TARGET", "HPT_DATE_COLUMN", "HPT_VALIDATION_END"} & set(build_env(payload(tmp_path, "stdout"),
                                                                                         base={"HPT_TARGET": "x"}))
