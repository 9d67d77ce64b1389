"""The searcher seam's contract, passed by every implementation (grid and random through
StaticSearcher, tpe, cmaes, qmc and gp through OptunaSearcher, with and without `search.initial`):
driven as the runner drives it (a few trials in flight, failures told as None, trials the scheduler
stopped told with `stopped=True`, a resume that replays the rows of an earlier attempt)."""

from __future__ import annotations

import json
import math
from collections import deque
from datetime import date
from importlib.util import find_spec

import pytest

from hpt_cli.search import make_searcher
from hpt_cli.search.trial import canonical_json, trial_id
from hpt_cli.spec import parse_spec
from hpt_cli.spec.domains import Choice, Fixed, Grid, Int, Uniform

TODAY = date(2026, 11, 22)
RANGES = [["2015-01-01", "2015-02-01"], ["2015-02-01", "2015-03-01"]]
DISTRIBUTIONS = {
    "lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-1},
    "width": {"distribution": "int", "low": 4, "high": 64},
    "act": {"distribution": "choice", "values": ["relu", "tanh", "gelu"]},
    "dropout": {"distribution": "uniform", "low": 0.0, "high": 0.5},
    "epochs": 3,
}
GRID = {"lr": [1e-3, 1e-2, 1e-1], "act": ["relu", "tanh"], "width": [8, 16], "epochs": 3}
INITIAL = [{"lr": 0.005, "width": 32, "act": "relu", "dropout": 0.1}]
CASES = {
    "grid": {"strategy": "grid"},
    "grid-initial": {"strategy": "grid", "initial": [{"lr": 0.005, "act": "relu", "width": 8}]},
    "random": {"strategy": "random", "trials": 7},
    "random-initial": {"strategy": "random", "trials": 5, "initial": INITIAL},
    "tpe": {"strategy": "tpe", "trials": 7},
    "tpe-initial": {"strategy": "tpe", "trials": 5, "initial": INITIAL},
    "cmaes": {"strategy": "cmaes", "trials": 6},
    "qmc": {"strategy": "qmc", "trials": 6},
    "gp": {"strategy": "gp", "trials": 5},
}


@pytest.fixture(params=sorted(CASES))
def spec(request):
    if request.param == "gp" and find_spec("torch") is None:
        pytest.skip("the gp strategy needs torch")
    search = {**CASES[request.param], "seed": 3, "repeats": 2}
    parameters = GRID if search["strategy"] == "grid" else DISTRIBUTIONS
    body = {"architecture": "mlp", "date-range": RANGES, "parameters": parameters, "search": search}
    return parse_spec(json.dumps(body), today=TODAY)


def objective(trial) -> dict | None:
    """A deterministic result; every tanh configuration fails (None), as a diverged run would."""
    p = trial.params
    if p["act"] == "tanh":
        return None
    return {"val_mse": (math.log10(p["lr"]) + 2) ** 2 + p["width"] / 64 + trial.repeat / 10}


def drive(searcher, in_flight: int = 3, stop_after: int | None = None, done: frozenset = frozenset()):
    """The runner's way: keep `in_flight` trials asked, tell the oldest; skip (and never tell)
    trials in `done`, as the runner skips ids that have a row. Returns the trials run, in order."""
    running: deque = deque()
    ran = []
    while stop_after is None or len(ran) < stop_after:
        while len(running) < in_flight:
            trial = searcher.ask()
            if trial is None:
                break
            if trial.id not in done:
                running.append(trial)
        if not running:
            break
        trial = running.popleft()
        searcher.tell(trial, objective(trial))
        ran.append(trial)
    return ran


def rows_of(trials) -> list[dict[str, str]]:
    """The results.csv rows these trials would have written."""
    rows = []
    for t in trials:
        result = objective(t)
        rows.append({"trial_id": t.id, "status": "ok" if result else "failed", "architecture": t.architecture,
                     "start": t.date_range.start.isoformat(), "end": t.date_range.end.isoformat(),
                     "repeat": str(t.repeat), "val_mse": "" if result is None else repr(result["val_mse"]),
                     **{k: str(v) for k, v in t.params.items()}})
    return rows


def configurations(trials) -> dict[str, set[tuple[str, int]]]:
    out: dict[str, set[tuple[str, int]]] = {}
    for t in trials:
        out.setdefault(canonical_json([t.architecture, t.params]), set()).add((str(t.date_range), t.repeat))
    return out


def in_domain(domain, value) -> bool:
    if isinstance(domain, Fixed):
        return value == domain.value
    if isinstance(domain, (Grid, Choice)):
        return value in domain.values
    if isinstance(domain, Int):
        return isinstance(value, int) and domain.low <= value <= domain.high
    if isinstance(domain, Uniform):
        return domain.low <= value <= domain.high
    raise AssertionError(f"no check for {domain!r}")


def test_every_trial_is_unique_whole_and_in_the_spec(spec):
    searcher = make_searcher(spec)
    ran = drive(searcher)
    assert searcher.ask() is None and searcher.ask() is None  # exhausted stays exhausted
    assert 0 < len(ran) <= searcher.total()
    if spec.search.strategy in ("grid", "random"):
        assert len(ran) == searcher.total()
    assert len({t.id for t in ran}) == len(ran)
    cells = {(str(r), k) for r in spec.date_ranges for k in range(spec.search.repeats)}
    for config, seen in configurations(ran).items():
        assert seen == cells, config  # every configuration on every date range and repeat
    domains = dict(spec.space_of("mlp"))
    initial = [dict(p) for _, p in spec.search.initial]
    for t in ran:
        assert t.architecture == "mlp" and t.id == trial_id(t.architecture, t.params, t.date_range, t.repeat)
        if any(all(t.params.get(k) == v for k, v in p.items()) for p in initial):
            continue  # a baseline may lie outside the space
        assert set(t.params) == set(domains)
        assert all(in_domain(domains[name], value) for name, value in t.params.items()), t.params


def test_one_configuration_s_trials_are_handed_out_together(spec):
    searcher = make_searcher(spec)
    per_config = len(spec.date_ranges) * spec.search.repeats
    order = [canonical_json([t.architecture, t.params]) for t in iter(searcher.ask, None)]
    assert [order[i] for i in range(0, len(order), per_config)] == list(dict.fromkeys(order))
    assert initial_first(spec, order)


def initial_first(spec, order) -> bool:
    first = [canonical_json(["mlp", {**{k: d.value for k, d in spec.space_of("mlp") if isinstance(d, Fixed)},
                                     **dict(p)}]) for _, p in spec.search.initial]
    return list(dict.fromkeys(order))[:len(first)] == first


def test_the_same_spec_and_results_give_the_same_trials(spec):
    assert [t.id for t in drive(make_searcher(spec))] == [t.id for t in drive(make_searcher(spec))]


def test_a_resumed_search_runs_each_missing_trial_once_and_completes_what_it_started(spec):
    first = make_searcher(spec)
    earlier = drive(first, stop_after=7)  # then the run was killed: the rows of 7 trials remain
    assert len(earlier) == 7
    rows = rows_of(earlier)
    again = make_searcher(spec)
    again.replay(rows)
    done = frozenset(r["trial_id"] for r in rows)
    rest = drive(again, done=done)
    assert not done & {t.id for t in rest} and len({t.id for t in rest}) == len(rest)
    cells = {(str(r), k) for r in spec.date_ranges for k in range(spec.search.repeats)}
    for config, seen in configurations([*earlier, *rest]).items():
        assert seen == cells, config  # the configuration cut short is completed, nothing more of it
    assert len(earlier) + len(rest) <= again.total()
    if spec.search.strategy in ("grid", "random"):  # the same trials as an uninterrupted run
        assert {t.id for t in [*earlier, *rest]} == {t.id for t in drive(make_searcher(spec))}


def test_tell_takes_failures_and_trials_it_never_asked_for(spec):
    searcher = make_searcher(spec)
    trial = searcher.ask()
    searcher.tell(trial, None)
    searcher.tell(trial, {"val_mse": 1.0})  # told twice: the first answer stands, no error
    searcher.tell(searcher.ask(), {"val_mse": 2.0, "epochs_run": 1}, stopped=True)  # the scheduler stopped it
    stranger = type(trial)(index=10**6, architecture="mlp", params={"lr": 5.0}, date_range=trial.date_range)
    searcher.tell(stranger, {"val_mse": 0.0})
    assert drive(searcher)  # and the search goes on
