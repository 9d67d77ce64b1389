"""Expansion into trials: lazy, exact, seeded, with ids stable across processes."""

import itertools
import json
import subprocess
import sys
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from hpt_cli.search import expand
from hpt_cli.search.permutation import Permutation
from hpt_cli.spec import parse_spec

TODAY = date(2026, 11, 22)


def spec_of(parameters, **extra):
    body = {"architecture": "m", "date-range": [["2016-01-01", "2016-02-01"]], "parameters": parameters, **extra}
    return parse_spec(json.dumps(body), today=TODAY)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(min_value=0, max_value=3000), seed=st.integers(min_value=0, max_value=2**32))
def test_permutation_is_a_bijection(n, seed):
    perm = Permutation(n, seed)
    assert sorted(perm[i] for i in range(n)) == list(range(n))


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=5), min_size=0, max_size=4),
    seed=st.integers(min_value=0, max_value=1000),
    order=st.sampled_from(["shuffled", "sequential"]),
)
def test_grid_yields_each_point_exactly_once(sizes, seed, order):
    params = {f"p{i}": list(range(size)) for i, size in enumerate(sizes)}
    params["fixed"] = "x"
    trials = expand(spec_of(params, search={"seed": seed, "order": order}))
    expected_count = 1
    for size in sizes:
        expected_count *= size
    assert len(trials) == expected_count
    seen = [tuple(t.params[f"p{i}"] for i in range(len(sizes))) for t in trials]
    assert sorted(seen) == sorted(itertools.product(*(range(s) for s in sizes)))
    assert all(t.params["fixed"] == "x" for t in trials)
    assert len({t.id for t in trials}) == expected_count


def test_sequential_order_is_itertools_product():
    trials = expand(spec_of({"a": [1, 2], "b": ["x", "y", "z"]}, search={"order": "sequential"}))
    assert [(t.params["a"], t.params["b"]) for t in trials] == list(itertools.product([1, 2], "xyz"))


def test_each_configuration_runs_on_every_date_range_and_repeat():
    body = {
        "architecture": "m",
        "date-range": [["2016-01-01", "2016-02-01"], ["2016-02-01", "2016-03-01"]],
        "parameters": {"a": [1, 2, 3]},
        "search": {"repeats": 2},
    }
    trials = list(expand(parse_spec(json.dumps(body), today=TODAY)))
    assert len(trials) == 12
    # one configuration's trials are consecutive: repeats outer, date ranges inner
    first = trials[:4]
    assert len({json.dumps(t.params) for t in first}) == 1
    assert [(t.repeat, str(t.date_range)) for t in first] == [
        (0, "2016-01-01..2016-02-01"), (0, "2016-02-01..2016-03-01"),
        (1, "2016-01-01..2016-02-01"), (1, "2016-02-01..2016-03-01"),
    ]
    assert first[0].seed != first[2].seed
    assert len({t.id for t in trials}) == 12


def test_billion_point_grid_is_counted_and_listed_lazily():
    params = {f"p{i}": list(range(10)) for i in range(9)}
    trials = expand(spec_of(params))
    assert len(trials) == 10**9
    head = [trials[i] for i in range(5)]
    assert len({t.id for t in head}) == 5
    assert trials[10**9 - 1].index == 10**9 - 1


def test_order_reproducible_for_a_seed_and_different_for_another():
    params = {"a": list(range(10)), "b": list(range(10))}
    ids = lambda seed: [t.id for t in expand(spec_of(params, search={"seed": seed}))]  # noqa: E731
    assert ids(1) == ids(1)
    assert ids(1) != ids(2)
    assert sorted(ids(1)) == sorted(ids(2))


def test_random_search_is_seeded_and_prefix_stable():
    params = {"lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-1}, "h": [8, 16],
              "n": {"distribution": "int", "low": 1, "high": 5}}
    a = list(expand(spec_of(params, search={"trials": 30, "seed": 3})))
    b = list(expand(spec_of(params, search={"trials": 2000, "seed": 3})))
    c = list(expand(spec_of(params, search={"trials": 30, "seed": 4})))
    assert [t.params for t in a] == [t.params for t in b[:30]]
    assert [t.params for t in a] != [t.params for t in c]
    for t in b:
        assert 1e-4 <= t.params["lr"] <= 1e-1 and t.params["h"] in (8, 16) and 1 <= t.params["n"] <= 5


def test_random_samples_follow_their_distributions():
    params = {
        "u": {"distribution": "uniform", "low": 2, "high": 4},
        "q": {"distribution": "quniform", "low": 0, "high": 10, "q": 2.5},
        "c": {"distribution": "choice", "values": ["a", "b"], "weights": [9, 1]},
        "s": {"distribution": "int", "low": 0, "high": 10, "step": 5},
        "g": {"distribution": "lognormal", "mu": 0, "sigma": 0.1},
    }
    trials = list(expand(spec_of(params, search={"trials": 4000})))
    us = [t.params["u"] for t in trials]
    assert min(us) >= 2 and max(us) <= 4 and 2.9 < sum(us) / len(us) < 3.1
    assert {t.params["q"] for t in trials} <= {0.0, 2.5, 5.0, 7.5, 10.0}
    share_a = sum(t.params["c"] == "a" for t in trials) / len(trials)
    assert 0.85 < share_a < 0.95
    assert {t.params["s"] for t in trials} == {0, 5, 10}
    assert all(t.params["g"] > 0 for t in trials)


def test_model_selection_grid_spans_each_architectures_own_space():
    body = {
        "architecture": ["ridge", "mlp"],
        "date-range": [["2016-01-01", "2016-02-01"]],
        "parameters": {"ridge": {"alpha": [1, 10]}, "mlp": {"lr": [0.1, 0.2, 0.3]}},
    }
    trials = list(expand(parse_spec(json.dumps(body), today=TODAY)))
    got = sorted((t.architecture, json.dumps(t.params)) for t in trials)
    assert got == sorted([("ridge", '{"alpha": 1}'), ("ridge", '{"alpha": 10}'),
                          ("mlp", '{"lr": 0.1}'), ("mlp", '{"lr": 0.2}'), ("mlp", '{"lr": 0.3}')])


def test_trial_ids_are_identical_in_a_separate_interpreter():
    text = json.dumps({"architecture": "m", "date-range": [["2016-01-01", "2016-02-01"]],
                       "parameters": {"a": [1, 2.5, "x"], "b": {"distribution": "uniform", "low": 0, "high": 1}},
                       "search": {"trials": 5}})
    here = [t.id for t in expand(parse_spec(text, today=TODAY))]
    code = (
        "import json,sys,datetime\n"
        "from hpt_cli.spec import parse_spec\nfrom hpt_cli.search import expand\n"
        "s=parse_spec(sys.stdin.read(), today=datetime.date(2026,11,22))\n"
        "print(json.dumps([t.id for t in expand(s)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], input=text, capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"}).stdout
    assert json.loads(out) == here
