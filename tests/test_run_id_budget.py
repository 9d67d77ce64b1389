"""What the run id holds (review of smart search, findings 2 and 3): the budget (`search.trials`,
`--trials`, `search.max_time`, `search.initial`) is not in it, so a larger budget resumes the run
and adds to it; an adaptive search's objective is, so a search steered by another metric is
another run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from hpt_cli.runner import RunOptions, run_spec
from hpt_cli.runner.run_id import run_id
from hpt_cli.spec import parse_spec

SPACE = {"x1": {"distribution": "uniform", "low": -5, "high": 10},
         "x2": {"distribution": "uniform", "low": 0, "high": 15}}


def _spec(strategy: str = "random", name: str = "budget", objective: dict | None = None, **search):
    doc = {"name": name, "architecture": "branin", "parameters": SPACE,
           "search": {"strategy": strategy, "seed": 3, **search}}
    if objective is not None:
        doc["objective"] = objective
    return parse_spec(json.dumps(doc))


def _run(spec, output: Path) -> tuple[str, int, int]:
    """(run id, rows it found, rows it added) of one `hpt run` of `spec` into `output`."""
    before = len(_ids(output, run_id(spec)))
    result = run_spec(spec, RunOptions(output=str(output), workers=1))
    assert result.exit_code == 0 and result.run_id == run_id(spec)
    return result.run_id, before, len(_ids(output, result.run_id)) - before


def _ids(output: Path, rid: str) -> list[str]:
    if not (output / rid / "results.csv").is_file():
        return []
    with open(output / rid / "results.csv", newline="") as f:
        return [row["trial_id"] for row in csv.DictReader(f)]


def test_grid_ids_quoted_in_the_readme_stay_as_they_were():
    from hpt_cli.spec.parse import load_spec

    root = Path(__file__).resolve().parent.parent
    assert run_id(load_spec(root / "experiments" / "quickstart.json")) == "quickstart-6df2cb09"


@pytest.mark.parametrize("strategy", ["random", "grid", "tpe"])
def test_the_budget_is_not_in_the_run_id(strategy):
    base = run_id(_spec(strategy if strategy != "grid" else "random"))
    if strategy == "grid":
        grid = {"name": "budget", "architecture": "branin", "parameters": {"x1": [1.0, 2.0, 3.0], "x2": 1.0}}
        base = run_id(parse_spec(json.dumps(grid)))
        for search in ({"trials": 2}, {"initial": [{"x1": 0.0, "x2": 1.0}]}):
            assert run_id(parse_spec(json.dumps({**grid, "search": search}))) == base
        return
    for search in ({"trials": 10}, {"trials": 15}, {"max_time": "2m"}, {"initial": [{"x1": 0.0, "x2": 1.0}]}):
        assert run_id(_spec(strategy, **search)) == base
    assert run_id(_spec(strategy, seed=4)) != base  # the seed decides the trials: another run


def test_the_objective_is_in_an_adaptive_run_id_only():
    other = {"metric": "val_mse", "mode": "max"}
    for strategy in ("tpe", "gp", "cmaes", "qmc"):
        assert run_id(_spec(strategy, objective=other)) != run_id(_spec(strategy))
    assert run_id(_spec("random", objective=other)) == run_id(_spec("random"))  # the same trials


def test_random_search_resumes_with_a_larger_budget_and_skips_with_a_smaller_one(tmp_path):
    rid, done, ran = _run(_spec(trials=10), tmp_path)
    assert (done, ran) == (0, 10)
    assert _run(_spec(trials=15), tmp_path) == (rid, 10, 5)  # only the 5 new configurations
    assert _run(_spec(trials=10), tmp_path) == (rid, 15, 0)  # a smaller budget: nothing to run
    ids = _ids(tmp_path, rid)
    assert len(ids) == len(set(ids)) == 15
    fresh = tmp_path / "fresh"
    other, _, _ = _run(_spec(trials=15), fresh)
    assert _ids(fresh, other) == ids  # what one 15-trial run gives
    baseline = {"x1": 0.0, "x2": 1.0}
    assert _run(_spec(trials=15, initial=[baseline]), tmp_path) == (rid, 15, 1)  # the new baseline alone
    assert [p.name for p in tmp_path.iterdir() if p.name != "fresh"] == [rid]


def test_an_adaptive_search_resumes_with_a_larger_budget(tmp_path):
    rid, done, ran = _run(_spec("tpe", trials=10), tmp_path)
    assert (done, ran) == (0, 10)
    assert _run(_spec("tpe", trials=15), tmp_path) == (rid, 10, 5)  # the study replays the 10 first
    assert _run(_spec("tpe", trials=10), tmp_path) == (rid, 15, 0)
    assert _run(_spec("tpe", trials=15, initial=[{"x1": 0.0, "x2": 1.0}]), tmp_path) == (rid, 15, 1)
    ids = _ids(tmp_path, rid)
    assert len(ids) == len(set(ids)) == 16


def test_an_adaptive_search_for_another_objective_is_another_run(tmp_path):
    rid, _, _ = _run(_spec("tpe", trials=4), tmp_path)
    other, done, ran = _run(_spec("tpe", trials=4, objective={"metric": "val_mse", "mode": "max"}), tmp_path)
    assert other != rid and (done, ran) == (0, 4)


def test_max_time_is_the_run_s_a_rerun_searches_what_is_left_of_it():
    from hpt_cli.search.adaptive import OptunaSearcher, searched_seconds

    rows = [{"started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:10Z"},
            {"started_at": "2026-01-01T00:00:05Z", "ended_at": "2026-01-01T00:00:12Z"},  # overlaps: 2 s more
            {"started_at": "2026-01-01T01:00:00Z", "ended_at": "2026-01-01T01:00:03Z"},  # another attempt
            {"started_at": "", "ended_at": ""}]
    assert searched_seconds(rows) == 15.0
    now = iter(range(1000, 2000))
    searcher = OptunaSearcher(_spec("tpe", trials=50, max_time="20s"), clock=lambda: float(next(now)))
    searcher.replay([{**r, "trial_id": f"t{i}", "status": "failed"} for i, r in enumerate(rows[:3])])
    asked = list(iter(searcher.ask, None))  # 20 - 15 s: the deadline is 1005, the clock ticks 1 s a call
    assert len(asked) == 4
