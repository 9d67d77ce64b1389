"""`hpt report` on the review's cases (docs/report.md): the direction of a significant difference,
date ranges as the statistical unit, lost repeats, constant differences, numbers compared by value,
effects keyed by value, unreadable paths, ties, and the per-range ranking."""

from __future__ import annotations

import csv
import io
import json
import random
import warnings

import numpy as np
import pytest
import scipy.stats
from click.testing import CliRunner

import hpt_cli.cli.report_command  # noqa: F401  (registers `hpt report`)
from hpt_cli.cli import cli
from hpt_cli.report import build_report
from hpt_cli.report.stats import paired_test
from hpt_cli.storage.results import LEAD, TAIL

R4 = [("2020-01-01", "2020-02-01"), ("2020-02-01", "2020-03-01"), ("2020-03-01", "2020-04-01"),
      ("2020-04-01", "2020-05-01")]


def make_run(folder, data, ranges=R4, repeats=1, param="name", error="CUDA OOM", status=None):
    """A run folder from {value of `param`: [[result per repeat] per date range]}; a result of None
    is a failed trial with `error`. `status` (value -> status) marks ok rows otherwise, e.g. stopped.
    A value may be a dict of parameters instead."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = list(data)
    names = sorted({n for k in keys for n in (dict(k) if isinstance(k, tuple) else {param: k})})
    spec = {"name": folder.name, "architecture": "ridge", "date-range": [list(r) for r in ranges],
            "parameters": {n: [0] for n in names}, "search": {"seed": 0, "repeats": repeats},
            "objective": {"metric": "val_mse", "mode": "min"}}
    (folder / "spec.json").write_text(json.dumps(spec))
    header = [*LEAD, *names, "val_mse", *TAIL]
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(header)
    i = 0
    for key, per_range in data.items():
        params = dict(key) if isinstance(key, tuple) else {param: key}
        for r, reps in enumerate(per_range):
            for k, v in enumerate(reps):
                row = {"trial_id": f"t{i:04d}", "status": (status or {}).get(key, "ok") if v is not None else "failed",
                       "architecture": "ridge", "start": ranges[r][0], "end": ranges[r][1], "repeat": str(k),
                       "seed": "1", "val_mse": "" if v is None else repr(float(v)), "attempts": "1",
                       "started_at": f"2026-01-01T00:00:{i % 60:02d}Z", "ended_at": f"2026-01-01T00:01:{i % 60:02d}Z",
                       "duration_s": "1.0", "artifact_dir": f"trials/t{i:04d}", "error": "" if v is not None else error}
                row.update({n: p if isinstance(p, str) else json.dumps(p) if not isinstance(p, float) else repr(p)
                            for n, p in params.items()})
                out.writerow([row.get(h, "") for h in header])
                i += 1
    (folder / "results.csv").write_text(buf.getvalue())
    (folder / "summary.json").write_text(json.dumps({"status": "complete"}))
    return str(folder)


def report(*args):
    return CliRunner().invoke(cli, ["report", *args])


def block(output, first):
    """The lines of the text report's section starting with `first`, to the blank line."""
    (found,) = [b.splitlines() for b in output.split("\n\n") if b.startswith(first)]
    return found


# -- 1: "significant" only when the best is ahead; a better, incomplete one is said plainly --------

def test_an_incomplete_configuration_significantly_better_is_said_and_not_called_a_win(tmp_path):
    uri = make_run(tmp_path / "fail", {"A": [[6.0], [7.5], [5.0], [7.5]], "G": [[7.0], [8.6], [6.0], [8.4]],
                                       "B": [[1.0], [1.5], [None], [1.0]]})
    result = report(uri)
    assert result.exit_code == 0, result.output
    assert block(result.output, "Is the best")[2:6] == [
        "vs  configuration  pairs  ahead by  ranges won  test    p       p Holm  p<0.05",
        "2   ridge name=G   4      1         4/4         t-test  0.0001  0.0003  yes",
        "3   ridge name=B   3      -5.833    0/3         t-test  0.0057  0.0057  best worse",
        "ridge name=B (rank 3) is significantly better than the best where both have results (3 date ranges,",
    ]
    doc = json.loads(report(uri, "--format", "json").output)
    b = doc["comparisons"][1]
    assert (b["label"], b["significant"], b["other_better"]) == ("ridge name=B", False, True)
    assert (doc["comparisons"][0]["significant"], doc["comparisons"][0]["other_better"]) == (True, False)


# -- 2: the date range is the unit: repeats are averaged first -------------------------------------

def test_repeats_are_averaged_within_each_date_range_before_any_statistic(tmp_path):
    # a deterministic model: 3 repeats that are copies; only the 3 date ranges carry information
    best, other = [10.0, 12.0, 20.0], [10.049, 13.27, 26.816]
    uri = make_run(tmp_path / "rep", {"A": [[v] * 3 for v in best], "B": [[v] * 3 for v in other]}, R4[:3], 3)
    rep = build_report([uri])
    a = rep.ranking[0]
    assert a.n == 3 and rep.repeats == 3
    half = scipy.stats.t.ppf(0.975, 2) * np.std(best, ddof=1) / np.sqrt(3)
    assert (a.ci_low, a.ci_high) == pytest.approx((np.mean(best) - half, np.mean(best) + half))
    (comp,) = rep.comparisons
    assert (comp.pairs, comp.ranges_won, comp.test) == (3, 3, "t-test")  # 3 pairs: too few for Wilcoxon
    assert comp.p == pytest.approx(scipy.stats.ttest_rel(best, other).pvalue, rel=1e-12)
    assert not comp.significant
    out = report(uri).output
    assert block(out, "Is the best")[0] == ("Is the best really better? ridge name=A vs each next one: paired by date "
                                           "range (repeats averaged")


# -- 3: a lost repeat is not a lost date range; an incomplete one first everywhere is named -------

def test_a_configuration_that_lost_a_repeat_keeps_its_date_ranges(tmp_path):
    uri = make_run(tmp_path / "contra", {"A": [[5.0, 5.2], [6.0, 6.1]], "B": [[5.5, 5.6], [6.5, 6.4]],
                                         "X": [[1.0, None], [2.0, 2.1]]}, R4[:2], 2)
    result = report(uri)
    assert result.exit_code == 0, result.output
    ranking = block(result.output, "Ranking:")
    assert ranking[3].startswith("1     ridge name=X   2  1.525") and ranking[3].endswith("1 1  wins every range")
    assert ranking[-4:] == [
        "ridge name=X wins on every date range.",
        "1 ranked configuration lost some repeats to failures, but no whole date range: on those ranges the",
        "  mean is over the repeats with a result:",
        "  ridge name=X (rank 1): failed on 1 of 4 (date range, repeat) results, CUDA OOM",
    ]
    (partly,) = json.loads(report(uri, "--format", "json").output)["partly_failed_configurations"]
    assert (partly["failed_ranges"], partly["lost_repeats"], partly["cells"], partly["ranges"]) == ([], 1, 4, 2)


def test_a_lower_ranked_configuration_first_on_every_range_is_named(tmp_path):
    uri = make_run(tmp_path / "s", {"A": [[5.0], [6.0]], "B": [[5.5], [6.5]], "X": [[1.0], [2.0]]}, R4[:2],
                   status={"X": "stopped"})
    result = report(uri)
    assert block(result.output, "Ranking:")[-3:] == [
        "No configuration wins on every date range; the best is first on 0 of 2.",
        "ridge name=X (rank 3) is first on every date range, but ranks after the complete configurations: the",
        "  scheduler stopped it early on some date range.",
    ]


def test_a_configuration_missing_a_range_and_a_repeat_says_both(tmp_path):
    uri = make_run(tmp_path / "m", {"A": [[5.0, 5.1], [6.0, 6.1], [7.0, 7.1]],
                                    "X": [[None, None], [2.0, None], [3.0, 3.1]]}, R4[:3], 2, error="boom")
    assert block(report(uri).output, "Ranking:")[-4:] == [
        "1 ranked configuration failed on some date ranges: its mean is over the other date ranges only, so",
        "  it ranks after the configurations with more results:",
        "  ridge name=X (rank 2): failed on 1 of 3 date ranges (and on 1 of 6 (date range, repeat) results),",
        "    boom",
    ]


# -- 4: constant differences, whatever the rounding; no scipy warnings -----------------------------

def test_constant_differences_get_an_exact_sign_test_whatever_the_rounding():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exact = paired_test([1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0])
        rounded = paired_test([5.0, 6.05, 7.1], [1.0, 2.05, 3.1 - 4e-15])  # -4, -4, -4.000000000000004
        many = paired_test(list(range(12)), [v + 0.5 for v in range(12)])
    assert (exact.test, exact.p) == ("sign", 2 / 2**4)
    assert (rounded.test, rounded.p) == ("sign", 2 / 2**3)
    assert (many.test, many.p) == ("sign", 2 / 2**12)
    assert paired_test([1.0, 2.0], [1.0, 2.0 + 1e-15]).test is None  # identical up to rounding
    assert paired_test([1.0], [2.0]).test is None


def test_the_report_calls_a_constant_win_a_sign_test(tmp_path):
    uri = make_run(tmp_path / "c", {"A": [[1.0], [2.0], [3.0], [4.0]], "B": [[2.0], [3.0], [4.0], [5.0]]})
    lines = block(report(uri).output, "Is the best")
    assert lines[3:] == ["2   ridge name=B   4      1         4/4         sign  0.1250  0.1250  no",
                         "sign: the same difference on all 4 date ranges, no spread for a t-test or Wilcoxon: exact sign test,",
                         "  p = 2/2^4"]


# -- 5: numbers compare by value across runs; labels are unique ------------------------------------

def test_one_and_one_point_zero_are_one_configuration_across_runs(tmp_path):
    a = make_run(tmp_path / "int", {1: [[1.0], [2.0]], 10: [[3.0], [4.0]]}, R4[:2], param="alpha")
    b = make_run(tmp_path / "float", {1.0: [[1.5], [2.5]], 10.0: [[3.5], [4.5]]}, R4[2:], param="alpha")
    rep = build_report([a, b])
    assert [(c.label, c.n) for c in rep.ranking] == [("ridge alpha=1", 4), ("ridge alpha=10", 4)]
    (alpha,) = rep.effects
    assert [(lv.value, lv.n) for lv in alpha.levels] == [("1", 4), ("10", 4)]


def test_labels_are_unique_when_values_print_alike_or_a_parameter_was_added(tmp_path):
    uri = make_run(tmp_path / "d", {0.001: [[1.0]], 0.0010000001: [[2.0]], 0.01: [[3.0]]}, R4[:1], param="lr")
    assert [c.label for c in build_report([uri]).ranking] == ["ridge lr=0.001", "ridge lr=0.0010000001",
                                                             "ridge lr=0.01"]
    m1 = make_run(tmp_path / "m1", {(("alpha", 1),): [[1.0]], (("alpha", 10),): [[2.0]]}, R4[:1])
    m2 = make_run(tmp_path / "m2", {(("alpha", 1), ("lags", 7)): [[1.5]], (("alpha", 10), ("lags", 7)): [[2.5]]},
                  R4[1:2])
    labels = [c.label for c in build_report([m1, m2]).ranking]
    assert sorted(labels) == ["ridge alpha=1", "ridge alpha=1 lags=7", "ridge alpha=10", "ridge alpha=10 lags=7"]


# -- 6: parameter effects keep every value and bin -------------------------------------------------

def test_effects_keep_values_that_print_alike(tmp_path):
    data = {0.001: [[2.0]] * 4, 0.0010000001: [[7.0]] * 4, 0.01: [[3.0]] * 4}
    (lr,) = build_report([make_run(tmp_path / "d", data, param="lr")]).effects
    assert [(lv.value, lv.n, lv.best_on) for lv in lr.levels] == [("0.001", 4, 4), ("0.0010000001", 4, 0),
                                                                   ("0.01", 4, 0)]
    assert lr.consistent == "0.001"


def test_bins_of_a_narrow_range_keep_every_trial_and_distinct_labels(tmp_path):
    rng = np.random.default_rng(3)
    data = {float(v): [[float(rng.normal(11, 1))], [float(rng.normal(11, 1))]]
            for v in rng.uniform(0.99995, 0.99999, 12)}
    (effect,) = build_report([make_run(tmp_path / "b", data, R4[:2], param="ema_decay")]).effects
    assert effect.kind == "bins" and sum(lv.n for lv in effect.levels) == 24 and len(effect.levels) == 4
    assert len({lv.value for lv in effect.levels}) == 4 and effect.levels[0].value.startswith("[0.99995")
    assert all(lv.low < lv.high for lv in effect.levels)


def test_effects_count_stopped_trials_and_name_values_whose_every_trial_was_stopped(tmp_path):
    data = {0.1: [[2.0], [2.5]], 0.01: [[3.0], [4.0]], 0.02: [[5.0], [6.0]], 0.001: [[9.0], [9.5]]}
    uri = make_run(tmp_path / "s", data, R4[:2], param="lr", status={0.02: "stopped", 0.001: "stopped"})
    (lr,) = build_report([uri]).effects
    assert [(lv.value, lv.n, lv.stopped) for lv in lr.levels] == [("0.01", 2, 0), ("0.1", 2, 0)]
    assert lr.stopped_only == {"0.001": 2, "0.02": 2}
    out = report(uri).output
    assert "parameter  value  n  mean  best on  stopped\n" in out
    assert "lr: every trial of 0.001 (2 stopped), 0.02 (2 stopped) was stopped early: no mean." in out
    mixed = make_run(tmp_path / "m", {(("lr", 0.1), ("l2", 0)): [[2.0], [2.5]],
                                      (("lr", 0.1), ("l2", 1)): [[7.0], [8.0]],
                                      (("lr", 0.01), ("l2", 0)): [[3.0], [4.0]]}, R4[:2],
                     status={(("lr", 0.1), ("l2", 1)): "stopped"})
    effects = {e.parameter: e for e in build_report([mixed]).effects}
    assert [(lv.value, lv.n, lv.stopped) for lv in effects["lr"].levels] == [("0.01", 2, 0), ("0.1", 2, 2)]


def test_values_whose_every_trial_was_stopped_keep_apart_when_they_print_alike(tmp_path):
    data = {0.1: [[2.0]], 0.01: [[3.0]], 0.001: [[9.0]], 0.0010000001: [[9.5]]}
    uri = make_run(tmp_path / "s", data, R4[:1], param="lr", status={0.001: "stopped", 0.0010000001: "stopped"})
    (lr,) = build_report([uri]).effects
    assert lr.stopped_only == {"0.001": 1, "0.0010000001": 1}


# -- 7, 10: what RUN may be, and one line when it cannot be read -----------------------------------

def test_the_results_csv_path_that_hpt_run_prints_is_its_folder(tmp_path):
    uri = make_run(tmp_path / "r", {"A": [[1.0], [2.0]], "B": [[2.0], [3.0]]}, R4[:2])
    assert report(f"{uri}/results.csv").output == report(uri).output


def test_unreadable_runs_are_one_line_and_exit_2(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    result = report(str(tmp_path / "file.txt"))
    assert (result.exit_code, result.output) == (
        2, f"error: {tmp_path / 'file.txt'}: not a folder (give the run folder `hpt run` printed, or its results.csv)\n")
    (tmp_path / "odd" / "results.csv").mkdir(parents=True)
    result = report(str(tmp_path / "odd"))
    assert (result.exit_code, result.output) == (2, f"error: {tmp_path / 'odd'}/results.csv: cannot be read (Is a directory)\n")


def test_a_spec_json_that_is_not_an_object_says_so(tmp_path):
    uri = make_run(tmp_path / "l", {"A": [[1.0]]}, R4[:1])
    (tmp_path / "l" / "spec.json").write_text("[1, 2]")
    result = report(uri)
    assert (result.exit_code, result.output) == (2, f"error: {uri}/spec.json: not a JSON object (it holds a list)\n")


# -- 9: a tie for first --------------------------------------------------------------------------

def test_an_exact_tie_for_first_is_called_a_tie(tmp_path):
    same = [[1.0], [2.0], [3.0], [4.0]]
    uri = make_run(tmp_path / "tie", {"B": same, "A": same, "C": [[2.0], [3.0], [4.0], [5.0]]})
    assert block(report(uri).output, "Ranking:")[-2:] == [
        "ridge name=A and ridge name=B tie for first on every date range (identical results); ridge name=A is",
        "  listed first by name.",
    ]
    uri = make_run(tmp_path / "some", {"A": [[1.0], [2.0], [3.0], [4.0]], "B": [[1.0], [2.5], [3.0], [4.5]]})
    assert block(report(uri).output, "Ranking:")[-1] == (
        "No configuration wins on every date range; the best is first on 4 of 4, 2 of them tied.")


# -- 11: the per-range ranking is a sort, with the same ranks as counting ------------------------

def test_range_ranks_are_competition_ranks(tmp_path):
    rnd = random.Random(0)
    data = {f"c{i:03d}": [[float(rnd.randint(0, 20))] for _ in range(3)] for i in range(150)}
    rep = build_report([make_run(tmp_path / "many", data, R4[:3])], top=0)
    for rng in rep.ranges:
        values = [c.range_means[rng] for c in rep.ranking]
        assert [c.range_ranks[rng] for c in rep.ranking] == [1 + sum(w < v for w in values) for v in values]


def test_a_summary_of_an_earlier_attempt_does_not_speak_for_a_run_started_again(tmp_path):
    uri = make_run(tmp_path / "again", {"A": [[1.0], [2.0]], "B": [[2.0], [3.0]]}, R4[:2])
    summary = {"status": "complete", "exit_code": 0, "total": 2, "ended_at": "2026-01-01T00:05:00Z"}
    (tmp_path / "again" / "summary.json").write_text(json.dumps(summary))
    spec_path = tmp_path / "again" / "spec.json"
    spec = json.loads(spec_path.read_text())
    spec["hpt"] = {"created_at": "2026-01-01T00:04:00Z"}  # the summary is this attempt's
    spec_path.write_text(json.dumps(spec))
    assert [r["status"] for r in json.loads(report(uri, "--format", "json").output)["runs"]] == ["complete"]
    spec["hpt"] = {"created_at": "2026-01-02T00:00:00Z"}  # started again after it (then killed, say)
    spec_path.write_text(json.dumps(spec))
    doc = json.loads(report(uri, "--format", "json").output)
    assert [r["status"] for r in doc["runs"]] == ["in progress"]
    assert any("has no summary.json of its latest attempt yet" in n for n in doc["notes"])


def test_a_row_repeating_a_trial_id_counts_once_with_a_note(tmp_path):
    uri = make_run(tmp_path / "dup", {"A": [[1.0], [2.0]], "B": [[2.0], [3.0]]}, R4[:2])
    path = tmp_path / "dup" / "results.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines + lines[1:2]))  # the first row again, as a duplicated upload leaves it
    doc = json.loads(report(uri, "--format", "json").output)
    assert [r["rows"] for r in doc["runs"]] == [4]
    assert "dup: 1 row of results.csv repeats a trial id read before; each trial counts once (its first row)" \
        in doc["notes"]
