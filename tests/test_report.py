"""`hpt report`: ranking, significance (checked against scipy), effects, merge, runs in progress,
failures, the formats, and a run on the GCS emulator read while it grows."""

from __future__ import annotations

import base64
import csv
import io
import json
import re

import numpy as np
import pytest
import scipy.stats
from click.testing import CliRunner

import hpt_cli.cli.report_command  # noqa: F401  (registers `hpt report` until cli/__init__ imports it)
from hpt_cli.cli import cli
from hpt_cli.report import analyse, build_report, load_results
from hpt_cli.report.stats import holm, paired_test
from hpt_cli.storage.results import LEAD, TAIL

RANGES6 = [(f"20{y}-01-01", f"20{y}-07-01") for y in range(14, 20)]
# (lr, hidden) -> offset on the objective: lr=0.01, hidden=[64] is the true winner (lowest)
CONFIGS = {(0.01, (64,)): 0.0, (0.01, (32,)): 1.0, (0.001, (64,)): 2.0, (0.001, (32,)): 3.0}


def spec_doc(ranges, repeats=1, mode="min", params=("lr", "hidden")):
    return {"name": "syn", "architecture": "mlp", "date-range": [list(r) for r in ranges],
            "parameters": {p: [0] for p in params}, "search": {"strategy": "grid", "seed": 0, "repeats": repeats},
            "objective": {"metric": "val_mse", "mode": mode}, "metrics": ["val_mse"]}


def rows_for(ranges, repeats=2, seed=0, configs=CONFIGS, t0=0):
    """One ok row per (configuration, date range, repeat): base per range + offset + noise."""
    rng = np.random.default_rng(seed)
    out = []
    t = t0
    for (lr, hidden), offset in configs.items():
        for i, (start, end) in enumerate(ranges):
            for k in range(repeats):
                value = float(10.0 + 3 * i + offset + rng.normal(0, 0.3))
                trial = f"t{len(out) + t0:04d}"
                out.append({"trial_id": trial, "status": "ok", "architecture": "mlp", "start": start,
                            "end": end, "repeat": str(k), "seed": "1", "lr": repr(lr),
                            "hidden": json.dumps(list(hidden)), "val_mse": repr(value), "attempts": "1",
                            "started_at": f"2026-01-01T00:{t // 60:02d}:{t % 60:02d}.000Z",
                            "ended_at": f"2026-01-01T00:{(t + 1) // 60:02d}:{(t + 1) % 60:02d}.000Z",
                            "duration_s": "1.0", "worker": "w0", "device": "cpu",
                            "artifact_dir": f"trials/{trial}"})
                t += 1
    return out


def csv_text(rows, params=("lr", "hidden")):
    header = [*LEAD, *params, "val_mse", *TAIL]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(h, "") for h in header])
    return buf.getvalue()


def write_run(folder, rows, ranges, repeats=2, mode="min", summary=True, tail=""):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.json").write_text(json.dumps(spec_doc(ranges, repeats, mode)))
    (folder / "results.csv").write_text(csv_text(rows) + tail)
    if summary:
        (folder / "summary.json").write_text(json.dumps({"status": "complete", "exit_code": 0}))
    return str(folder)


def report(*args):
    return CliRunner().invoke(cli, ["report", *args])


@pytest.fixture
def synthetic(tmp_path):
    rows = rows_for(RANGES6, repeats=2)
    return write_run(tmp_path / "syn-1", rows, RANGES6), rows


# -- acceptance 1: the known winner, its flag, and p-values as scipy gives them ------------------

def test_the_true_winner_ranks_first_wins_every_range_and_p_values_match_scipy(synthetic):
    uri, rows = synthetic
    rep = build_report([uri])
    best = rep.ranking[0]
    assert best.label == "mlp lr=0.01 hidden=[64]" and best.params == {"lr": 0.01, "hidden": [64]}
    assert best.wins_every_range and not any(c.wins_every_range for c in rep.ranking[1:])
    assert all(best.range_ranks[r] == 1 for r in rep.ranges) and best.n == 6  # date ranges, not cells

    def cells(lr, hidden):  # each date range's mean over its 2 repeats: the date range is the unit
        got = {}
        for r in rows:
            if r["lr"] == repr(lr) and r["hidden"] == json.dumps(hidden):
                got.setdefault(r["start"], []).append(float(r["val_mse"]))
        return [np.mean(got[k]) for k in sorted(got)]

    b = cells(0.01, [64])
    raw = [scipy.stats.wilcoxon(b, cells(lr, h)).pvalue for lr, h in ((0.01, [32]), (0.001, [64]), (0.001, [32]))]
    expected = holm(raw)
    assert [c.test for c in rep.comparisons] == ["wilcoxon"] * 3
    assert [c.p for c in rep.comparisons] == pytest.approx(raw, rel=1e-12)
    assert [c.p_holm for c in rep.comparisons] == pytest.approx(expected, rel=1e-12)
    assert all(c.ranges_won == 6 and c.pairs == 6 for c in rep.comparisons)
    # better on all 6 ranges: the smallest exact two-sided p, 2/2^6; Holm over 3 takes it past 0.05
    assert raw == pytest.approx([2 / 2**6] * 3) and not any(c.significant for c in rep.comparisons)
    # confidence interval: t distribution over the 6 date ranges' means
    m, s = np.mean(b), np.std(b, ddof=1)
    half = scipy.stats.t.ppf(0.975, 5) * s / np.sqrt(6)
    assert (best.mean, best.std, best.ci_low, best.ci_high) == pytest.approx((m, s, m - half, m + half))


def test_few_pairs_use_a_paired_t_test_and_say_why(tmp_path):
    ranges = RANGES6[:4]
    rows = rows_for(ranges, repeats=1)
    rep = build_report([write_run(tmp_path / "r", rows, ranges, repeats=1)])
    comp = rep.comparisons[0]
    assert comp.test == "t-test" and "fewer than 6" in comp.why
    b = [float(r["val_mse"]) for r in rows if r["lr"] == "0.01" and r["hidden"] == "[64]"]
    o = [float(r["val_mse"]) for r in rows if r["lr"] == "0.01" and r["hidden"] == "[32]"]
    assert comp.p == pytest.approx(scipy.stats.ttest_rel(b, o).pvalue, rel=1e-12)


def test_holm():
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert holm([0.5, 0.4]) == [0.8, 0.8]  # 2 x 0.4, then max(0.8, 0.5)
    assert holm([0.9, 0.001, 0.2]) == pytest.approx([0.9, 0.003, 0.4])
    assert holm([]) == [] and holm([None]) == [None]


def test_paired_test_without_spread():
    assert paired_test([1.0], [2.0]).test is None
    assert paired_test([1.0, 2.0], [1.0, 2.0]).test is None


def test_effects_and_trajectory(synthetic):
    uri, _ = synthetic
    rep = build_report([uri])
    effects = {e.parameter: e for e in rep.effects}
    assert effects["lr"].consistent == "0.01" and effects["hidden"].consistent == "[64]"
    assert [lv.value for lv in effects["lr"].levels] == ["0.001", "0.01"]
    assert effects["lr"].levels[0].n == 24 and effects["lr"].ranges == 6
    (traj,) = rep.trajectories
    bests = [s.best for s in traj.steps]
    assert bests == sorted(bests, reverse=True) and bests[-1] == pytest.approx(rep.ranking[0].mean)
    assert traj.steps[0].trial_time_s == 12.0 and traj.trial_time_s == 48.0  # 12 trials per configuration
    assert traj.wall_time_s == 48.0
    assert rep.best_trial.artifact.startswith(uri + "/trials/t")


def test_continuous_parameters_are_binned(tmp_path):
    ranges = RANGES6[:2]
    configs = {(float(lr), (32,)): 5 * float(lr) for lr in np.linspace(0.1, 2.0, 20).round(3)}
    rep = build_report([write_run(tmp_path / "c", rows_for(ranges, 1, configs=configs), ranges, 1)])
    (lr,) = [e for e in rep.effects if e.parameter == "lr"]
    assert lr.kind == "bins" and len(lr.levels) == 4 and lr.levels[0].value.startswith("[0.1, ")
    assert lr.consistent == lr.levels[0].value and sum(lv.n for lv in lr.levels) == 40


# -- modes, merge, runs in progress, failures, errors --------------------------------------------

def test_max_mode_ranks_the_highest_first(tmp_path):
    rows = rows_for(RANGES6, 2)
    rep = build_report([write_run(tmp_path / "m", rows, RANGES6, mode="max")])
    assert rep.ranking[0].label == "mlp lr=0.001 hidden=[32]" and rep.ranking[0].wins_every_range
    assert all(c.ahead_by > 0 for c in rep.comparisons)
    assert rep.trajectories[0].steps[-1].best == pytest.approx(rep.ranking[0].mean)
    assert rep.effects[0].consistent == "0.001"


def test_two_runs_merge_by_configuration(tmp_path):
    first, second = RANGES6[:3], RANGES6[2:]  # the third range is in both (overlapping windows)
    a = write_run(tmp_path / "jan", rows_for(first, 1, seed=1), first, 1)
    b = write_run(tmp_path / "feb", rows_for(second, 1, seed=2, t0=100), second, 1)
    rep = build_report([a, b])
    assert [r.label for r in rep.runs] == ["jan", "feb"] and rep.rows == 12 + 16
    assert rep.configurations == 4 and len(rep.ranges) == 6
    assert rep.ranking[0].n == 6 and rep.ranking[0].wins_every_range  # the shared cell counted once
    assert len(rep.trajectories) == 2


def test_a_run_in_progress_ignores_a_torn_last_line(tmp_path):
    rows = rows_for(RANGES6, 2)
    torn = csv_text(rows[30:31]).splitlines()[1][:25]  # half a row, no newline: being written
    uri = write_run(tmp_path / "live", rows[:30], RANGES6, summary=False, tail=torn)
    rep = build_report([uri])
    assert rep.rows == 30 and rep.runs[0].status == "in progress"
    assert any("in progress" in n for n in rep.notes)
    assert rep.ranking[0].n == 6 and rep.ranking[-1].n == 3  # the third configuration half done
    assert any("results on 3 to 6 date ranges" in n for n in rep.notes)


def test_failures_are_counted_with_their_commonest_errors(tmp_path):
    rows = rows_for(RANGES6, 1)
    for row, (status, error) in zip(rows[:4], [("failed", "ValueError: boom"), ("failed", "ValueError: boom"),
                                               ("timeout", "timed out after 30 s"), ("ok", "")]):
        row.update(status=status, error=error)
    rows[3]["val_mse"] = ""  # ok but no objective value
    result = report(write_run(tmp_path / "f", rows, RANGES6, 1))
    assert result.exit_code == 0, result.output
    rep = build_report([str(tmp_path / "f")])
    assert rep.failures.by_status == {"ok": 21, "failed": 2, "timeout": 1}
    assert rep.failures.no_value == 1
    assert rep.failures.errors[0] == ("ValueError: boom", 2, "t0000")
    assert "Failures: 21 ok, 2 failed, 1 timeout; 1 ok rows without val_mse" in result.output
    assert re.search(r"^2\s+ValueError: boom\s+t0000$", result.output, re.MULTILINE)


def fail(rows, lr, hidden, status="failed", error="", ranges=None):
    """Make the rows of configuration (lr, hidden) fail (on `ranges` only, given their starts)."""
    for row in rows:
        mine = row["lr"] == repr(lr) and row["hidden"] == json.dumps(hidden)
        if mine and (ranges is None or row["start"] in ranges):
            row.update(status=status, error=error, val_mse="")
    return rows


def section(output, first):
    """The lines of the text report's section whose first line starts with `first`, to the blank line."""
    blocks = [block.splitlines() for block in output.split("\n\n")]
    (found,) = [b for b in blocks if b[0].startswith(first)]
    return found


def test_configurations_that_failed_on_every_date_range_are_counted_and_listed(tmp_path):
    rows = fail(rows_for(RANGES6, 1), 0.001, [32], error="ValueError: loss is nan\n  at step 3")
    rows[23].update(status="timeout", error="timed out after 30 s")  # its last range
    fail(rows, 0.001, [64], status="oom")  # no error text
    uri = write_run(tmp_path / "f", rows, RANGES6, 1)
    result = report(uri)
    assert result.exit_code == 0, result.output
    out = result.output.splitlines()
    assert out[:2] == [  # every configuration counted; 2 of them ranked:
        "f: 24 trials (12 ok, 5 failed, 6 oom, 1 timeout); objective val_mse (min); 4 configurations on 6",
        "  date ranges x 1 repeat"]
    assert out[3] == "Ranking: top 2 of 2 by mean val_mse over date ranges (95% CI: t distribution)"
    assert section(result.output, "Ranking:")[-4:] == [
        "mlp lr=0.01 hidden=[64] wins on every date range.",
        "2 of 4 configurations failed on every date range (not ranked):",
        "  mlp lr=0.001 hidden=[32]: ValueError: loss is nan (5 of 6 trials)",
        "  mlp lr=0.001 hidden=[64]: (oom, no error text) (6 of 6 trials)",
    ]
    assert "ranked configuration" not in result.output  # none failed on only some ranges

    doc = json.loads(report(uri, "--format", "json").output)
    assert doc["configurations"] == 2 and [c["label"] for c in doc["ranking"]] == ["mlp lr=0.01 hidden=[64]",
                                                                                   "mlp lr=0.01 hidden=[32]"]
    assert doc["failed_configurations"] == [
        {"config": 'mlp {"hidden": [32], "lr": 0.001}', "label": "mlp lr=0.001 hidden=[32]", "architecture": "mlp",
         "params": {"lr": 0.001, "hidden": [32]}, "trials": 6, "by_status": {"failed": 5, "timeout": 1},
         "error": "ValueError: loss is nan", "error_count": 5, "example_trial": "t0018"},
        {"config": 'mlp {"hidden": [64], "lr": 0.001}', "label": "mlp lr=0.001 hidden=[64]", "architecture": "mlp",
         "params": {"lr": 0.001, "hidden": [64]}, "trials": 6, "by_status": {"oom": 6},
         "error": "(oom, no error text)", "error_count": 6, "example_trial": "t0012"},
    ]
    assert doc["partly_failed_configurations"] == []

    result = report(uri, "--format", "html", "--out", str(tmp_path / "h"))
    page = (tmp_path / "h" / "report.html").read_text()
    assert "<p>2 of 4 configurations failed on every date range (not ranked):</p>" in page
    assert "<p>  mlp lr=0.001 hidden=[32]: ValueError: loss is nan (5 of 6 trials)</p>" in page


def test_many_configurations_failed_everywhere_are_capped(tmp_path):
    ranges = RANGES6[:2]
    configs = {(0.01, (h,)): h / 100 for h in range(1, 11)}
    rows = rows_for(ranges, 1, configs=configs)
    for h in range(3, 11):
        fail(rows, 0.01, [h], error=f"RuntimeError: width {h}")
    result = report(write_run(tmp_path / "many", rows, ranges, 1))
    assert result.exit_code == 0, result.output
    assert section(result.output, "Ranking:")[-7:] == [
        "8 of 10 configurations failed on every date range (not ranked):",
        "  mlp hidden=[10]: RuntimeError: width 10 (2 of 2 trials)",
        "  mlp hidden=[3]: RuntimeError: width 3 (2 of 2 trials)",
        "  mlp hidden=[4]: RuntimeError: width 4 (2 of 2 trials)",
        "  mlp hidden=[5]: RuntimeError: width 5 (2 of 2 trials)",
        "  mlp hidden=[6]: RuntimeError: width 6 (2 of 2 trials)",
        "  and 3 more (--format json lists them all)",
    ]
    doc = json.loads(report(str(tmp_path / "many"), "--format", "json").output)
    assert len(doc["failed_configurations"]) == 8 and doc["configurations"] == 2


def test_configurations_that_failed_on_some_date_ranges_say_why_they_rank_last(tmp_path):
    rows = fail(rows_for(RANGES6, 1), 0.01, [64], error="ValueError: boom", ranges=[RANGES6[0][0], RANGES6[3][0]])
    uri = write_run(tmp_path / "p", rows, RANGES6, 1)
    result = report(uri)
    assert result.exit_code == 0, result.output
    ranking = section(result.output, "Ranking:")
    assert re.match(r"4\s+mlp lr=0.01 hidden=\[64\]\s+4\s+.*- 1 1 - 1 1$", ranking[5])  # the true winner, last
    assert ranking[-3:] == [
        "1 ranked configuration failed on some date ranges: its mean is over the other date ranges only, so",
        "  it ranks after the configurations with more results:",
        "  mlp lr=0.01 hidden=[64] (rank 4): failed on 2 of 6 date ranges, ValueError: boom",
    ]
    assert "configurations failed on every date range" not in result.output
    doc = json.loads(report(uri, "--format", "json").output)
    assert doc["failed_configurations"] == []
    assert doc["partly_failed_configurations"] == [
        {"config": 'mlp {"hidden": [64], "lr": 0.01}', "label": "mlp lr=0.01 hidden=[64]", "rank": 4,
         "complete": False, "failed_ranges": ["2014-01-01..2014-07-01", "2017-01-01..2017-07-01"], "ranges": 6,
         "lost_repeats": 0, "cells": 6, "error": "ValueError: boom", "error_count": 2, "example_trial": "t0000"},
    ]


def test_no_failed_configurations_add_nothing(synthetic):
    uri, _ = synthetic
    result = report(uri, "--top", "2")
    assert result.exit_code == 0, result.output
    assert section(result.output, "Ranking:")[-3:] == [  # the section ends as it always did
        "rank per date range, in this order: 2014-01-01..2014-07-01, 2015-01-01..2015-07-01,",
        "  2016-01-01..2016-07-01, 2017-01-01..2017-07-01, 2018-01-01..2018-07-01, 2019-01-01..2019-07-01",
        "mlp lr=0.01 hidden=[64] wins on every date range.",
    ]
    assert "failed on" not in result.output and "4 configurations on 6 date ranges" in result.output
    doc = json.loads(report(uri, "--format", "json").output)
    assert doc["failed_configurations"] == [] and doc["partly_failed_configurations"] == []


def test_errors_are_one_line(tmp_path):
    result = report(str(tmp_path / "nothing"))
    assert result.exit_code == 2
    assert result.output == f"error: {tmp_path / 'nothing'}: no results.csv (is this a run folder? `hpt run` prints its path)\n"
    result = report(write_run(tmp_path / "empty", [], RANGES6[:1], 1))
    assert result.exit_code == 2 and "no finished trials yet" in result.output


def all_failed(tmp_path):
    """A run where every trial failed: 4 configurations on 2 date ranges, one of them ok without the metric."""
    rows = rows_for(RANGES6[:2], 1)
    for i, row in enumerate(rows):
        row.update(status="failed", error="RuntimeError: worker died with signal SIGSEGV", val_mse="")
    rows[0].update(status="timeout", error="timed out after 3.0 s")
    rows[-1].update(status="ok", error="")
    rows[-2].update(status="ok", error="")
    return write_run(tmp_path / "bad", rows, RANGES6[:2], 1)


def test_a_run_where_every_trial_failed_reports_its_failures_and_exits_1(tmp_path):
    uri = all_failed(tmp_path)
    result = report(uri)
    assert result.exit_code == 1, result.output  # no result to rank: as `hpt run` exits, not a usage error
    assert not result.output.startswith("error:")
    blocks = result.output.rstrip("\n").split("\n\n")
    assert blocks[0] == ("bad: 8 trials (2 ok, 5 failed, 1 timeout); objective val_mse (min); 4 configurations on 2 date\n"
                         "  ranges x 1 repeat")
    assert blocks[1].splitlines() == [
        "Nothing to rank: no configuration has a val_mse result (every trial failed or returned no val_mse;",
        "  the failures are below)",
        "4 of 4 configurations failed on every date range (not ranked):",
        "  mlp lr=0.001 hidden=[32]: (ok, no val_mse value) (2 of 2 trials)",
        "  mlp lr=0.001 hidden=[64]: RuntimeError: worker died with signal SIGSEGV (2 of 2 trials)",
        "  mlp lr=0.01 hidden=[32]: RuntimeError: worker died with signal SIGSEGV (2 of 2 trials)",
        "  mlp lr=0.01 hidden=[64]: timed out after 3.0 s (1 of 2 trials)",  # a tie: the first row's
    ]
    assert blocks[2].splitlines()[0] == "Failures: 2 ok, 5 failed, 1 timeout; 2 ok rows without val_mse"
    assert "RuntimeError: worker died with signal SIGSEGV" in blocks[2] and "timed out after 3.0 s" in blocks[2]
    assert len(blocks) == 3  # no comparisons, effects, incumbent or best trial: there is no result
    assert "Best trial" not in result.output and "Incumbent" not in result.output


def test_a_run_where_every_trial_failed_in_every_format(tmp_path):
    uri = all_failed(tmp_path)
    result = report(uri, "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["ranking"] == [] and doc["best_trial"] is None and doc["configurations"] == 0
    assert doc["failures"]["by_status"] == {"ok": 2, "failed": 5, "timeout": 1}
    assert len(doc["failed_configurations"]) == 4 and doc["partly_failed_configurations"] == []
    result = report(uri, "--format", "csv")
    assert result.exit_code == 1 and result.output.count("\n") == 1  # the header: nothing ranked
    result = report(uri, "--format", "html", "--out", str(tmp_path / "html"))
    assert result.exit_code == 1 and result.output == f"report: {tmp_path / 'html' / 'report.html'}\n"
    page = (tmp_path / "html" / "report.html").read_text()
    assert "Nothing to rank: no configuration has a val_mse result" in page and "4 of 4 configurations failed" in page
    assert "What failed?" in page and "Where is the best model?" not in page
    rep = build_report([uri])
    assert not rep.ranked and rep.best_trial is None and rep.comparisons == [] and rep.effects == []


def test_a_parameter_whose_name_clashed_is_read_from_param_column(tmp_path):
    folder = tmp_path / "clash"
    folder.mkdir()
    doc = spec_doc(RANGES6[:2], 1, params=("seed",))
    (folder / "spec.json").write_text(json.dumps(doc))
    header = [*LEAD, "param_seed", "val_mse", *TAIL]
    lines = [",".join(header)]
    for i, (s, v) in enumerate([(1, 3.0), (2, 5.0), (1, 4.0), (2, 6.0)]):
        start, end = RANGES6[i // 2]
        cells = {"trial_id": f"c{i}", "status": "ok", "architecture": "mlp", "start": start, "end": end,
                 "repeat": "0", "seed": "99", "param_seed": str(s), "val_mse": str(v)}
        lines.append(",".join(cells.get(h, "") for h in header))
    (folder / "results.csv").write_text("\n".join(lines) + "\n")
    rep = build_report([str(folder)])
    assert [c.label for c in rep.ranking] == ["mlp seed=1", "mlp seed=2"]


# -- formats ---------------------------------------------------------------------------------------

def test_table_output(synthetic):
    uri, _ = synthetic
    result = report(uri, "--top", "3")
    assert result.exit_code == 0, result.output
    out = result.output.splitlines()
    assert out[0] == ("syn-1: 48 trials (48 ok); objective val_mse (min); 4 configurations on 6 date ranges "
                      "x 2 repeats")
    assert out[2:4] == ["Ranking: top 3 of 4 by mean val_mse over date ranges, repeats averaged within each first (n: date",
                        "  ranges; 95% CI: t distribution)"]
    assert re.match(r"rank\s+configuration\s+n\s+mean\s+std\s+95% CI\s+rank per date range$", out[4])
    assert re.match(r"1\s+mlp lr=0.01 hidden=\[64\]\s+6\s+[\d.]+\s+[\d.]+\s+\[[\d.]+, [\d.]+\]\s+"
                    r"1 1 1 1 1 1  wins every range$", out[5])
    assert "mlp lr=0.01 hidden=[64] wins on every date range." in out
    assert any(re.match(r"2\s+mlp lr=0.01 hidden=\[32\]\s+6\s+[\d.]+\s+6/6\s+wilcoxon\s+0.0312\s+0.0625\s+no$", line)
               for line in out)
    assert "Best trial: t00" in result.output and f"files: {uri}/trials/t00" in result.output
    assert max(len(line) for line in out) < 160


def test_json_structure(synthetic):
    uri, _ = synthetic
    result = report(uri, "--format", "json")
    doc = json.loads(result.output)
    assert {"metric", "mode", "runs", "ranking", "comparisons", "effects", "trajectories", "failures",
            "best_trial", "ranges", "notes", "failed_configurations", "partly_failed_configurations"} <= set(doc)
    assert doc["ranking"][0]["wins_every_range"] is True and doc["ranking"][0]["params"] == {"lr": 0.01, "hidden": [64]}
    assert set(doc["comparisons"][0]) >= {"rank", "label", "pairs", "test", "why", "p", "p_holm", "significant"}
    assert doc["failures"]["by_status"] == {"ok": 48}
    assert doc["best_trial"]["artifact"].startswith(uri)


def test_csv_is_the_ranking(synthetic, tmp_path):
    uri, _ = synthetic
    result = report(uri, "--format", "csv")
    table = list(csv.reader(io.StringIO(result.output)))
    assert table[0] == ["rank", "architecture", "params", "label", "n", "mean", "std", "ci_low", "ci_high",
                        "wins_every_range"] + [f"rank {a}..{b}" for a, b in RANGES6]
    assert len(table) == 5 and table[1][:5] == ["1", "mlp", '{"hidden": [64], "lr": 0.01}', "mlp lr=0.01 hidden=[64]", "6"]
    result = report(uri, "--format", "csv", "--out", str(tmp_path / "o"))
    assert result.output == f"report: {tmp_path / 'o' / 'report.csv'}\n"
    assert (tmp_path / "o" / "report.csv").read_text().startswith("rank,")


def test_html_with_plots(synthetic, tmp_path):
    pytest.importorskip("matplotlib")
    uri, _ = synthetic
    result = report(uri, "--format", "html", "--out", str(tmp_path / "h"))
    assert result.exit_code == 0, result.output
    page = (tmp_path / "h" / "report.html").read_text()
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)
    assert [alt for alt, _ in images] == ["top configurations per date range", "objective against each parameter",
                                          "incumbent trajectory"]
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for _, data in images)
    assert "<table>" in page and "mlp lr=0.01 hidden=[64] wins on every date range." in page


def test_html_without_matplotlib_still_has_the_tables(synthetic, tmp_path, monkeypatch):
    from hpt_cli.report import plots

    monkeypatch.setattr(plots, "available", lambda: False)
    uri, _ = synthetic
    monkeypatch.chdir(tmp_path)
    result = report(uri, "--format", "html")
    assert result.exit_code == 0 and result.output == "report: report.html\n"
    page = (tmp_path / "report.html").read_text()
    assert "No plots: matplotlib is not installed" in page and "<img" not in page and "<table>" in page


# -- gs:// while the run goes on -----------------------------------------------------------------

def test_a_run_on_the_gcs_emulator_read_while_it_grows(gcs_emulator, gcs_bucket, monkeypatched_emulator_env):
    from tests.gcs.emulator import client

    bucket = client(gcs_emulator.url).bucket(gcs_bucket)
    rows = rows_for(RANGES6, 2)
    text = csv_text(rows)
    lines = text.splitlines(keepends=True)
    bucket.blob("sweeps/syn-1/spec.json").upload_from_string(json.dumps(spec_doc(RANGES6, 2)))
    bucket.blob("sweeps/syn-1/results.csv").upload_from_string("".join(lines[:13]) + lines[13][:20])
    uri = f"gs://{gcs_bucket}/sweeps/syn-1"
    rep = build_report([uri])
    assert rep.rows == 12 and rep.configurations == 1 and rep.runs[0].status == "in progress"
    assert rep.trajectories[0].steps[0].best == pytest.approx(rep.ranking[0].mean)
    result = report(uri, "--top", "2")
    assert result.exit_code == 0 and "syn-1: 12 trials (12 ok)" in result.output

    bucket.blob("sweeps/syn-1/results.csv").upload_from_string(text)  # the run goes on: all rows now
    rep = build_report([uri])
    assert rep.rows == 48 and rep.ranking[0].wins_every_range
    assert rep.best_trial.artifact.startswith(f"{uri}/trials/")


def test_analyse_reuses_loaded_results(synthetic):
    uri, _ = synthetic
    results = load_results([uri])
    assert analyse(results, top=0).configurations == len(analyse(results, top=0).ranking) == 4


def test_the_headline_counts_in_the_singular_where_there_is_one(tmp_path):
    rows = rows_for(RANGES6[:1], 1, configs={(0.01, (64,)): 0.0})
    result = report(write_run(tmp_path / "one", rows, RANGES6[:1], 1))
    assert result.exit_code == 0
    assert result.output.startswith("one: 1 trial (1 ok); objective val_mse (min); 1 configuration on 1 date range x 1 repeat\n")
