"""The report for people: aligned plain-text sections (`hpt report`, the default format).

The table renderer is passed in (the CLI gives `hpt_cli.cli.table.render`), so this core
module does not import the CLI package, which imports click.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from hpt_cli.report.build import Report
from hpt_cli.words import and_list, plural

Table = Callable[[Sequence[str], Sequence[Sequence[Any]]], str]

MAX_STEPS = 10  # incumbent improvements shown (the last ones)
MAX_FAILED = 5  # configurations listed under the ranking as failed (on every, or on some, date ranges)


WIDTH = 100


def para(text: str) -> str:
    """A line of prose wrapped to WIDTH, continuation lines indented."""
    return textwrap.fill(text, WIDTH, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)


def item(text: str) -> str:
    """One entry of a list under a line of prose: indented, wrapped to WIDTH."""
    return textwrap.fill(text, WIDTH, initial_indent="  ", subsequent_indent="    ", break_long_words=False,
                         break_on_hyphens=False)


def num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}g}"


def pvalue(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def ci(low: float | None, high: float | None) -> str:
    return "-" if low is None else f"[{num(low)}, {num(high)}]"


def ranks(report: Report, c) -> str:
    return " ".join(str(c.range_ranks.get(r, "-")) for r in report.ranges)


def headline(report: Report) -> str:
    runs = ", ".join(r.label for r in report.runs)
    counts = ", ".join(f"{n} {s}" for s, n in report.failures.by_status.items())
    configurations = report.configurations + len(report.failed_configurations)
    return para(f"{runs}: {plural(report.rows, 'trial')} ({counts}); objective {report.metric} ({report.mode}); "
                f"{plural(configurations, 'configuration')} on {plural(len(report.ranges), 'date range')} x "
                f"{plural(report.repeats, 'repeat')}")


def ranking_section(report: Report, render: Table) -> list[str]:
    if not report.ranked:
        return [para(nothing_ranked(report))] + failed_lines(report)
    repeats = ", repeats averaged within each first (n: date ranges; " if report.repeats > 1 else " ("
    out = [para(f"Ranking: top {len(report.ranking)} of {report.configurations} by mean {report.metric} "
                f"over date ranges{repeats}95% CI: t distribution)")]
    rows = [[str(c.rank), c.label, str(c.n), num(c.mean), num(c.std), ci(c.ci_low, c.ci_high),
             ranks(report, c) + ("  wins every range" if c.wins_every_range else "")]
            for c in report.ranking]
    out.append(render(["rank", "configuration", "n", "mean", "std", "95% CI", "rank per date range"], rows))
    out.append(para("rank per date range, in this order: " + ", ".join(report.ranges)))
    out += verdict(report)
    return out + failed_lines(report)


def verdict(report: Report) -> list[str]:
    """Does the best win on every date range? Said with its ties, and naming a lower-ranked
    (incomplete) configuration that is first on every range where the best is not."""
    w = report.winner
    if w.wins_every_range:
        return [para(f"{w.label} wins on every date range.")]
    if report.configurations < 2:
        return []
    total = len(report.ranges)
    firsts = [r for r in report.ranges if w.range_ranks.get(r) == 1]
    tied = [r for r in firsts if report.range_firsts.get(r, 1) > 1]
    others = [c for c in report.first_on_every_range if c is not w]
    if len(firsts) == total and others and all(o.range_means == w.range_means for o in others):
        names = and_list([w.label] + [o.label for o in others])
        return [para(f"{names} tie for first on every date range (identical results); {w.label} is listed "
                     "first by name.")]
    alone = f", {len(tied)} of them tied" if tied else ""
    out = [para(f"No configuration wins on every date range; the best is first on {len(firsts)} of "
                f"{total}{alone}.")]
    for c in report.first_on_every_range:
        if c.wins_every_range:
            out.append(para(f"{c.label} (rank {c.rank}) is first on every date range, but ranks after the "
                            f"complete configurations: {incomplete(report, c)}."))
    return out


def incomplete(report: Report, c) -> str:
    """Why a configuration ranks after the complete ones."""
    if c.n < report.winner.n:
        return f"it has results on {c.n} of {len(report.ranges)} date ranges"
    return "the scheduler stopped it early on some date range"


def nothing_ranked(report: Report) -> str:
    """The ranking's line when no configuration has a result (every trial failed)."""
    return (f"Nothing to rank: no configuration has a {report.metric} result (every trial failed or "
            f"returned no {report.metric}; the failures are below)")


def failed_lines(report: Report) -> list[str]:
    """The configurations that failed on every date range (not ranked, so not in the table), and
    those that failed on some (ranked on the others); nothing when there are none."""
    out = []
    failed = report.failed_configurations
    if failed:
        total = report.configurations + len(failed)
        out.append(f"{len(failed)} of {total} configurations failed on every date range (not ranked):")
        out += [item(f"{f.label}: {f.error} ({f.error_count} of {f.trials} trials)") for f in failed[:MAX_FAILED]]
        out += _more(len(failed))
    missing = [p for p in report.partly_failed_configurations if p.failed_ranges]
    if missing:
        one = len(missing) == 1
        why = f"{'its' if one else 'their'} mean is over the other date ranges only"
        if not any(p.complete for p in missing):
            why += f", so {'it ranks' if one else 'they rank'} after the configurations with more results"
        out.append(para(f"{len(missing)} ranked configuration{'' if one else 's'} failed on some date ranges: "
                        f"{why}:"))
        out += [item(f"{p.label} (rank {p.rank}): failed on {len(p.failed_ranges)} of {p.ranges} date "
                     f"range{'' if p.ranges == 1 else 's'}{_lost(p, ' (and on ', ')')}, {p.error}")
                for p in missing[:MAX_FAILED]]
        out += _more(len(missing))
    lost = [p for p in report.partly_failed_configurations if not p.failed_ranges]
    if lost:
        one = len(lost) == 1
        out.append(para(f"{len(lost)} ranked configuration{'' if one else 's'} lost some repeats to failures, "
                        "but no whole date range: on those ranges the mean is over the repeats with a result:"))
        out += [item(f"{p.label} (rank {p.rank}): failed on {_lost(p)}, {p.error}") for p in lost[:MAX_FAILED]]
        out += _more(len(lost))
    return out


def _lost(p, before: str = "", after: str = "") -> str:
    """The (date range, repeat) results a partly failed configuration lost on ranges that have one."""
    if not p.lost_repeats:
        return ""
    return f"{before}{p.lost_repeats} of {p.cells} (date range, repeat) results{after}"


def _more(count: int) -> list[str]:
    return [f"  and {count - MAX_FAILED} more (--format json lists them all)"] if count > MAX_FAILED else []


def comparison_section(report: Report, render: Table) -> list[str]:
    if not report.comparisons:
        return []
    better = "lower" if report.mode == "min" else "higher"
    repeats = " (repeats averaged within each first)" if report.repeats > 1 else ""
    out = [para(f"Is the best really better? {report.winner.label} vs each next one: paired by date "
                f"range{repeats}, two-sided, p-values Holm-corrected; 'ahead by' is the mean paired "
                f"difference ({better} {report.metric} is better)")]
    rows = [[str(c.rank), c.label, str(c.pairs), num(c.ahead_by), f"{c.ranges_won}/{c.ranges}",
             c.test or "none", pvalue(c.p), pvalue(c.p_holm), _verdict(c)]
            for c in report.comparisons]
    out.append(render(["vs", "configuration", "pairs", "ahead by", "ranges won", "test", "p", "p Holm",
                       "p<0.05"], rows))
    for c in report.comparisons:
        if c.other_better:
            out.append(para(f"{c.label} (rank {c.rank}) is significantly better than the best where both have "
                            f"results ({c.pairs} date ranges, Holm p {pvalue(c.p_holm)}): it ranks lower only "
                            "because it is incomplete."))
    for why in dict.fromkeys(f"{c.test or 'no test'}: {c.why}" for c in report.comparisons):
        out.append(para(why))
    return out


def _verdict(c) -> str:
    """The p<0.05 column: is the best significantly better, or significantly worse?"""
    return "yes" if c.significant else "best worse" if c.other_better else "no"


def effects_section(report: Report, render: Table) -> list[str]:
    if not report.effects:
        return []
    out = [para(f"Parameter effects: mean {report.metric} per value (all other parameters mixed); "
                "'best on' = date ranges where the value's mean is best; * = best on every range")]
    rows = []
    stopped = any(lv.stopped for e in report.effects for lv in e.levels) or any(e.stopped_only for e in report.effects)
    for e in report.effects:
        for i, lv in enumerate(e.levels):
            mark = "*" if lv.value == e.consistent else ""
            rows.append([e.parameter if i == 0 else "", lv.value + mark, str(lv.n), num(lv.mean),
                         f"{lv.best_on}/{e.ranges}", *([str(lv.stopped)] if stopped else [])])
    out.append(render(["parameter", "value", "n", "mean", "best on", *(["stopped"] if stopped else [])], rows))
    if stopped:
        out.append(para("n and mean count the trials that ran to the end; the scheduler stopped the others, "
                        "mostly the losing ones, so a value with many stopped trials looks better than its "
                        "stopped trials were."))
    for e in report.effects:
        if e.stopped_only:
            shown = ", ".join(f"{v} ({n} stopped)" for v, n in e.stopped_only.items())
            out.append(para(f"{e.parameter}: every trial of {shown} was stopped early: no mean."))
    return out


def trajectory_section(report: Report, render: Table) -> list[str]:
    if not report.ranked:
        return []
    out = [para(f"Incumbent: best configuration so far (mean {report.metric}, once all its date ranges "
                "are in), against the trials' cumulative time and wall time")]
    for t in report.trajectories:
        steps = t.steps[-MAX_STEPS:]
        more = f", last {len(steps)} of {len(t.steps)} improvements" if len(t.steps) > len(steps) else ""
        out.append(f"{t.run}: {num(t.trial_time_s)} s of trials, {num(t.wall_time_s)} s wall time{more}")
        if steps:
            out.append(render(["trial time s", "wall time s", f"best {report.metric}", "configuration"],
                              [[num(s.trial_time_s), num(s.wall_time_s), num(s.best), s.label] for s in steps]))
        else:
            out.append("  no configuration has all its date ranges yet")
    return out


def failure_section(report: Report, render: Table) -> list[str]:
    f = report.failures
    out = ["Failures: " + ", ".join(f"{n} {s}" for s, n in f.by_status.items())
           + (f"; {f.no_value} ok rows without {report.metric}" if f.no_value else "")]
    if f.errors:
        out.append(render(["count", "error", "e.g. trial"], [[str(n), e, t] for e, n, t in f.errors]))
    return out


def best_section(report: Report) -> list[str]:
    b = report.best_trial
    if b is None:
        return []
    return [f"Best trial: {b.trial_id}, {report.metric} {num(b.value, 6)}: the best configuration's best result",
            para(f"  {b.label}; {b.date_range}, repeat {b.repeat}; run {b.run}"),
            f"  files: {b.artifact or '-'}"]


def render_text(report: Report, table: Table) -> str:
    sections = [[headline(report)], ranking_section(report, table), comparison_section(report, table),
                effects_section(report, table), trajectory_section(report, table), failure_section(report, table),
                best_section(report), [para(f"note: {n}") for n in report.notes]]
    return "\n\n".join("\n".join(s) for s in sections if s) + "\n"
