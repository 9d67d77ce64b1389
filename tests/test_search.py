"""Expansion into trials: lazy, exact, seeded, with ids stable across processes."""

import itertools
import json
import re
import subprocess
import sys
from datetime import date

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from hpt_cli.calibrate import sample_spec
from hpt_cli.cli import cli
from hpt_cli.search import configurations_by_architecture, expand, space
from hpt_cli.search.permutation import Permutation
from hpt_cli.search.space import capped
from hpt_cli.spec import parse_spec
from tests.helpers import HPT, subprocess_env, write_spec

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


# -- random search draws distinct configurations ---------------------------------------------------
def _support(domain):
    """The values a finite domain of a spec can give, written out independently of space.py."""
    if isinstance(domain, list):  # grid values
        return domain
    if not isinstance(domain, dict):
        return [domain]
    if "distribution" not in domain:  # {"value": ...}
        return [domain["value"]]
    kind = domain["distribution"]
    if kind == "choice":
        weights = domain.get("weights") or [1] * len(domain["values"])
        return [v for v, w in zip(domain["values"], weights) if w > 0]
    if kind == "int":
        return list(range(domain["low"], domain["high"] + 1, 1 if domain.get("log") else domain.get("step", 1)))
    if kind == "quniform":  # whole numbers only here
        q = domain["q"]
        return list(range(-(-domain["low"] // q) * q, domain["high"] + 1, q))
    raise AssertionError(kind)


def _key(config):
    return json.dumps(config, sort_keys=True)


finite_domains = st.one_of(
    st.lists(st.sampled_from([0, 1, 1.0, True, "a", [1], [1, 2]]), min_size=1, max_size=4),  # grid, repeats allowed
    st.integers(min_value=-3, max_value=3),  # fixed
    st.builds(lambda vs, ws: {"distribution": "choice", "values": vs, "weights": ws[: len(vs)]},
              st.lists(st.integers(0, 9), min_size=1, max_size=4, unique=True),
              st.lists(st.sampled_from([0, 1, 5]), min_size=4, max_size=4)).filter(
        lambda d: sum(d["weights"]) > 0),
    st.builds(lambda lo, n, step: {"distribution": "int", "low": lo, "high": lo + n, "step": step},
              st.integers(-5, 5), st.integers(1, 6), st.integers(1, 3)),
    st.builds(lambda lo, n: {"distribution": "int", "low": lo, "high": lo + n, "log": True},
              st.integers(1, 5), st.integers(1, 5)),
    st.builds(lambda lo, n, q: {"distribution": "quniform", "low": lo, "high": lo + n, "q": q},
              st.integers(0, 4), st.integers(2, 8), st.integers(1, 2)).filter(lambda d: d["q"] <= d["high"] - d["low"]),
)
finite_spaces = st.dictionaries(st.sampled_from(["a", "b", "c"]), finite_domains, max_size=3)


def _random_spec(parameters, trials, seed, architecture="m", initial=None):
    search = {"strategy": "random", "trials": trials, "seed": seed}
    if initial is not None:
        search["initial"] = initial
    body = {"architecture": architecture, "date-range": [["2016-01-01", "2016-02-01"]],
            "parameters": parameters, "search": search}
    return parse_spec(json.dumps(body), today=TODAY)


@settings(max_examples=60, deadline=None)
@given(params=finite_spaces, trials=st.integers(1, 80), more=st.integers(0, 40), seed=st.integers(0, 2**32))
def test_random_search_over_a_finite_space_draws_without_replacement(params, trials, more, seed):
    names = list(params)
    supports = [{_key(v): v for v in _support(params[n])} for n in names]
    product = {_key(dict(zip(names, combo))) for combo in itertools.product(*(s.values() for s in supports))}
    configs = space(_random_spec(params, trials, seed))
    assert len(configs) == min(trials, len(product))  # capped at what the space has
    drawn = [configs[c] for c in range(len(configs))]
    keys = [_key(p) for _, p in drawn]
    assert len(set(keys)) == len(keys)  # no configuration twice
    assert set(keys) <= product
    if trials >= len(product):
        assert set(keys) == product  # every one of them
    longer = space(_random_spec(params, trials + more, seed))
    assert [longer[c] for c in range(len(configs))] == drawn  # prefix-stable
    trial_ids = [t.id for t in expand(_random_spec(params, trials, seed))]
    assert len(set(trial_ids)) == len(trial_ids)


@settings(max_examples=30, deadline=None)
@given(a=finite_spaces, b=finite_spaces, trials=st.integers(1, 60), seed=st.integers(0, 1000))
def test_random_search_across_finite_architectures_is_distinct_and_capped(a, b, trials, seed):
    spec = _random_spec({"m1": a, "m2": b}, trials, seed, architecture=["m1", "m2"])
    sizes = {}
    for arch, params in (("m1", a), ("m2", b)):
        combos = itertools.product(*({_key(v): v for v in _support(d)}.values() for d in params.values()))
        sizes[arch] = len({_key(dict(zip(params, combo))) for combo in combos})
    configs = space(spec)
    assert len(configs) == min(trials, sum(sizes.values()))
    keys = [_key(configs[c]) for c in range(len(configs))]
    assert len(set(keys)) == len(keys)
    counts = configurations_by_architecture(configs)
    assert all(counts[arch] <= sizes[arch] for arch in sizes) and sum(counts.values()) == len(configs)
    if trials >= sum(sizes.values()):
        assert counts == sizes


def test_random_search_keeps_the_raw_draws_when_a_domain_is_continuous():
    params = {"lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-1}, "h": [8, 16]}
    configs = space(_random_spec(params, 50, 3))
    assert len(configs) == 50
    assert [configs[c] for c in range(50)] == [configs.draw(c) for c in range(50)]


def test_random_search_distinct_configurations_are_the_raw_draws_without_repeats():
    """Configuration i is the i-th new raw draw: the draws' distribution (weights too), in their order."""
    params = {"a": [1, 2, 3], "b": {"distribution": "choice", "values": ["x", "y"], "weights": [3, 1]}}
    configs = space(_random_spec(params, 6, 11))
    first_seen = {}
    r = 0
    while len(first_seen) < 6:
        first_seen.setdefault(_key(configs.draw(r)), configs.draw(r))
        r += 1
    assert [configs[c] for c in range(6)] == list(first_seen.values())


def test_random_search_finds_every_configuration_of_a_skewed_space():
    """A value drawn once in a million still comes, after the raw-draw budget, from the rest of the
    product in a seeded order; a value of weight 0 never does."""
    params = {"a": {"distribution": "choice", "values": [1, 2, 3], "weights": [1e6, 1, 0]}, "b": [True, False]}
    configs = space(_random_spec(params, 10, 0))
    got = sorted((p["a"], p["b"]) for _, p in (configs[c] for c in range(len(configs))))
    assert got == [(1, False), (1, True), (2, False), (2, True)]
    assert configs.distinct == 4 and capped(configs) == (10, 4, 0)


def test_random_search_skips_an_initial_configuration(tmp_path):
    params = {"a": [1, 2, 3]}
    spec = _random_spec(params, 10, 0, initial=[{"a": 2}, {"a": 7}])
    trials = expand(spec)
    assert [t.params for t in trials] == [{"a": 2}, {"a": 7}, *[{"a": v} for v in _order_without(trials, 2)]]
    assert len({t.id for t in trials}) == len(trials) == 4
    assert capped(trials.space) == (10, 2, 1)  # {"a": 7} is not in the space
    path = tmp_path / "initial.json"
    path.write_text(json.dumps({"architecture": "m", "date-range": [["2016-01-01", "2016-02-01"]],
                                "parameters": params, "search": {"strategy": "random", "trials": 10,
                                                                 "initial": [{"a": 2}, {"a": 7}]}}))
    assert CliRunner().invoke(cli, ["validate", str(path)]).output.startswith(
        f"ok: {path}: 4 trials (m: 4 configurations x 1 date range x 1 repeat); search.trials is 10 but the space "
        "has 2 configurations besides the initial ones: random search runs all of them")


def _order_without(trials, initial):
    rest = [t.params["a"] for t in trials][initial:]
    assert sorted(rest) == [1, 3]
    return rest


def test_calibration_sample_of_a_small_space_is_all_of_it():
    spec = spec_of({"a": [1, 2, 3, 4, 5]})
    sample = sample_spec(spec, 8)
    assert sample.search.trials == 5
    assert sorted(p["a"] for _, p in (space(sample)[c] for c in range(5))) == [1, 2, 3, 4, 5]
    sample = sample_spec(spec_of({"a": [1, 2, 3, 4, 5], "b": list(range(10))}), 8)
    assert sample.search.trials == 8 and len({_key(space(sample)[c]) for c in range(8)}) == 8


def test_validate_and_expand_say_when_random_search_runs_the_whole_space(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text(json.dumps({"architecture": "tests.archs:noop", "date-range": [["2016-01-01", "2016-07-01"]],
                                "parameters": {"alpha": [1, 2]}, "search": {"strategy": "random", "trials": 5}}))
    runner = CliRunner()
    out = runner.invoke(cli, ["validate", str(path)]).output
    assert out.startswith(f"ok: {path}: 2 trials (tests.archs:noop: 2 configurations x 1 date range x 1 repeat); "
                          "search.trials is 5 but the space has 2 configurations: random search runs all of them")
    table = runner.invoke(cli, ["expand", str(path)]).output
    assert "trials   2 = 2 configurations" in table
    assert "note     search.trials is 5 but the space has 2 configurations" in table
    assert len(set(re.findall(r"\b[0-9a-f]{12}\b", table))) == 2
    doc = json.loads(runner.invoke(cli, ["expand", str(path), "--format", "json"]).output)
    assert doc["total"] == 2 and doc["note"].startswith("search.trials is 5")
    path.write_text(json.dumps({"architecture": "tests.archs:noop", "date-range": [["2016-01-01", "2016-07-01"]],
                                "parameters": {"alpha": [1, 2, 3]}, "search": {"strategy": "random", "trials": 3}}))
    assert "note" not in runner.invoke(cli, ["expand", str(path)]).output
    assert json.loads(runner.invoke(cli, ["expand", str(path), "--format", "json"]).output)["note"] is None


@pytest.mark.slow
def test_a_new_random_run_over_a_small_space_runs_each_configuration_once(tmp_path):
    path = write_spec(tmp_path, architecture="tests.archs:noop", parameters={"alpha": [1, 2]},
                      search={"strategy": "random", "trials": 5})
    result = subprocess.run([HPT, "run", str(path), "-o", str(tmp_path / "runs"), "-j", "2"], capture_output=True,
                            text=True, env=subprocess_env(), cwd=tmp_path, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "2 trials" in out and "done: 2 ok" in out and "done before this run" not in out
