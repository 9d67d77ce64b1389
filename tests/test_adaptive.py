"""Adaptive search through Optuna: better than random on a benchmark, seeded, domains round-trip,
failures told as FAIL, stopped configurations as PRUNED, repeated proposals not counted, a resumed
run learns from its rows, 2 workers kept busy, notes on what an adaptive strategy does not honour."""

from __future__ import annotations

import csv
import json
import math
import statistics
import subprocess
import sys
from collections import deque
from datetime import date, datetime
from itertools import count

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from hpt_cli.architectures.synthetic import BRANIN_MIN, branin, hartmann6
from hpt_cli.cli import cli
from hpt_cli.errors import HptError
from hpt_cli.search import StaticSearcher, adaptive, make_searcher
from hpt_cli.search.adaptive import MAX_REPEATS, OptunaSearcher
from hpt_cli.search.optuna_space import OptunaSpace
from hpt_cli.spec import parse_spec
from hpt_cli.spec.model import DataSpec
from hpt_cli.storage.results import Columns, csv_line, read_rows
from hpt_cli.trialrun import TrialPayload, run_trial
from tests.helpers import HPT, subprocess_env, write_spec

TODAY = date(2026, 11, 22)
BRANIN_SPACE = {
    "x1": {"distribution": "uniform", "low": -5, "high": 10},
    "x2": {"distribution": "uniform", "low": 0, "high": 15},
}
ONE_RANGE = [["2016-01-01", "2016-02-01"]]
TWO_RANGES = [["2016-01-01", "2016-02-01"], ["2016-02-01", "2016-03-01"]]


def spec_of(parameters=None, architecture="branin", ranges=ONE_RANGE, **search):
    body = {"architecture": architecture, "date-range": ranges,
            "parameters": BRANIN_SPACE if parameters is None else parameters,
            "search": {"strategy": "tpe", **search}}
    return parse_spec(json.dumps(body), today=TODAY)


def evaluate(trial) -> float:
    p = trial.params
    if trial.architecture == "hartmann6":
        return hartmann6(tuple(p[f"x{i}"] for i in range(1, 7)))
    return branin(p["x1"], p["x2"])


def drive(searcher, objective=evaluate, in_flight=2, results=None):
    """A synchronous stand-in for the runner: keep `in_flight` trials asked, tell the oldest.
    Returns the told trials in order."""
    running: deque = deque()
    told = []
    while True:
        while len(running) < in_flight and (trial := searcher.ask()) is not None:
            running.append(trial)
        if not running:
            return told
        trial = running.popleft()
        result = results(trial) if results else {"val_mse": objective(trial)}
        searcher.tell(trial, result)
        told.append((trial, result))


def first_configurations(strategy, seed, n, parameters=None):
    searcher = make_searcher(spec_of(parameters, strategy=strategy, seed=seed, trials=n))
    return [t.params for t, _ in drive(searcher, in_flight=1)]


# -- 1. acceptance: tpe beats random on Branin ------------------------------------------------------
def test_tpe_finds_a_lower_branin_value_than_random_in_60_configurations():
    best = {}
    for strategy in ("tpe", "random"):
        runs = []
        for seed in range(5):
            told = drive(make_searcher(spec_of(strategy=strategy, seed=seed, trials=60)))
            assert len(told) == 60
            runs.append(min(r["val_mse"] for _, r in told))
        best[strategy] = statistics.median(runs)
    print(f"\nBranin, best after 60 configurations, median over 5 seeds: tpe {best['tpe']:.4f}, "
          f"random {best['random']:.4f} (optimum {BRANIN_MIN})")
    assert BRANIN_MIN - 1e-6 <= best["tpe"] < best["random"], best


# -- 2. seeds ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["tpe", "qmc", "gp", "cmaes"])
def test_same_seed_same_first_configurations(strategy):
    if strategy in ("gp", "cmaes"):
        pytest.importorskip({"gp": "torch", "cmaes": "cmaes"}[strategy])
    n = 12  # past the 10 random start-up configurations of tpe and gp
    a = first_configurations(strategy, 7, n)
    assert a == first_configurations(strategy, 7, n)
    assert a != first_configurations(strategy, 8, n)


def test_a_missing_optional_package_is_one_line_naming_what_to_install(monkeypatch):
    monkeypatch.setattr(adaptive, "find_spec", lambda name: None)
    with pytest.raises(HptError, match=r"^search strategy 'gp' needs the torch package: pip install torch$"):
        make_searcher(spec_of(strategy="gp"))
    with pytest.raises(HptError, match=r"needs the cmaes package: pip install cmaes$"):
        make_searcher(spec_of(strategy="cmaes"))


def test_grid_and_random_stay_static_and_do_not_import_optuna():
    code = (
        "import json, sys\n"
        "from hpt_cli.spec import parse_spec\n"
        "from hpt_cli.search import make_searcher, StaticSearcher\n"
        "for s in ('grid', 'random'):\n"
        "    body = {'architecture': 'm', 'date-range': [['2016-01-01', '2016-02-01']],\n"
        "            'parameters': {'a': [1, 2]}, 'search': {'strategy': s}}\n"
        "    assert isinstance(make_searcher(parse_spec(json.dumps(body))), StaticSearcher)\n"
        "assert 'optuna' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=subprocess_env())


# -- 3. domains -------------------------------------------------------------------------------------
EVERY_DOMAIN = {
    "u": {"distribution": "uniform", "low": -1, "high": 1},
    "lu": {"distribution": "loguniform", "low": 1e-4, "high": 1e-1},
    "i": {"distribution": "int", "low": 1, "high": 11, "step": 3},  # 1, 4, 7, 10
    "il": {"distribution": "int", "low": 1, "high": 100, "log": True},
    "q": {"distribution": "quniform", "low": 0.05, "high": 1, "q": 0.1},
    "qi": {"distribution": "quniform", "low": 0, "high": 100, "q": 5},
    "ql": {"distribution": "qloguniform", "low": 1, "high": 1000, "q": 10},
    "c": {"distribution": "choice", "values": [[32], [64, 32], {"k": 1}]},
    "cs": {"distribution": "choice", "values": ["relu", "tanh"], "weights": [3, 1]},
    "cmixed": {"distribution": "choice", "values": [1, 1.0, True, None]},
    "g": [0.5, 1, "x"],
    "n": {"distribution": "normal", "mu": 2, "sigma": 0.5},
    "ln": {"distribution": "lognormal", "mu": 0, "sigma": 1},
    "f": {"value": [1, 2]},
    "error": 3,  # clashes with a fixed column: written as param_error
}


def in_domain(params):
    checks = {
        "u": lambda v: isinstance(v, float) and -1 <= v <= 1,
        "lu": lambda v: isinstance(v, float) and 1e-4 <= v <= 1e-1,
        "i": lambda v: type(v) is int and v in (1, 4, 7, 10),
        "il": lambda v: type(v) is int and 1 <= v <= 100,
        "q": lambda v: isinstance(v, float) and 0.1 <= v <= 1 and abs(v * 10 - round(v * 10)) < 1e-9,
        "qi": lambda v: type(v) is int and 0 <= v <= 100 and v % 5 == 0,
        "ql": lambda v: type(v) is int and 10 <= v <= 1000 and v % 10 == 0,
        "c": lambda v: v in ([32], [64, 32], {"k": 1}),
        "cs": lambda v: v in ("relu", "tanh"),
        "cmixed": lambda v: any(v is x or (type(v) is type(x) and v == x) for x in (1, 1.0, True, None)),
        "g": lambda v: any(type(v) is type(x) and v == x for x in (0.5, 1, "x")),
        "n": lambda v: 0.5 <= v <= 3.5,
        "ln": lambda v: math.exp(-3) <= v <= math.exp(3),
        "f": lambda v: v == [1, 2],
        "error": lambda v: v == 3,
    }
    return [name for name, ok in checks.items() if not ok(params[name])]


@pytest.mark.parametrize("strategy", ["tpe", "qmc"])
def test_every_domain_maps_to_optuna_and_back(strategy):
    spec = spec_of(EVERY_DOMAIN, architecture="m", strategy=strategy, trials=25, seed=3)
    searcher = make_searcher(spec)
    told = drive(searcher, results=lambda t: {"val_mse": float(len(json.dumps(t.params)))})
    assert len(told) == 25
    columns = Columns(spec.parameter_names, ["val_mse"])
    space = OptunaSpace(spec)
    for trial, result in told:
        assert list(trial.params) == list(EVERY_DOMAIN)
        assert in_domain(trial.params) == [], trial.params
        # the row results.csv gets parses back to the same configuration (hence the same ids)
        row = dict(zip(columns.header, columns.row({"trial_id": trial.id, "architecture": "m"},
                                                   trial.params, result)))
        assert "param_error" in row
        arch, values = space.from_row(row)
        assert space.decode(arch, values) == trial.params
        assert json.dumps(space.decode(arch, values)) == json.dumps(trial.params)  # 1 is not 1.0
    seen = {json.dumps(t.params["c"]) for t, _ in told}
    assert len(seen) > 1 and all(isinstance(t.params["c"], (list, dict)) for t, _ in told)


def test_model_selection_asks_only_the_chosen_architectures_parameters():
    parameters = {"branin": BRANIN_SPACE,
                  "hartmann6": {f"x{i}": {"distribution": "uniform", "low": 0, "high": 1} for i in range(1, 7)}}
    searcher = make_searcher(spec_of(parameters, architecture=["branin", "hartmann6"], trials=30, seed=1))
    told = drive(searcher)
    by_arch = {}
    for trial, _ in told:
        by_arch.setdefault(trial.architecture, set()).add(tuple(trial.params))
    assert by_arch == {"branin": {("x1", "x2")}, "hartmann6": {tuple(f"x{i}" for i in range(1, 7))}}
    for frozen in searcher.study.trials:
        arch = frozen.params["architecture"]
        assert all(k == "architecture" or k.startswith(f"{arch}/") for k in frozen.params)


# -- 4. failures, budget, replay ---------------------------------------------------------------------
def test_a_configuration_is_told_once_all_its_trials_are_in_and_fails_if_any_failed():
    searcher = make_searcher(spec_of(ranges=TWO_RANGES, trials=4, repeats=2))
    outcomes = iter([
        [{"val_mse": 1.0}, {"val_mse": 2.0}, {"val_mse": 3.0}, {"val_mse": 4.0}],  # mean 2.5
        [{"val_mse": 1.0}, None, {"val_mse": 1.0}, {"val_mse": 1.0}],  # a failed trial
        [{"val_mse": 1.0}, {"other": 1.0}, {"val_mse": 1.0}, {"val_mse": 1.0}],  # metric missing
        [{"val_mse": float("nan")}, {"val_mse": 1.0}, {"val_mse": 1.0}, {"val_mse": 1.0}],
    ])
    for c in range(4):
        trials = [searcher.ask() for _ in range(4)]
        assert len({t.config_key() for t in trials}) == 1
        assert [(t.repeat, t.date_range.to_json()[0]) for t in trials] == [
            (0, "2016-01-01"), (0, "2016-02-01"), (1, "2016-01-01"), (1, "2016-02-01")]
        assert [t.index for t in trials] == list(range(4 * c, 4 * c + 4))
        results = next(outcomes)
        for t, r in zip(trials, results):
            assert searcher.study.trials[c].state == TrialState.RUNNING
            searcher.tell(t, r)
    assert searcher.ask() is None
    assert searcher.total() == 16
    states = [(t.state, t.value) for t in searcher.study.trials]
    assert states == [(TrialState.COMPLETE, 2.5)] + [(TrialState.FAIL, None)] * 3


def test_asking_before_results_arrive_gives_new_configurations_at_once():
    searcher = make_searcher(spec_of(trials=20, seed=2))
    for _ in range(12):
        t = searcher.ask()
        searcher.tell(t, {"val_mse": evaluate(t)})
    in_flight = [searcher.ask() for _ in range(4)]  # 4 free slots, nothing told yet
    assert all(t is not None for t in in_flight)
    assert len({t.config_key() for t in in_flight}) == 4


def test_max_time_stops_proposing():
    ticks = count()
    searcher = OptunaSearcher(spec_of(trials=100, max_time="10s"), clock=lambda: float(next(ticks)))
    assert len(drive(searcher, in_flight=1)) < 100


@pytest.mark.parametrize("strategy", ["tpe", "qmc"])
def test_a_finite_space_caps_the_budget_and_a_repeated_proposal_is_not_counted(strategy):
    """Review finding 5: a repeated proposal is told the known value and the study is asked again,
    so every configuration of a space smaller than `trials` runs, once."""
    space = {"a": [1, 2, 3], "b": {"distribution": "choice", "values": ["x", "y"]}}
    searcher = make_searcher(spec_of(space, architecture="m", strategy=strategy, trials=10, seed=1))
    assert searcher.total() == 6
    told = drive(searcher, in_flight=2, results=lambda t: {"val_mse": float(t.params["a"])})
    assert sorted((t.params["a"], t.params["b"]) for t, _ in told) == [(a, b) for a in (1, 2, 3) for b in "xy"]
    assert [t.index for t, _ in told] == list(range(6))
    frozen = searcher.study.trials
    assert all(t.state == TrialState.COMPLETE and t.value == t.params["a"] for t in frozen)
    assert searcher.ask() is None


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_repeated_proposals_in_a_row_end_the_search():
    fixed = optuna.samplers.PartialFixedSampler({"a": 1}, optuna.samplers.RandomSampler(seed=0))
    searcher = OptunaSearcher(spec_of({"a": [1, 2, 3]}, architecture="m", trials=3), sampler=fixed)
    told = drive(searcher, in_flight=1, results=lambda t: {"val_mse": 1.0})
    assert [t.params for t, _ in told] == [{"a": 1}]
    assert len(searcher.study.trials) == 1 + MAX_REPEATS
    assert searcher.ask() is None


def rows_of(spec, told, stopped=()):
    """results.csv text for told trials, as the runner writes it, read back as the runner does
    (trials whose id is in `stopped`: status stopped)."""
    columns = Columns(spec.parameter_names, ["val_mse"])
    lines = [csv_line(columns.header)]
    for trial, result in told:
        status = "failed" if result is None else "stopped" if trial.id in stopped else "ok"
        fields = {"trial_id": trial.id, "status": status, "architecture": trial.architecture,
                  "start": trial.date_range.start.isoformat(), "end": trial.date_range.end.isoformat(),
                  "repeat": trial.repeat, "seed": trial.seed}
        lines.append(csv_line(columns.row(fields, trial.params, result or {})))
    return read_rows("".join(lines))


def test_replay_counts_finished_configurations_and_finishes_a_partial_one():
    spec = spec_of(ranges=TWO_RANGES, trials=6, seed=5)
    first = make_searcher(spec)
    told = []
    for c in range(4):
        trials = [first.ask(), first.ask()]
        results = [None, {"val_mse": 9.0}] if c == 1 else [{"val_mse": evaluate(t)} for t in trials]
        told += list(zip(trials, results))
    partial_done, partial_missing = told[-2], told[-1]
    rows = rows_of(spec, told[:-1])  # the last trial was cancelled: no row

    again = make_searcher(spec)
    again.replay(rows)
    assert again.started == 3
    frozen = again.study.trials
    assert [t.state for t in frozen] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE,
                                         TrialState.WAITING]  # the partial one, enqueued
    mean0 = (told[0][1]["val_mse"] + told[1][1]["val_mse"]) / 2
    assert frozen[0].value == pytest.approx(mean0)
    assert frozen[0].params == {"x1": told[0][0].params["x1"], "x2": told[0][0].params["x2"]}

    resumed = again.ask()  # the partial configuration first, only its missing trial
    assert resumed.id == partial_missing[0].id and resumed.id != partial_done[0].id
    again.tell(resumed, {"val_mse": 1.0})
    assert again.study.trials[3].value == pytest.approx((partial_done[1]["val_mse"] + 1.0) / 2)
    rest = drive(again)
    assert len(rest) == 2 * 2  # 6 configurations in all: 2 more, on 2 date ranges each
    assert {t.id for t, _ in rest}.isdisjoint(r["trial_id"] for r in rows)


# -- early stopping: stopped configurations are PRUNED, as Optuna's pruners leave them -----------------
def test_stopped_trials_make_a_pruned_configuration_and_replay_gives_the_same_study_trial():
    """Review finding 1: reported at the fewest epochs reached, with the mean of the objectives
    reported; a stopped trial without the objective adds nothing; a failed one still fails it."""
    spec = spec_of(ranges=TWO_RANGES, trials=4, seed=5)
    ok, stop, failed = "ok", "stopped", None
    outcomes = [
        [(ok, {"val_mse": 4.0}), (stop, {"val_mse": 6.0, "epochs_run": 3})],
        [(stop, {"val_mse": 8.0, "epochs_run": 9}), (stop, {"loss": 1.0, "epochs_run": 3})],
        [(stop, {"loss": 1.0, "epochs_run": 2}), (stop, {"loss": 2.0, "epochs_run": 2})],
        [(stop, {"val_mse": 1.0, "epochs_run": 1}), (failed, None)],
    ]
    first = make_searcher(spec)
    told, stopped = [], set()
    for results in outcomes:
        for how, result in results:
            trial = first.ask()
            first.tell(trial, result, stopped=how == stop)
            told.append((trial, result))
            stopped |= {trial.id} if how == stop else set()
    expected = [(TrialState.PRUNED, 5.0, {3: 5.0}), (TrialState.PRUNED, 8.0, {3: 8.0}),
                (TrialState.PRUNED, None, {}), (TrialState.FAIL, None, {})]
    assert [(t.state, t.value, t.intermediate_values) for t in first.study.trials] == expected

    again = make_searcher(spec)
    again.replay(rows_of(spec, told, stopped))  # epochs_run and loss are in the `extra` column
    assert again.started == 4
    assert [(t.state, t.value, t.intermediate_values, t.params) for t in again.study.trials] == [
        (t.state, t.value, t.intermediate_values, t.params) for t in first.study.trials]


def test_tpe_learns_from_stopped_configurations():
    """Review finding 1: a scheduler that stops every configuration but the incumbent left TPE
    with fewer than its 10 start-up trials (FAIL is not counted), so it drew at random throughout.
    Told as stopped (PRUNED), they count, and configurations 21-40 gather near Branin's minima."""
    def later_median(seed: int, stopped: bool) -> float:
        searcher = make_searcher(spec_of(trials=40, seed=seed))
        best, values = math.inf, []
        while (trial := searcher.ask()) is not None:
            value = evaluate(trial)
            values.append(value)
            if value < best:  # the incumbent runs all its epochs
                best = value
                searcher.tell(trial, {"val_mse": value})
            else:  # stopped at the first rung, where its curve is 30 higher (as the review's curve.py)
                searcher.tell(trial, {"val_mse": value + 30, "epochs_run": 1} if stopped else None, stopped=stopped)
        states = {t.state for t in searcher.study.trials}
        assert states == ({TrialState.COMPLETE, TrialState.PRUNED} if stopped else {TrialState.COMPLETE, TrialState.FAIL})
        return statistics.median(values[20:])

    pruned = [later_median(seed, stopped=True) for seed in range(3)]
    failed = [later_median(seed, stopped=False) for seed in range(3)]  # as before: random search
    print(f"\nBranin, median of configurations 21-40: told stopped {pruned}, told failed {failed}")
    assert statistics.median(pruned) < 0.6 * statistics.median(failed)
    assert min(failed) > 30  # random search's median over the space is about 40


# -- what adaptive strategies do not honour, and say so ------------------------------------------------
def test_zero_weight_choices_are_never_proposed():
    """Review finding 6: random search never draws a value of weight 0, nor does an adaptive one."""
    space = {"lags": {"distribution": "choice", "values": [7, 14, 365], "weights": [1, 1, 0]},
             "x": {"distribution": "uniform", "low": 0, "high": 1}}
    spec = spec_of(space, architecture="m", trials=15, seed=0)
    assert OptunaSpace(spec).distributions("m")["lags"].choices == (7, 14)
    told = drive(make_searcher(spec), results=lambda t: {"val_mse": t.params["x"]})
    assert len(told) == 15 and {t.params["lags"] for t, _ in told} <= {7, 14}


def validate(tmp_path, parameters, architecture="tests.archs:noop", **search):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"architecture": architecture, "date-range": ONE_RANGE, "parameters": parameters,
                                "search": search}))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    return result.stdout, result.stderr


def test_validate_notes_weights_and_normal_domains_an_adaptive_strategy_does_not_honour(tmp_path):
    parameters = {"act": {"distribution": "choice", "values": ["relu", "tanh", "gelu"], "weights": [3, 1, 0]},
                  "drop": {"distribution": "choice", "values": [0.0, 0.5], "weights": [1, 1]},  # uniform
                  "lr": {"distribution": "lognormal", "mu": -5, "sigma": 1},
                  "l2": {"distribution": "normal", "mu": 0.01, "sigma": 0.001}}
    _, notes = validate(tmp_path, parameters, strategy="tpe", trials=5)
    assert notes.splitlines() == [
        "note: tpe ignores choice weights (parameters.act): it searches every value of weight > 0 alike; "
        "random search draws by weight",
        "note: tpe searches normal and lognormal domains (parameters.lr, parameters.l2) uniformly over "
        "mu +- 3 sigma (lognormal: log-uniformly); random search draws from the distribution",
    ]
    assert validate(tmp_path, parameters, strategy="random", trials=5)[1] == ""


def test_validate_says_when_the_space_caps_an_adaptive_budget(tmp_path):
    out, _ = validate(tmp_path, {"a": [1, 2, 3], "b": [1, 2]}, strategy="tpe", trials=10)
    assert out == (f"ok: {tmp_path / 'spec.json'}: 6 trials (tests.archs:noop: 6 configurations x 1 date range x 1 repeat); "
                   "search.trials is 10 but the space has 6 configurations: tpe runs 6 at most\n")
    table = CliRunner().invoke(cli, ["expand", str(tmp_path / "spec.json")]).output
    assert "trials   up to 6 = 6 configurations" in table
    assert "note     search.trials is 10 but the space has 6 configurations: tpe runs 6 at most" in table


def test_validate_notes_that_gp_needs_torch_when_it_is_not_installed(tmp_path, monkeypatch):
    """Review finding 12: validate said ok, then `hpt run` refused."""
    real = adaptive.find_spec
    monkeypatch.setattr(adaptive, "find_spec", lambda name: None if name == "torch" else real(name))
    out, notes = validate(tmp_path, BRANIN_SPACE, architecture="branin", strategy="gp", trials=5)
    assert out.startswith("ok: ")
    assert notes == ("note: on this machine `hpt run` would stop here: search strategy 'gp' needs the torch "
                     "package: pip install torch\n")


def test_static_searchers_ignore_replay():
    searcher = make_searcher(spec_of(strategy="random", trials=3))
    assert isinstance(searcher, StaticSearcher)
    searcher.replay([{"trial_id": "x"}])
    assert len(drive(searcher)) == 3


# -- the benchmark architectures -------------------------------------------------------------------
def test_benchmarks_ignore_the_data_and_know_their_optimum(tmp_path):
    def payload(arch, params):
        return TrialPayload(trial_id="t", architecture=arch, params=params, date_range=("2016-01-01", "2016-02-01"),
                            seed=0, epochs=None, data=DataSpec(path=str(tmp_path / "no-such.csv")),
                            artifact_dir=str(tmp_path / "a"))

    assert run_trial(payload("branin", {"x1": math.pi, "x2": 2.275}))["val_mse"] == pytest.approx(BRANIN_MIN, abs=1e-6)
    best = dict(zip([f"x{i}" for i in range(1, 7)], (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)))
    assert run_trial(payload("hartmann6", best))["val_mse"] == pytest.approx(0, abs=1e-4)
    with pytest.raises(ValueError, match="branin needs parameters x1, x2; missing x2"):
        run_trial(payload("branin", {"x1": 0}))


# -- 5. end to end through the runner -------------------------------------------------------------
def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def idle_fraction(rows, workers: int) -> float:
    """Idle worker time over the run's span: 1 - (sum of trial durations) / (span x workers)."""
    start = min(_ts(r["started_at"]) for r in rows)
    end = max(_ts(r["ended_at"]) for r in rows)
    busy = sum(_ts(r["ended_at"]) - _ts(r["started_at"]) for r in rows)
    return 1 - busy / ((end - start) * workers)


@pytest.mark.slow
@pytest.mark.parametrize("delay_s", [0.0, 0.25])
def test_hpt_run_tpe_keeps_two_workers_busy_and_a_rerun_resumes(tmp_path, delay_s):
    spec = write_spec(tmp_path, name="branin-tpe", architecture="branin",
                      parameters={**BRANIN_SPACE, "delay_s": delay_s},
                      search={"strategy": "tpe", "trials": 16, "seed": 0})
    out = tmp_path / "out"
    cmd = [HPT, "run", str(spec), "-o", str(out), "-j", "2", "-q"]
    proc = subprocess.run(cmd, check=False, env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    (results,) = out.glob("*/results.csv")
    with results.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16 and {r["status"] for r in rows} == {"ok"}
    assert len({r["trial_id"] for r in rows}) == 16
    assert len({r["worker"] for r in rows}) == 2
    idle = idle_fraction(rows, 2)
    print(f"\n2 workers, 16 tpe configurations, trials of {delay_s}s: idle {idle:.1%} of the run")
    assert 0 <= idle < 1

    again = subprocess.run(cmd, check=False, env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr
    with results.open() as f:
        assert len(list(csv.DictReader(f))) == 16  # the replayed rows used the whole budget
