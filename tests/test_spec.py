"""Spec parsing: the seed spec as printed, defaults, and one clear line per problem."""

import json
from datetime import date
from pathlib import Path

import pytest

from hpt_cli.errors import SpecError
from hpt_cli.spec import load_spec, parse_spec
from hpt_cli.spec.domains import Choice, Fixed, Grid, Int, Normal, Quantized, Uniform

ROOT = Path(__file__).resolve().parent.parent
SEED = (
    '{"architecture": "lstm-attention", "date-range": [["2017-01-01", "2017-04-01"]], "parameters": '
    '{"num_of_attentions": [1, 2, 3], "attention_hidden_layer_size": [32, 128, 256], '
    '"attention_regularization": [0.1, 0.01, 0.001]}}'
)
TODAY = date(2026, 11, 22)


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="s.json", today=TODAY)
    return str(info.value).splitlines()


def test_seed_spec_as_printed_with_defaults():
    spec = parse_spec(SEED, today=TODAY)
    assert spec.architectures == ("lstm-attention",)
    assert [str(r) for r in spec.date_ranges] == ["2017-01-01..2017-04-01"]
    assert spec.parameters[0] == ("num_of_attentions", Grid((1, 2, 3)))
    assert spec.search.strategy == "grid" and spec.search.order == "shuffled" and spec.search.seed == 0
    assert spec.objective.metric == "val_mse" and spec.objective.mode == "min"
    assert spec.output == "runs" and spec.trial.retries == 0 and spec.resources.cpus_per_trial == 1
    assert spec.data.path is None and spec.data.name == "chicago_ridership"


def test_date_ranges_alias():
    alias = parse_spec(SEED.replace('"date-range"', '"date_ranges"'), today=TODAY)
    assert alias.date_ranges == parse_spec(SEED, today=TODAY).date_ranges


def test_the_seed_file_in_experiments_is_verbatim():
    assert json.loads((ROOT / "experiments/seed-lstm-attention.json").read_text()) == json.loads(SEED)


def test_every_distribution_parses():
    spec = parse_spec(json.dumps({
        "architecture": "mlp",
        "parameters": {
            "a": {"distribution": "uniform", "low": 0, "high": 1},
            "b": {"distribution": "loguniform", "low": 1e-4, "high": 1e-1},
            "c": {"distribution": "int", "low": 1, "high": 8, "log": True},
            "d": {"distribution": "randint", "low": 0, "high": 10, "step": 2},
            "e": {"distribution": "choice", "values": ["x", "y"], "weights": [3, 1]},
            "f": {"distribution": "normal", "mu": 0, "sigma": 1},
            "g": {"distribution": "lognormal", "mu": 0, "sigma": 0.5},
            "h": {"distribution": "quniform", "low": 0, "high": 10, "q": 2},
            "i": {"distribution": "qloguniform", "low": 1, "high": 100, "q": 1},
            "j": {"value": [1, 2]},
            "k": 64,
        },
    }), today=TODAY)
    domains = dict(spec.parameters)
    assert domains["a"] == Uniform(0, 1) and domains["b"] == Uniform(1e-4, 1e-1, log=True)
    assert domains["c"] == Int(1, 8, log=True) and domains["d"] == Int(0, 10, step=2)
    assert domains["e"] == Choice(("x", "y"), (3, 1))
    assert domains["f"] == Normal(0, 1) and domains["g"] == Normal(0, 0.5, log=True)
    assert domains["h"] == Quantized(0, 10, 2) and domains["i"] == Quantized(1, 100, 1, log=True)
    assert domains["j"] == Fixed([1, 2]) and domains["k"] == Fixed(64)
    assert spec.search.strategy == "random" and spec.search.trials == 20


def test_resolved_spec_parses_back_to_the_same_spec():
    for path in sorted((ROOT / "experiments").glob("*.json")):
        spec = load_spec(path, today=TODAY)
        again = parse_spec(json.dumps(spec.to_json()), today=TODAY, default_name=path.stem)
        assert again.date_ranges == spec.date_ranges
        assert again.to_json() == spec.to_json(), path.name


# The ten kinds of bad spec of the issue's acceptance, each one line naming the JSON path.
BAD = {
    "malformed JSON": (
        '{"architecture": "mlp",\n "parameters": {"lr": [1, 2 3]}}',
        "s.json:2: malformed JSON at line 2 column 29: Expecting ',' delimiter",
    ),
    "trailing comma in a list": (  # review F15 (readme): was "Expecting value"
        '{"architecture": "mlp",\n "parameters": {"lr": [1, 2,]}}',
        "s.json:2: malformed JSON at line 2 column 28: a trailing comma before ]; JSON allows none: remove it",
    ),
    "trailing comma in an object": (  # was "Expecting property name enclosed in double quotes"
        '{"architecture": "ridge",\n}',
        "s.json:1: malformed JSON at line 1 column 25: a trailing comma before }; JSON allows none: remove it",
    ),
    "empty file": ("  \n", 's.json: the spec is empty; write a JSON object such as {"architecture": "ridge"}'),
    "target is the date column": (  # review F3 (readme): was an internal error (exit 70)
        '{"architecture": "ridge",\n "data": {"date_column": "day",\n "target": "day"}}',
        "s.json:3: data.target: 'day' is also data.date_column; set data.target to the numeric column to predict",
    ),
    "date column is the default target": (
        '{"architecture": "ridge",\n "data": {"date_column": "ridership"}}',
        "s.json:2: data.date_column: 'ridership' is also data.target; set data.date_column to the column of dates",
    ),
    "unknown key": (
        '{"architecture": "mlp",\n "paramters": {}}',
        "s.json:2: paramters: unknown key 'paramters'; did you mean 'parameters'?",
    ),
    "wrong type": (
        '{"architecture": "mlp", "search": {"trials": "ten"}}',
        "s.json:1: search.trials: expected an integer >= 1, got a string \"ten\"",
    ),
    "empty grid": (
        '{"architecture": "mlp", "parameters": {"lr": []}}',
        "s.json:1: parameters.lr: empty grid: give at least one value, or a scalar to fix the parameter",
    ),
    "low >= high": (
        '{"architecture": "mlp", "parameters": {\n"lr": {"distribution": "uniform", "low": 1, "high": 1}}}',
        "s.json:2: parameters.lr.low: low < high must hold, got low=1, high=1",
    ),
    "loguniform low <= 0": (
        '{"architecture": "mlp", "parameters": {"lr": {"distribution": "loguniform", "low": 0, "high": 1}}}',
        "s.json:1: parameters.lr.low: a log scale needs low > 0, got low=0",
    ),
    "end before start": (
        '{"architecture": "mlp", "date-range": [["2017-04-01", "2017-01-01"]]}',
        "s.json:1: date-range[0][1]: end 2017-01-01 must be after start 2017-04-01 (ranges are [start, end))",
    ),
    "bad date string": (
        '{"architecture": "mlp", "date-range": [["2017-02-30", "2017-04-01"]]}',
        "s.json:1: date-range[0][0]: '2017-02-30' is not a day of the calendar",
    ),
    "unknown distribution": (
        '{"architecture": "mlp", "parameters": {"lr": {"distribution": "gaussian", "mu": 0, "sigma": 1}}}',
        "s.json:1: parameters.lr.distribution: unknown distribution \"gaussian\"; known: uniform, "
        "loguniform, int, randint, choice, normal, lognormal, quniform, qloguniform",
    ),
    "rolling count 0": (
        '{"architecture": "mlp", "date-range": {"rolling": {"count": 0, "length": "3M"}}}',
        "s.json:1: date-range.rolling.count: expected an integer >= 1, got 0",
    ),
}


# Specs a run could not take (numbers past what floats, indexes or Optuna hold): one line, not a crash.
EXTREME = {
    "a grid past 2^63 trials": (
        {"architecture": "mlp", "parameters": {f"p{i}": list(range(10)) for i in range(20)}},
        "parameters: the grid has 1e+20 configurations (1e+20 trials), more than hpt can count (2^63 - 1): "
        "search it at random with \"search\": {\"strategy\": \"random\", \"trials\": 100}",
    ),
    "trials past 10^9": (
        {"architecture": "mlp", "search": {"strategy": "random", "trials": 10**20}},
        "search.trials: expected an integer from 1 to 1,000,000,000, got 100,000,000,000,000,000,000",
    ),
    "repeats past 10^4": (
        {"architecture": "mlp", "search": {"repeats": 10**5}},
        "search.repeats: expected an integer from 1 to 10,000, got 100,000",
    ),
    "uniform wider than a float": (
        {"architecture": "mlp", "parameters": {"lr": {"distribution": "uniform", "low": -1e308, "high": 1e308}}},
        "parameters.lr.high: high - low must be a finite number, got low=-1e+308, high=1e+308 (high - low "
        "overflows): narrow the interval",
    ),
    "lognormal that overflows": (
        {"architecture": "mlp", "parameters": {"lr": {"distribution": "lognormal", "mu": 0, "sigma": 300}}},
        "parameters.lr.sigma: lognormal draws would overflow (exp(mu + 6 sigma) = exp(1800) is beyond the "
        "largest float): use sigma <= 118.3",
    ),
    "normal past the floats": (
        {"architecture": "mlp", "parameters": {"lr": {"distribution": "normal", "mu": 0, "sigma": 1e308}}},
        "parameters.lr.sigma: mu +- 6 sigma must be finite numbers, got mu=0, sigma=1e+308: use a smaller sigma",
    ),
    "quniform of 10^300 steps": (
        {"architecture": "mlp", "parameters": {"lr": {"distribution": "quniform", "low": 0, "high": 1, "q": 1e-300}}},
        "parameters.lr.q: q=1e-300 makes 1e+300 steps between low and high; at most 10^15: use a larger q, or "
        "uniform for a continuous value",
    ),
    "int past 2^63": (
        {"architecture": "mlp", "parameters": {"n": {"distribution": "int", "low": 1, "high": 10**30}}},
        "parameters.n.high: high must be within +-(2^63 - 1), got 1000000000000000000000000000000",
    ),
}


@pytest.mark.parametrize("kind", list(EXTREME))
def test_numbers_past_what_a_run_can_hold_are_one_line(kind):
    body, expected = EXTREME[kind]
    assert problems(json.dumps(body)) == [f"s.json:1: {expected}"]


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_spec_one_line_with_json_path(kind):
    text, expected = BAD[kind]
    assert problems(text) == [expected]


def test_every_problem_is_reported_at_once():
    text = """{
  "architecture": "mlp",
  "parameters": {
    "lr": {"distribution": "loguniform", "low": -1, "high": 1},
    "hidden": []
  },
  "objective": {"mode": "maximize"},
  "trial": {"timeout": "soon"}
}"""
    assert problems(text) == [
        "s.json:4: parameters.lr.low: a log scale needs low > 0, got low=-1",
        "s.json:5: parameters.hidden: empty grid: give at least one value, or a scalar to fix the parameter",
        "s.json:7: objective.mode: expected one of 'min', 'max', got \"maximize\"",
        "s.json:8: trial.timeout: expected a duration such as 90, '90s', '30m' or '2h', got 'soon'",
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[]', "s.json:1: $: expected an object, got a list"),
        ('{"parameters": {}}', "s.json:1: architecture: missing; name an architecture (e.g. \"mlp\") or give a \"command\""),
        ('{"architecture": "mlp", "search": {"stratgy": "grid"}}',
         "s.json:1: search.stratgy: unknown key 'stratgy'; did you mean 'strategy'?"),
        ('{"architecture": "mlp", "zzz": 1}',
         "s.json:1: zzz: unknown key 'zzz'; known keys: name, architecture, command, date-range, date_ranges, "
         "parameters, search, objective, metrics, data, resources, executor, trial, mode, quick, output, scheduler"),
        ('{"architecture": "mlp", "parameters": {"lr": {"distribution": "uniform", "low": 0, "hi": 1}}}',
         "s.json:1: parameters.lr.hi: unknown key 'hi'; did you mean 'high'?\n"
         "s.json:1: parameters.lr.high: missing; uniform needs a number here"),
        ('{"architecture": "mlp", "parameters": {"lr": {"distribution": "uniform", "low": 0}}}',
         "s.json:1: parameters.lr.high: missing; uniform needs a number here"),
        ('{"architecture": "mlp", "parameters": {"lr": {"distribution": "uniform", "low": 0, "high": 1}}, '
         '"search": {"strategy": "grid"}}',
         "s.json:1: parameters.lr: grid search cannot enumerate a distribution; give a list of values, "
         "or set search.strategy to \"random\""),
        ('{"architecture": "mlp", "parameters": {"c": {"distribution": "choice", "values": []}}}',
         "s.json:1: parameters.c.values: choice needs at least one value, got an empty list"),
        ('{"architecture": "mlp", "parameters": {"c": {"distribution": "choice", "values": [1, 2], "weights": [1]}}}',
         "s.json:1: parameters.c.weights: weights must have one number per value: 2 values, 1 weights"),
        ('{"architecture": "mlp", "parameters": {"x": {"low": 1}}}',
         "s.json:1: parameters.x: an object parameter needs \"distribution\" (e.g. {\"distribution\": "
         "\"uniform\", \"low\": 0, \"high\": 1}); write {\"value\": {...}} to fix an object value"),
        ('{"architecture": "mlp", "date-range": [["2017-01-01", "2017-04-01"]], "date_ranges": []}',
         "s.json:1: date_ranges: give either \"date-range\" or its alias \"date_ranges\", not both"),
        ('{"architecture": "mlp", "resources": {"gpus_per_trial": 1.5}}',
         "s.json:1: resources.gpus_per_trial: expected a fraction of one GPU (0.25), 1, or a whole number "
         "of GPUs, got 1.5"),
        ('{"architecture": "mlp", "date-range": {"rolling": {"count": 2, "length": "3M", "end": "yesterday"}}}',
         "s.json:1: date-range.rolling.end: expected an ISO date YYYY-MM-DD, got 'yesterday'"),
        ('{"command": ["python", "train.py", "--lr", "{lr}"], "parameters": {"learning_rate": [1]}}',
         "s.json:1: command[3]: unknown placeholder '{lr}'; use a parameter name or one of trial_id, "
         "artifact_dir, start, end, seed, epochs, device, data_path"),
        ('{"architecture": ["mlp", "mlp"]}', "s.json:1: architecture[1]: architecture 'mlp' is listed twice"),
    ],
)
def test_more_problems(text, expected):
    assert problems(text) == expected.splitlines()


def test_literal_brace_in_a_command_says_how_to_escape_it():
    # review F13: a JSON string in a command item got "unknown placeholder" with no hint
    text = json.dumps({"command": ["python3", "-c", "print('{\"val_mse\": 1}')"], "parameters": {"lr": [1]}})
    assert problems(text) == [
        "s.json:1: command[2]: unknown placeholder '{\"val_mse\": 1}'; use a parameter name or one of "
        "trial_id, artifact_dir, start, end, seed, epochs, device, data_path; write {{ and }} for literal braces"
    ]
    assert problems(json.dumps({"command": ["echo", "{}"]}))[0].endswith("; write {{ and }} for literal braces")


def test_doubled_braces_are_literal_in_a_command():
    from hpt_cli.command import build_argv
    from hpt_cli.trialrun import TrialPayload

    spec = parse_spec(json.dumps({"command": ["echo", '{{"val_mse": {lr}}}'], "parameters": {"lr": [0.5]}}),
                      today=TODAY)
    trial = TrialPayload(trial_id="abc", architecture="command", params={"lr": 0.5},
                         date_range=("2014-01-01", "2014-04-01"), seed=0, epochs=None, data=None,
                         artifact_dir="trials/abc", command=spec.command)
    assert build_argv(trial) == ["echo", '{"val_mse": 0.5}']


def test_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.json")
    assert str(info.value) == f"{tmp_path / 'nope.json'}: no such file; give the path of a JSON spec"


def test_per_architecture_parameter_blocks():
    spec = parse_spec(json.dumps({
        "architecture": ["ridge", "mlp"],
        "parameters": {"ridge": {"alpha": [1, 10]}, "mlp": {"lr": [0.1], "hidden": [[8], [16]]}},
    }), today=TODAY)
    assert spec.space_of("ridge") == (("alpha", Grid((1, 10))),)
    assert [n for n, _ in spec.space_of("mlp")] == ["lr", "hidden"]
    assert spec.parameter_names == ["alpha", "lr", "hidden"]


def test_command_spec_defaults_architecture_to_command():
    spec = parse_spec('{"command": ["python", "t.py", "{x}", "{trial_id}"], "parameters": {"x": [1]}}', today=TODAY)
    assert spec.architectures == ("command",) and spec.command == ("python", "t.py", "{x}", "{trial_id}")


# -- search.initial: configurations run before the search's own ------------------------------------
@pytest.mark.parametrize(
    "search, expected",
    [
        ('{"initial": {"lr": 0.1}}',
         's.json:1: search.initial: expected a list of configurations, e.g. [{"lr": 0.01}], got an object'),
        ('{"initial": [0.1]}',
         's.json:1: search.initial[0]: expected an object of parameter values, e.g. {"lr": 0.01}, got a number'),
        ('{"initial": [{"lr": 0.1, "hiden": [8]}]}',
         "s.json:1: search.initial[0].hiden: 'hiden' is not a parameter of mlp in this spec; did you mean 'hidden'?"),
        ('{"initial": [{"lr": 0.1}, {"lr": 0.1}]}', "s.json:1: search.initial[1]: this configuration is listed twice"),
        ('{"initial": [{"architecture": "ridge", "lr": 0.1}]}',
         "s.json:1: search.initial[0].architecture: 'ridge' is not an architecture of this spec; one of mlp"),
    ],
)
def test_initial_problems(search, expected):
    text = f'{{"architecture": "mlp", "parameters": {{"lr": [0.01, 0.1], "hidden": [[8], [16]]}}, "search": {search}}}'
    assert problems(text) == [expected]


def test_initial_with_several_architectures_names_its_own():
    body = {"architecture": ["ridge", "mlp"],
            "parameters": {"ridge": {"alpha": [1, 10]}, "mlp": {"lr": [0.1], "hidden": [[8], [16]]}},
            "search": {"initial": [{"alpha": 3}]}}
    assert problems(json.dumps(body)) == [
        's.json:1: search.initial[0]: this spec has several architectures: say which this configuration is for '
        'with "architecture": one of ridge, mlp']
    body["search"]["initial"] = [{"architecture": "ridge", "alpha": 3}, {"architecture": "mlp", "lr": 0.5}]
    spec = parse_spec(json.dumps(body), today=TODAY)
    assert spec.search.initial == (("ridge", {"alpha": 3}), ("mlp", {"lr": 0.5}))
    assert parse_spec(json.dumps(spec.to_json()), today=TODAY).to_json() == spec.to_json()


def test_initial_of_a_command_spec_gives_what_the_command_uses():
    body = {"command": ["python", "t.py", "{x}"], "parameters": {"x": [1, 2], "y": [3]},
            "search": {"initial": [{"y": 4}]}}
    assert problems(json.dumps(body)) == ["s.json:1: search.initial[0]: the command uses x: give it a value here too"]
    body["search"]["initial"] = [{"x": 9}]
    assert parse_spec(json.dumps(body), today=TODAY).search.initial == (("command", {"x": 9}),)


def test_initial_configurations_come_first_and_leave_the_rest_as_it_was():
    from hpt_cli.search import expand

    body = {"architecture": "mlp", "parameters": {"lr": [0.01, 0.1], "hidden": [[8], [16]]},
            "date-range": [["2015-01-01", "2015-02-01"], ["2015-02-01", "2015-03-01"]]}
    plain = expand(parse_spec(json.dumps(body), today=TODAY))
    body["search"] = {"initial": [{"lr": 0.003, "hidden": [64]}, {"lr": 0.01}]}
    spec = parse_spec(json.dumps(body), today=TODAY)
    trials = expand(spec)
    assert len(trials) == len(plain) + 4
    assert [(t.params, str(t.date_range)) for t in list(trials)[:4]] == [
        ({"lr": 0.003, "hidden": [64]}, "2015-01-01..2015-02-01"), ({"lr": 0.003, "hidden": [64]}, "2015-02-01..2015-03-01"),
        ({"lr": 0.01}, "2015-01-01..2015-02-01"), ({"lr": 0.01}, "2015-02-01..2015-03-01")]
    assert [t.id for t in list(trials)[4:]] == [t.id for t in plain]  # the grid's own trials, unchanged
    assert spec.to_json()["search"]["initial"] == [{"lr": 0.003, "hidden": [64]}, {"lr": 0.01}]


# -- architecture and command (review 2, finding 5) --------------------------------------------------
@pytest.mark.parametrize("body, expected", [
    ({"architecture": "ridge", "command": ["python", "t.py", "{alpha}"], "parameters": {"alpha": [1]}},
     's.json:1: architecture: give "command" (its trials\' rows say architecture "command") or "architecture", '
     'not both'),
    ({"architecture": ["ridge", "command"], "command": ["echo", "1"]},
     's.json:1: architecture: give "command" (its trials\' rows say architecture "command") or "architecture", '
     'not both'),
    ({"architecture": "command"},
     's.json:1: architecture: architecture "command" needs the spec\'s "command" template, e.g. '
     '"command": ["python", "train.py", "--lr", "{lr}"]'),
    ({"command": "python train.py --lr {lr}"},  # one problem: not a spurious "architecture: missing" too
     's.json:1: command: expected a non-empty list of strings, e.g. ["python", "train.py", "--lr", "{lr}"]'),
])
def test_architecture_and_command_not_both(body, expected):
    assert problems(json.dumps(body)) == [expected]


def test_a_resolved_command_spec_says_architecture_command_and_parses_again():
    spec = parse_spec('{"command": ["python", "t.py", "{x}"], "parameters": {"x": [1]}}', today=TODAY)
    doc = spec.to_json()
    assert doc["architecture"] == "command" and doc["command"] == ["python", "t.py", "{x}"]
    assert parse_spec(json.dumps(doc), today=TODAY).to_json() == doc


# -- search.initial takes the spec's fixed values (review 2, finding 9) ------------------------------
def test_initial_configurations_take_the_fixed_parameters_they_leave_out():
    body = {"architecture": "mlp", "date-range": [["2015-01-01", "2015-02-01"]],
            "parameters": {"lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-1}, "hidden": [[32], [64]],
                           "epochs": 20, "l2": {"value": [1]}, "patience": 5},
            "search": {"strategy": "tpe", "trials": 6,
                       "initial": [{"lr": 0.01, "hidden": [64]}, {"lr": 0.001, "patience": 9}]}}
    spec = parse_spec(json.dumps(body), today=TODAY)
    # fixed ones filled in (a configuration's own value wins), grid and distribution ones left out
    assert spec.search.initial == (("mlp", {"lr": 0.01, "hidden": [64], "epochs": 20, "l2": [1], "patience": 5}),
                                   ("mlp", {"lr": 0.001, "epochs": 20, "l2": [1], "patience": 9}))
    doc = spec.to_json()
    assert doc["search"]["initial"] == [{"lr": 0.01, "hidden": [64], "epochs": 20, "l2": [1], "patience": 5},
                                        {"lr": 0.001, "epochs": 20, "l2": [1], "patience": 9}]
    assert parse_spec(json.dumps(doc), today=TODAY).to_json() == doc
    body["search"]["initial"].append({"lr": 0.01, "hidden": [64], "epochs": 20})
    assert problems(json.dumps(body)) == ["s.json:1: search.initial[2]: this configuration is listed twice"]


def test_initial_configurations_take_their_own_architectures_fixed_parameters():
    body = {"architecture": ["ridge", "mlp"],
            "parameters": {"ridge": {"alpha": [1, 10], "lags": 7}, "mlp": {"lr": [0.1], "epochs": 3}},
            "search": {"initial": [{"architecture": "ridge", "alpha": 3}, {"architecture": "mlp", "lr": 0.5}]}}
    spec = parse_spec(json.dumps(body), today=TODAY)
    assert spec.search.initial == (("ridge", {"alpha": 3, "lags": 7}), ("mlp", {"lr": 0.5, "epochs": 3}))


def test_a_command_initial_configuration_gets_a_fixed_value_its_command_uses():
    body = {"command": ["python", "t.py", "{x}", "{y}"], "parameters": {"x": [1, 2], "y": 3},
            "search": {"initial": [{"x": 9}]}}
    assert parse_spec(json.dumps(body), today=TODAY).search.initial == (("command", {"x": 9, "y": 3}),)


def test_an_initial_trial_is_trained_with_the_fixed_epochs():
    from hpt_cli.search import expand

    body = {"architecture": "mlp", "parameters": {"lr": [0.01, 0.1], "epochs": 20},
            "date-range": [["2015-01-01", "2015-02-01"]], "search": {"initial": [{"lr": 0.003}]}}
    first = list(expand(parse_spec(json.dumps(body), today=TODAY)))[0]
    assert first.params == {"lr": 0.003, "epochs": 20}


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    # review F15 (readme): some Windows editors write one; it was refused with advice for Python programmers
    path = tmp_path / "bom.json"
    path.write_bytes(b'\xef\xbb\xbf{"architecture": "ridge", "date-range": [["2015-01-01", "2015-07-01"]]}')
    assert load_spec(path).architectures == ("ridge",)


def test_rolling_end_today_minus_a_length_leaves_the_newest_validation_window_complete():
    # review F9 (readme): run on the 2nd with "end": "today", the newest window validated on the
    # month that had just begun (one day of data); "today-1M" ends a month before that
    text = ('{"architecture": "ridge", "data": {"validation": "1M"}, '
            '"date-range": {"rolling": {"count": 2, "length": "3M", "step": "1M", "end": "today-1M"}}}')
    spec = parse_spec(text, today=date(2016, 8, 2))
    assert [str(r) for r in spec.date_ranges] == ["2016-03-01..2016-06-01", "2016-04-01..2016-07-01"]
    assert spec.rolling.end == "today-1M" and spec.rolling.end_on(date(2016, 9, 30)) == date(2016, 8, 1)
    again = parse_spec(json.dumps(spec.to_json()), today=spec.today)  # spec.json keeps the rule
    assert again.date_ranges == spec.date_ranges


@pytest.mark.parametrize("end", ["today-0M", "today-1Q", "today-"])
def test_rolling_end_today_minus_a_bad_length_is_one_line(end):
    text = '{"architecture": "ridge", "date-range": {"rolling": {"count": 2, "length": "3M", "end": "%s"}}}' % end
    assert problems(text) == [f"s.json:1: date-range.rolling.end: expected \"today\", \"today-1M\" (a length "
                              f"before the first of the run day's month) or an ISO date, got '{end}'"]
