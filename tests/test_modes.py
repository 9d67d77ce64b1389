"""Quick mode, auto mode, `hpt architectures` and `hpt calibrate`."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpt_cli.architectures import Architecture, get
from hpt_cli.architectures.synthetic import HARTMANN6_MIN, hartmann6
from hpt_cli.calibrate import Calibration, chance_p, rank_correlation, sample_spec
from hpt_cli.cli import cli
from hpt_cli.dates import DateRange, Length
from hpt_cli.errors import HptError
from hpt_cli.report.means import configuration_means
from hpt_cli.runner.run_id import run_id
from hpt_cli.search import StaticSearcher, expand, make_searcher, space
from hpt_cli.search.adaptive import OptunaSearcher
from hpt_cli.search.space import RandomSpace
from hpt_cli.spec import parse_spec
from hpt_cli.spec.auto import (
    AUTO_DATE_RANGES,
    AUTO_TRIALS,
    apply_auto,
    auto_spec,
    best_configuration,
    find_stage1_run,
)
from hpt_cli.spec.domains import Fixed
from hpt_cli.spec.model import QuickSpec
from hpt_cli.spec.modes import apply_quick, for_running
from hpt_cli.storage.results import Columns
from tests.helpers import HPT, subprocess_env, write_spec


def spec_of(**body):
    body.setdefault("architecture", "mlp")
    return parse_spec(json.dumps(body), today=date(2026, 11, 22))


def dr(start: str, end: str) -> DateRange:
    return DateRange(date.fromisoformat(start), date.fromisoformat(end))


# -- quick mode ------------------------------------------------------------------------------------
def test_quick_keeps_the_last_range_cut_to_its_last_month_with_20_epochs():
    full = spec_of(**{"date-range": [["2015-01-01", "2015-07-01"], ["2015-07-01", "2016-01-01"],
                                     ["2016-01-01", "2016-07-01"]], "parameters": {"lr": [0.001, 0.01]}})
    quick = apply_quick(full)
    assert quick.quick == QuickSpec(1, Length(1, "M"), 20)
    assert quick.date_ranges == (dr("2016-06-01", "2016-07-01"),)
    assert quick.trial.epochs == 20 and quick.mode == "quick"
    assert quick.parameters == full.parameters and full.mode == "full"  # pure: full untouched
    assert run_id(quick) != run_id(full)
    assert apply_quick(quick) == quick  # idempotent


def test_quick_block_sets_ranges_length_and_epochs_latest_by_end():
    full = spec_of(**{"date-range": [["2016-01-01", "2016-07-01"], ["2015-01-01", "2015-07-01"],
                                     ["2015-07-01", "2016-01-01"]],
                      "trial": {"epochs": 200},
                      "quick": {"date_ranges": 2, "train_length": "2W", "epochs": 5}})
    quick = apply_quick(full)
    # the two latest ranges, in the spec's order, each cut to its last two weeks
    assert quick.date_ranges == (dr("2016-06-17", "2016-07-01"), dr("2015-12-18", "2016-01-01"))
    assert quick.trial.epochs == 5  # the quick block's epochs replace trial.epochs


def test_quick_never_starts_before_the_range_and_clamps_month_ends():
    full = spec_of(**{"date-range": [["2016-03-01", "2016-03-31"], ["2016-06-15", "2016-07-01"]],
                      "quick": {"date_ranges": 2}})
    assert apply_quick(full).date_ranges == (dr("2016-03-01", "2016-03-31"), dr("2016-06-15", "2016-07-01"))
    leap = spec_of(**{"date-range": [["2015-06-01", "2016-03-31"]]})
    assert apply_quick(leap).date_ranges == (dr("2016-02-29", "2016-03-31"),)


def test_quick_merges_ranges_that_cut_to_the_same_range():
    full = spec_of(**{"date-range": [["2015-01-01", "2015-07-01"], ["2015-03-01", "2015-07-01"]],
                      "quick": {"date_ranges": 2}})
    assert apply_quick(full).date_ranges == (dr("2015-06-01", "2015-07-01"),)


def test_quick_fixes_a_tuned_epochs_parameter_at_its_epochs_so_no_trial_runs_twice():
    from hpt_cli.search import expand

    full = spec_of(**{"date-range": [["2015-01-01", "2015-07-01"]],
                      "parameters": {"lr": [0.001, 0.01], "epochs": [50, 100, 200]},
                      "search": {"initial": [{"lr": 0.003, "epochs": 400}]}})
    quick = apply_quick(full)
    trials = list(expand(quick))
    assert len(trials) == 3 and {t.params["epochs"] for t in trials} == {20}  # the initial one and 2
    assert len({t.id for t in trials}) == 3 and apply_quick(quick) == quick
    per_arch = apply_quick(spec_of(architecture=["mlp", "ridge"], parameters={
        "mlp": {"epochs": [10, 30]}, "ridge": {"alpha": [1.0, 2.0]}}))
    assert dict(per_arch.space_of("mlp"))["epochs"].value == 20


def test_quick_sets_a_fixed_epochs_of_a_built_in_and_leaves_your_own_function_s_epochs_alone():
    # review F13 (readme): a quick row said epochs=200 while it trained 20 (epochs_run=20)
    fixed = spec_of(**{"date-range": [["2015-01-01", "2015-07-01"]], "parameters": {"lr": [0.1, 0.2], "epochs": 30}})
    quick = apply_quick(fixed)
    assert dict(quick.space_of("mlp"))["epochs"].value == 20
    assert {t.params["epochs"] for t in expand(quick)} == {20}
    assert dict(apply_quick(fixed, fix_epochs=False).space_of("mlp"))["epochs"].value == 30  # calibrate's pairs
    own = spec_of(architecture="tests.archs:fault", parameters={"kind": "ok", "epochs": [5, 10]})
    assert dict(apply_quick(own).space_of("tests.archs:fault"))["epochs"].values == (5, 10)
    shared = spec_of(architecture=["mlp", "tests.archs:fault"], parameters={"epochs": [5, 10]})
    assert dict(apply_quick(shared).parameters)["epochs"].values == (5, 10)  # shared with a function of yours


def test_calibrate_pairs_quick_and_full_when_the_spec_fixes_or_tunes_epochs(tmp_path):
    from hpt_cli.calibrate import calibrate
    from hpt_cli.runner import RunOptions, run_spec

    run = lambda one: run_spec(one, RunOptions(output=str(tmp_path), workers=2))  # noqa: E731
    for epochs in (3, [2, 3]):
        spec = spec_of(**{"name": f"cal-{len(str(epochs))}", "date-range": [["2016-01-01", "2016-03-01"]],
                          "parameters": {"lr": [0.001, 0.01, 0.1], "hidden": [[8]], "epochs": epochs},
                          "quick": {"epochs": 2}})
        result = calibrate(spec, 3, run=run)
        assert result.n == 3 and result.exit_code == 0


def test_mode_quick_in_the_spec_is_applied_for_running_and_expand():
    spec = spec_of(**{"date-range": [["2015-01-01", "2015-07-01"]], "mode": "quick"})
    assert spec.date_ranges == (dr("2015-01-01", "2015-07-01"),)  # parsing alone changes nothing
    assert for_running(spec).date_ranges == (dr("2015-06-01", "2015-07-01"),)
    plain = spec_of(**{"date-range": [["2015-01-01", "2015-07-01"]]})
    assert for_running(plain) is plain and for_running(plain, quick=True).mode == "quick"
    # the resolved quick spec parses back to itself (spec.json of a quick run)
    quick = for_running(spec)
    again = parse_spec(json.dumps(quick.to_json()), today=quick.today)
    assert for_running(again).date_ranges == quick.date_ranges and for_running(again).trial == quick.trial


def test_expand_quick_shows_the_quick_trials(tmp_path):
    path = write_spec(tmp_path, architecture="ridge", parameters={"alpha": [1, 10]},
                      **{"date-range": [["2015-01-01", "2015-07-01"], ["2015-07-01", "2016-01-01"]]})
    result = CliRunner().invoke(cli, ["expand", str(path), "--quick", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["mode"] == "quick" and doc["epochs"] == 20 and doc["total"] == 2
    assert doc["date_ranges"] == [["2015-12-01", "2016-01-01"]]
    table = CliRunner().invoke(cli, ["expand", str(path), "--quick", "--limit", "0"]).output
    assert "in quick mode" in table and "20 epochs" in table


# -- auto mode -------------------------------------------------------------------------------------
def test_auto_stage1_mlp_tunes_the_learning_rate_parameters_only():
    spec = apply_auto("mlp")
    arch = get("mlp")
    assert spec.name == "mlp-auto-stage1" and spec.architectures == ("mlp",)
    assert spec.date_ranges == AUTO_DATE_RANGES
    assert spec.to_json()["parameters"] == {n: arch.default_space[n] for n in ("lr", "decay", "patience")}
    assert (spec.search.strategy, spec.search.trials, spec.search.seed) == ("random", AUTO_TRIALS, 0)
    assert spec.data.path is None  # the bundled data
    assert len(expand(spec)) == AUTO_TRIALS * 3


def test_auto_stage1_ridge_tunes_its_whole_space_and_has_no_stage2(tmp_path):
    spec = apply_auto("ridge")
    assert spec.name == "ridge-auto-stage1"
    assert spec.to_json()["parameters"] == get("ridge").default_space
    with pytest.raises(HptError, match="ridge has no stage 2: stage 1 tunes its whole default space"):
        apply_auto("ridge", 2, {})
    with pytest.raises(HptError, match="ridge has no stage 2"):
        auto_spec("ridge", 2, str(tmp_path))


def test_auto_from_a_spec_keeps_its_ranges_and_rejects_parameters():
    base = spec_of(**{"date-range": [["2016-01-01", "2016-07-01"]], "search": {"seed": 3, "trials": 5},
                      "mode": "quick"})
    spec = apply_auto(base)
    assert spec.date_ranges == base.date_ranges and spec.mode == "quick"
    assert (spec.search.seed, spec.search.trials, spec.search.strategy) == (3, 5, "random")
    with pytest.raises(HptError, match="auto mode chooses the parameters"):
        apply_auto(spec_of(parameters={"lr": 0.1}))
    with pytest.raises(HptError, match="one registered architecture"):
        apply_auto(spec_of(architecture=["ridge", "mlp"]))


def _fake_run(folder: Path, spec, rows: list[tuple[dict, str, float | None]]) -> None:
    """A run folder as `hpt run` leaves it: spec.json and results.csv with these (params, start, value)."""
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text(json.dumps(spec.to_json()))
    columns = Columns(spec.parameter_names, ["val_mse"])
    lines = [",".join(columns.header) + "\n"]
    ends = {r.start.isoformat(): r.end.isoformat() for r in spec.date_ranges}
    for i, (params, start, value) in enumerate(rows):
        fields = {"trial_id": f"t{i}", "status": "ok" if value is not None else "failed",
                  "architecture": spec.architectures[0], "start": start, "end": ends[start], "repeat": 0, "seed": 1}
        lines.append(columns.line(fields, params, {} if value is None else {"val_mse": value}))
    (folder / "results.csv").write_text("".join(lines))


def test_auto_stage2_fixes_the_learning_rate_at_stage1s_best_mean(tmp_path):
    spec1 = apply_auto("mlp")
    good = {"lr": 0.003, "decay": 0.95, "patience": 7}  # best mean over the three ranges
    lucky = {"lr": 0.05, "decay": 0.9, "patience": 3}  # best single value, worse mean
    partial = {"lr": 0.0001, "decay": 1.0, "patience": 4}  # best mean, but a range failed
    starts = [r.start.isoformat() for r in spec1.date_ranges]
    rows = ([(good, s, v) for s, v in zip(starts, [10.0, 11.0, 12.0])]
            + [(lucky, s, v) for s, v in zip(starts, [5.0, 20.0, 20.0])]
            + [(partial, s, v) for s, v in zip(starts, [1.0, 1.0, None])])
    _fake_run(tmp_path / run_id(spec1), spec1, rows)
    said = []
    spec2 = auto_spec("mlp", 2, str(tmp_path), say=said.append)
    assert spec2.name == "mlp-auto-stage2"
    domains = dict(spec2.parameters)
    assert {n: domains[n] for n in good} == {n: Fixed(v) for n, v in good.items()}
    rest = [n for n in get("mlp").default_space if n not in good]
    assert [n for n, _ in spec2.parameters if n not in good] == rest
    assert "lr=0.003" in said[0]


def test_auto_stage2_without_stage1_says_what_to_run(tmp_path):
    with pytest.raises(HptError, match=r"^run stage 1 first: hpt run --auto mlp --quick \("):
        auto_spec("mlp", 2, str(tmp_path), quick=True)


def test_auto_stage2_finds_a_stage1_run_with_another_budget(tmp_path):
    spec1 = for_running(apply_auto("mlp", trials=3), quick=True)
    start = spec1.date_ranges[0].start.isoformat()
    _fake_run(tmp_path / run_id(spec1), spec1, [({"lr": 0.02, "decay": 0.99, "patience": 5}, start, 3.0)])
    default_budget = for_running(apply_auto("mlp"), quick=True)
    assert run_id(default_budget) == run_id(spec1)  # the budget is not in the run id
    assert find_stage1_run(default_budget, str(tmp_path)) == str(tmp_path / run_id(spec1))
    assert find_stage1_run(apply_auto("mlp"), str(tmp_path)) is None  # full mode: another run
    spec2 = auto_spec("mlp", 2, str(tmp_path), quick=True)
    assert dict(spec2.parameters)["lr"] == Fixed(0.02) and spec2.mode == "quick"


def test_auto_stage2_continues_from_the_best_stage1_run(tmp_path):
    """Review finding 4: a better stage-1 run (a --fresh one, or one of an hpt whose run ids held the
    budget) was passed over for the run of the spec's own id."""
    spec1 = for_running(apply_auto("mlp"), quick=True)
    start = spec1.date_ranges[0].start.isoformat()
    rid = run_id(spec1)
    good, better = {"lr": 0.02, "decay": 0.99, "patience": 5}, {"lr": 0.04, "decay": 0.95, "patience": 4}
    _fake_run(tmp_path / rid, spec1, [(good, start, 3.0)])
    _fake_run(tmp_path / f"{rid}-20261122-093000", spec1, [(better, start, 2.0)])  # --fresh
    legacy = tmp_path / f"{spec1.name}-0123abcd"  # the old id of a --trials 30 run
    _fake_run(legacy, for_running(apply_auto("mlp", trials=30), quick=True), [(good, start, 2.5)])
    maximised = parse_spec(json.dumps({**spec1.to_json(), "objective": {"metric": "val_mse", "mode": "max"}}))
    _fake_run(tmp_path / f"{spec1.name}-fedcba98", maximised, [(good, start, 1.0)])  # another objective
    said = []
    spec2 = auto_spec("mlp", 2, str(tmp_path), quick=True, say=said.append)
    assert dict(spec2.parameters)["lr"] == Fixed(0.04)
    assert said == [f"stage 2 continues from stage 1's best at {tmp_path / rid}-20261122-093000: "
                    "lr=0.04, decay=0.95, patience=4 (mean val_mse 2)"]
    (tmp_path / f"{rid}-20261122-093000" / "results.csv").unlink()
    assert find_stage1_run(spec1, str(tmp_path)) == str(legacy)


def test_hpt_run_auto_mlp_quick_then_stage2(tmp_path):
    out = tmp_path / "runs"
    env = subprocess_env()
    first = subprocess.run([HPT, "run", "--auto", "mlp", "--quick", "--trials", "4", "-o", str(out), "-j", "2"],
                           capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path, check=False)
    assert first.returncode == 0, first.stderr
    assert f"next: hpt run --auto mlp --quick --output {out} --trials 4 --stage 2" in first.stderr
    second = subprocess.run([HPT, "run", "--auto", "mlp", "--quick", "--stage", "2", "--trials", "3",
                             "-o", str(out), "-j", "2"], capture_output=True, text=True, env=env, timeout=120,
                            cwd=tmp_path, check=False)
    assert second.returncode == 0, second.stderr
    (stage1,) = out.glob("mlp-auto-stage1-*")
    (stage2,) = out.glob("mlp-auto-stage2-*")
    from hpt_cli.spec.auto import best_configuration

    best, best_mean = best_configuration(str(stage1))
    params = json.loads((stage2 / "spec.json").read_text())["parameters"]
    assert {n: params[n] for n in ("lr", "decay", "patience")} == best
    assert set(params) == set(get("mlp").default_space)
    assert json.loads((stage2 / "spec.json").read_text())["date-range"] == [["2016-06-01", "2016-07-01"]]
    # stage 2 re-ran stage 1's winner (the same trial, the same value): it recommends nothing worse
    (winner,) = [r for r in read_csv(stage2) if r["hidden"] == ""]  # the other parameters at mlp's defaults
    assert {n: winner[n] for n in ("batch_size", "l2")} == {"batch_size": "", "l2": ""}
    assert winner["val_mse"] == {r["trial_id"]: r["val_mse"] for r in read_csv(stage1)}[winner["trial_id"]]
    assert best_configuration(str(stage2))[1] <= best_mean


# -- auto stage 2 re-evaluates stage 1's winner first ----------------------------------------------
# A benchmark with learning-rate parameters, so it has a stage 2: Hartmann-6 with x1, x2 as the
# "learning rate" and x3..x6 at their optimum when a configuration leaves them out (the
# architecture's defaults). Stage 2's default space misses those defaults (x4's choices, x5's
# log range exclude them), as mlp's excludes its l2 = 0: every configuration stage 2 draws is
# worse than stage 1's winner, which only re-evaluating that winner can recommend.
HARTMANN6_ARGMIN = (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)


def _train_lr_hartmann6(params: dict, ctx) -> dict[str, float]:
    x = tuple(float(params.get(f"x{i}", default)) for i, default in enumerate(HARTMANN6_ARGMIN, 1))
    return {"val_mse": hartmann6(x) - HARTMANN6_MIN}


LR_HARTMANN6 = Architecture(
    name="lr-hartmann6", train=_train_lr_hartmann6,
    default_space={"x1": {"distribution": "uniform", "low": 0.0, "high": 1.0},
                   "x2": {"distribution": "uniform", "low": 0.0, "high": 1.0},
                   "x3": {"distribution": "uniform", "low": 0.0, "high": 1.0},
                   "x4": [0.1, 0.5, 0.9],
                   "x5": {"distribution": "loguniform", "low": 0.4, "high": 1.0},
                   "x6": {"distribution": "int", "low": 0, "high": 1}},
    lr_params=("x1", "x2"), metrics=("val_mse",), needs_data=False,
)
LR_HARTMANN6_REF = "tests.test_modes:LR_HARTMANN6"


def _run_in_process(spec, output: Path) -> Path:
    """`hpt run` of `spec` in this process, as the runner does it (ask, train, tell, one row per
    trial) with no workers: the run folder under `output`."""
    folder = output / run_id(spec)
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text(json.dumps(spec.to_json()))
    columns = Columns(spec.parameter_names, ["val_mse"])
    lines = [",".join(columns.header) + "\n"]
    searcher = make_searcher(spec)
    while (trial := searcher.ask()) is not None:
        metrics = get(trial.architecture).train(dict(trial.params), None)
        searcher.tell(trial, metrics)
        start, end = trial.date_range.to_json()
        fields = {"trial_id": trial.id, "status": "ok", "architecture": trial.architecture,
                  "start": start, "end": end, "repeat": trial.repeat, "seed": trial.seed}
        lines.append(columns.line(fields, trial.params, metrics))
    (folder / "results.csv").write_text("".join(lines))
    return folder


def read_csv(folder: Path) -> list[dict[str, str]]:
    with open(folder / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def _auto_base(seed: int):
    body = {"name": "bench", "architecture": LR_HARTMANN6_REF, "search": {"seed": seed},
            "date-range": [r.to_json() for r in AUTO_DATE_RANGES]}
    return parse_spec(json.dumps(body), today=date(2026, 11, 22))


def _two_stages(output: Path, seed: int, strategy: str | None = None):
    base = _auto_base(seed)
    stage1 = _run_in_process(auto_spec(base, 1, str(output), strategy=strategy), output)
    spec2 = auto_spec(base, 2, str(output), strategy=strategy)
    return stage1, spec2, _run_in_process(spec2, output)


def test_auto_stage2_runs_stage1s_winner_first_with_its_exact_values(tmp_path):
    spec1 = apply_auto("mlp")
    good = {"lr": 0.003, "decay": 0.95, "patience": 7}
    other = {"lr": 0.05, "decay": 0.9, "patience": 3}
    starts = [r.start.isoformat() for r in spec1.date_ranges]
    _fake_run(tmp_path / run_id(spec1), spec1, [(good, s, 10.0) for s in starts] + [(other, s, 20.0) for s in starts])
    winner, _ = best_configuration(str(tmp_path / run_id(spec1)))
    assert winner == good and type(winner["patience"]) is int

    spec2 = auto_spec("mlp", 2, str(tmp_path))  # random: configuration 0 is the winner
    assert spec2.search.initial == (("mlp", good),)
    trials = expand(spec2)
    assert len(trials.space) == AUTO_TRIALS + 1 and len(trials) == (AUTO_TRIALS + 1) * 3
    assert [(trials[t].params, trials[t].date_range) for t in range(3)] == [(good, r) for r in spec2.date_ranges]
    assert all(set(trials[t].params) == set(get("mlp").default_space) for t in range(3, len(trials)))
    # the searched configurations are the ones stage 2 drew before: the winner comes on top
    assert [trials.space[c] for c in range(1, AUTO_TRIALS + 1)] == [RandomSpace(spec2)[c] for c in range(AUTO_TRIALS)]
    assert isinstance(make_searcher(spec2), StaticSearcher)

    tpe = apply_auto("mlp", 2, winner, strategy="tpe")  # adaptive: asked before the study
    searcher = make_searcher(tpe)
    assert isinstance(searcher, OptunaSearcher) and searcher.total() == (AUTO_TRIALS + 1) * 3
    first = [searcher.ask() for _ in range(4)]
    assert [(t.params, t.date_range) for t in first[:3]] == [(good, r) for r in tpe.date_ranges]
    assert set(first[3].params) == set(get("mlp").default_space)
    assert len(searcher.study.trials) == 1  # the winner is no study trial; the 4th trial's configuration is


def test_only_auto_stage2_specs_get_an_initial_configuration():
    assert apply_auto("mlp").search.initial == ()  # stage 1
    stage2 = apply_auto("mlp", 2, {"lr": 0.01, "decay": 0.9, "patience": 5})
    assert stage2.search.initial == (("mlp", {"lr": 0.01, "decay": 0.9, "patience": 5}),)
    # stage 2's spec.json says so, and expands to the same trials
    assert stage2.to_json()["search"]["initial"] == [{"lr": 0.01, "decay": 0.9, "patience": 5}]
    again = parse_spec(json.dumps(stage2.to_json()), today=stage2.today)
    assert [t.id for t in expand(again)] == [t.id for t in expand(stage2)]


@pytest.mark.parametrize("strategy", ["random", "tpe"])
@pytest.mark.parametrize("seed", [0, 1])
def test_auto_stage2_never_recommends_worse_than_stage1s_winner(tmp_path, strategy, seed):
    stage1, _, stage2 = _two_stages(tmp_path, seed, strategy)
    winner, winner_mean = best_configuration(str(stage1))
    best2, best2_mean = best_configuration(str(stage2))
    assert best2_mean <= winner_mean
    # stage 2 re-ran the winner's very trials (same ids, same values) ...
    rows1 = {r["trial_id"]: r["val_mse"] for r in read_csv(stage1) if r["x1"] == repr(winner["x1"])}
    rows2 = read_csv(stage2)
    assert {r["trial_id"]: r["val_mse"] for r in rows2[:3]} == rows1
    assert all(r["x3"] == "" for r in rows2[:3]) and all(r["x3"] != "" for r in rows2[3:])
    # ... and needed to: every configuration stage 2 drew is worse than the winner
    drawn = [m.mean for m in configuration_means(str(stage2))[1] if m.params != winner]
    assert len(drawn) == AUTO_TRIALS and min(drawn) > winner_mean
    assert best2 == winner


@pytest.mark.parametrize("strategy", ["random", "tpe"])
def test_auto_stage2_same_inputs_and_seed_same_trials(tmp_path, strategy):
    runs = [_two_stages(tmp_path / name, 3, strategy) for name in ("a", "b")]
    (a1, _, a2), (b1, _, b2) = runs
    assert (a1 / "results.csv").read_text() == (b1 / "results.csv").read_text()
    assert (a2 / "results.csv").read_text() == (b2 / "results.csv").read_text()
    other = _two_stages(tmp_path / "c", 4, strategy)[2]
    assert read_csv(other)[3:] != read_csv(a2)[3:]  # another seed: other draws, the winner still first
    assert all(r["x3"] == "" for r in read_csv(other)[:3])


def test_a_resumed_adaptive_stage2_runs_the_winner_once_and_keeps_its_budget(tmp_path):
    _, spec2, stage2 = _two_stages(tmp_path, 0, "tpe")
    rows = read_csv(stage2)
    resumed = make_searcher(spec2)
    resumed.replay(rows[:3])  # only the winner's rows: nothing for the study, nothing to rerun
    first = resumed.ask()
    assert resumed.started == 1 and set(first.params) == set(LR_HARTMANN6.default_space)
    done = make_searcher(spec2)
    done.replay(rows)  # all of them: the 12 searched configurations fill the budget
    assert done.ask() is None and done.started == AUTO_TRIALS and len(done.study.trials) == AUTO_TRIALS


def test_hpt_run_auto_stage2_reevaluates_stage1s_winner(tmp_path):
    out = tmp_path / "runs"
    env = subprocess_env()
    for stage in ("1", "2"):
        done = subprocess.run([HPT, "run", "--auto", LR_HARTMANN6_REF, "--stage", stage, "--trials", "4",
                               "-o", str(out), "-j", "2"], capture_output=True, text=True, env=env,
                              timeout=120, cwd=tmp_path, check=False)
        assert done.returncode == 0, done.stderr
    (stage1,) = out.glob("lr-hartmann6-auto-stage1-*")
    (stage2,) = out.glob("lr-hartmann6-auto-stage2-*")
    winner, winner_mean = best_configuration(str(stage1))
    assert best_configuration(str(stage2))[1] <= winner_mean
    rows1 = {r["trial_id"]: r["val_mse"] for r in read_csv(stage1) if r["x1"] == repr(winner["x1"])}
    rows2 = {r["trial_id"]: r["val_mse"] for r in read_csv(stage2) if r["x3"] == ""}
    assert rows2 == rows1 and len(read_csv(stage2)) == (4 + 1) * 3
    assert "auto stage 2: best mean val_mse" in done.stderr


def test_hpt_run_usage_errors():
    runner = CliRunner()
    assert "give a SPEC, or --auto ARCH" in runner.invoke(cli, ["run"]).output
    assert runner.invoke(cli, ["run", "--stage", "2", "x.json"]).exit_code == 2
    both = runner.invoke(cli, ["run", "x.json", "--auto", "mlp"])
    assert both.exit_code == 2 and "not both" in both.output


# -- hpt architectures -----------------------------------------------------------------------------
def test_architectures_lists_names_and_spaces_with_lr_marked():
    plain = CliRunner().invoke(cli, ["architectures"])
    assert plain.exit_code == 0
    assert re.search(r"^mlp\s+val_mse, val_mae", plain.output, re.MULTILINE)
    assert re.search(r"^ridge\s+val_mse", plain.output, re.MULTILINE)
    spaced = CliRunner().invoke(cli, ["architectures", "--space"]).output
    mlp = spaced.split("\n\n")[0]
    assert '  * lr          {"distribution": "loguniform", "low": 0.0001, "high": 0.1}' in mlp
    assert '    hidden      [[32], [64], [64, 32]]' in mlp
    assert "no learning-rate parameters" in spaced.split("\n\n")[1]
    doc = json.loads(CliRunner().invoke(cli, ["architectures", "--format", "json"]).output)
    assert doc["mlp"]["lr_params"] == ["lr", "decay", "patience"]
    assert doc["ridge"]["default_space"] == get("ridge").default_space


# -- hpt calibrate ---------------------------------------------------------------------------------
def test_rank_correlation_and_its_intervals():
    for method in ("bootstrap", "fisher"):  # a perfect agreement of a few: no interval, not certainty
        rho, low, high = rank_correlation([1, 2, 3, 4, 5, 6], [10, 20, 30, 40, 50, 60], method)
        assert rho == pytest.approx(1.0) and math.isnan(low) and math.isnan(high)
    assert chance_p([1, 2, 3], [1, 2, 3]) == pytest.approx(1 / 6)  # 1 ordering of 3! agrees as well
    assert chance_p([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]) == pytest.approx(1 / 120)
    assert chance_p([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == 1.0
    quick, full = [1, 2, 3, 4, 5, 6, 7, 8], [2, 1, 4, 3, 6, 5, 8, 7]
    rho, low, high = rank_correlation(quick, full, seed=0)
    assert rho == pytest.approx(0.9047619) and low < rho <= high <= 1.0
    assert rank_correlation(quick, full, seed=0) == (rho, low, high)  # seeded
    rho_f, low_f, high_f = rank_correlation(quick, full, "fisher")
    assert rho_f == rho and 0.4 < low_f < rho < high_f < 1.0  # Bonett-Wright: wider than 1.06/(n-3)
    with pytest.raises(HptError, match="at least 3"):
        rank_correlation([1, 2], [1, 2])


def test_sample_spec_draws_distinct_configurations_across_architectures():
    spec = spec_of(architecture=["ridge", "mlp"], parameters={
        "ridge": {"alpha": [0.1, 1.0, 10.0], "lags": [7, 14]},
        "mlp": {"lr": [0.001, 0.01], "hidden": [[32], [64]], "epochs": 200}})
    sample = sample_spec(spec, 6, seed=0)
    assert sample.search.strategy == "random" and sample.mode == "full"
    configs = [space(sample)[c] for c in range(sample.search.trials)]
    distinct = {json.dumps(c, sort_keys=True) for c in configs}
    assert len(distinct) == 6 and {a for a, _ in configs} == {"ridge", "mlp"}
    assert all(p["epochs"] == 200 for a, p in configs if a == "mlp")
    with pytest.raises(HptError, match="2 distinct configurations"):
        sample_spec(spec_of(architecture="ridge", parameters={"alpha": [1.0, 2.0]}), 8)


def test_hpt_calibrate_prints_rho_and_its_interval(tmp_path):
    path = write_spec(tmp_path, name="cal", architecture="ridge",
                      parameters={"alpha": [0.01, 1.0, 100.0, 10000.0], "lags": [7, 14]},
                      **{"date-range": [["2015-01-01", "2015-04-01"], ["2015-04-01", "2015-07-01"]]})
    result = subprocess.run([HPT, "calibrate", str(path), "--sample", "5", "-o", str(tmp_path / "runs"),
                             "-j", "2", "-q"], capture_output=True, text=True, env=subprocess_env(),
                            timeout=120, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "quick  1 date range (2015-06-01..2015-07-01), 20 epochs" in out
    assert re.search(r"^configuration\s+quick\s+full\s+quick rank\s+full rank$", out, re.MULTILINE)
    assert len(re.findall(r"^ridge alpha=", out, re.MULTILINE)) == 5
    assert re.search(r"^Spearman rho = -?\d\.\d\d \(95% CI (-?\d\.\d\d\.\.-?\d\.\d\d, bootstrap, n=5|: none, every "
                     r"resample agrees, n=5); by chance p = [\d.e-]+\)$", out, re.MULTILINE)
    assert out.endswith("note: 5 configurations are few to judge by (an interval of so few is wide or none): "
                        "use --sample 8 or more\n")


def test_a_perfect_agreement_of_three_says_no_interval_and_the_chance_of_it():
    c = Calibration(None, None, rows=[None] * 3, rho=1.0, low=float("nan"), high=float("nan"), p=1 / 6)
    assert c.line() == "Spearman rho = 1.00 (95% CI: none, every resample agrees, n=3; by chance p = 0.167)"


def test_calibrate_ranks_its_own_sample_when_the_folders_hold_a_larger_one(tmp_path):
    from hpt_cli.calibrate import calibrate
    from hpt_cli.runner import RunOptions, run_spec

    spec = spec_of(architecture="branin", parameters={"x1": [-3.0, -1.0, 0.0, 1.0, 2.0, 3.0, 5.0, 7.0, 9.0],
                                                      "x2": [1.0, 2.0]})
    run = lambda one: run_spec(one, RunOptions(output=str(tmp_path), workers=2))  # noqa: E731
    assert calibrate(spec, 12, run=run).n == 12
    again = calibrate(spec, 4, run=run)  # the same folders (the budget is not in the run id)
    assert again.n == 4 and {r.label for r in again.rows} <= {r.label for r in calibrate(spec, 12, run=run).rows}
