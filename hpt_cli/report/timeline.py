"""Is the search still improving? The incumbent (best configuration so far) of each run against
cumulative trial time and wall time; and what failed: rows by status with the commonest errors,
the configurations that failed on every date range (no result, so not ranked) and those that
failed on some (ranked on the others).

The incumbent counts a configuration once all its (date range, repeat) trials have a row, and
scores it by the mean objective of its ok ones: a configuration that did well on one easy date
range is not an incumbent until its other ranges are in.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from hpt_cli.report.load import Results, Row, Run


@dataclass
class Step:
    trial_id: str  # the trial whose row completed the new incumbent
    trial_time_s: float  # cumulative duration_s of the run's trials, in finish order
    wall_time_s: float  # ended_at - the run's first started_at
    best: float
    label: str


@dataclass
class Trajectory:
    run: str
    steps: list[Step]  # each time the incumbent improved
    trial_time_s: float  # totals, where the curve ends
    wall_time_s: float


def trajectories(results: Results) -> list[Trajectory]:
    return [_trajectory(run, results) for run in results.runs if run.rows]


def _trajectory(run: Run, results: Results) -> Trajectory:
    sign = 1 if results.mode == "min" else -1
    rows = sorted(run.rows, key=lambda r: (r.ended_at is None, r.ended_at or 0, r.trial_id))
    starts = [r.started_at for r in rows if r.started_at is not None]
    t0 = min(starts) if starts else None
    need = set(run.cells) or {(r.date_range, r.repeat) for r in rows}
    seen: dict[str, set] = defaultdict(set)
    values: dict[str, list[float]] = defaultdict(list)
    done: set[str] = set()
    steps: list[Step] = []
    total = wall = 0.0
    for r in rows:
        total += r.duration_s if math.isfinite(r.duration_s) else 0.0
        if t0 is not None and r.ended_at is not None:
            wall = max(wall, (r.ended_at - t0).total_seconds())
        if r.status == "ok" and math.isfinite(r.value):  # only whole results: a stopped or failed
            seen[r.config].add((r.date_range, r.repeat))  # cell keeps the configuration out
            values[r.config].append(r.value)
        if r.config in done or not need <= seen[r.config] or not values[r.config]:
            continue
        done.add(r.config)
        mean = math.fsum(values[r.config]) / len(values[r.config])
        if not steps or sign * mean < sign * steps[-1].best:
            steps.append(Step(r.trial_id, total, wall, mean, results.labels[r.config]))
    return Trajectory(run.label, steps, total, wall)


@dataclass
class Failures:
    by_status: dict[str, int]
    no_value: int  # ok rows without an objective value
    errors: list[tuple[str, int, str]] = field(default_factory=list)  # (error line, count, a trial id)


def failures(results: Results, top: int = 5) -> Failures:
    by_status = Counter(r.status for r in results.rows)
    no_value = sum(1 for r in results.rows if r.status == "ok" and not math.isfinite(r.value))
    lines = Counter()
    example: dict[str, str] = {}
    for r in results.rows:
        if r.status not in ("ok", "stopped"):  # stopped early by the scheduler: no failure
            line = error_line(r, results.metric)
            lines[line] += 1
            example.setdefault(line, r.trial_id)
    errors = [(line, n, example[line]) for line, n in lines.most_common(top)]
    return Failures(dict(sorted(by_status.items(), key=lambda kv: (kv[0] != "ok", kv[0]))), no_value, errors)


def has_value(row: Row) -> bool:
    """Whether the ranking uses this row (see Results.ranked)."""
    return row.status in ("ok", "stopped") and math.isfinite(row.value)


def error_line(row: Row, metric: str) -> str:
    """Why a row has no result: the first line of its error (at most 200 characters), or what
    stands in for it."""
    if row.status in ("ok", "stopped") and not row.error.strip():
        return f"({row.status}, no {metric} value)"
    return (row.error.strip().splitlines() or [f"({row.status}, no error text)"])[0][:200]


@dataclass
class FailedConfig:
    """A configuration none of whose trials has a result: it failed on every date range it ran
    on (error, timeout, oom, ... or ok without the objective), so it is not ranked."""

    config: str  # key: architecture + JSON of params
    label: str
    architecture: str
    params: dict[str, Any]
    trials: int  # its rows
    by_status: dict[str, int]
    error: str  # the commonest first line of its errors
    error_count: int  # the rows with that line
    example_trial: str  # one of them (trials/<id>/log.txt)


@dataclass
class PartlyFailedConfig:
    """A ranked configuration with no result on some (date range, repeat) where its trial failed.
    A date range where every repeat failed is missing: its mean is over the other ranges, and it
    ranks after the complete configurations (ranking.rank_configs). A range that lost only some
    repeats still counts, with the mean of the repeats that have a result."""

    config: str
    label: str
    rank: int
    complete: bool  # as in the ranking: False when it ranks after the complete configurations
    failed_ranges: list[str]  # date ranges with no result: every (range, repeat) there failed
    ranges: int  # date ranges it has rows on
    lost_repeats: int  # failed (range, repeat) without a result on the ranges that have one
    cells: int  # (date range, repeat) it has rows on
    error: str
    error_count: int
    example_trial: str


def failed_configurations(results: Results, ranked: list) -> tuple[list[FailedConfig], list[PartlyFailedConfig]]:
    """The configurations with no result at all (by label), and the ranked ones (`ranked`, the
    ranking's ConfigStats) that failed on some (date range, repeat) without a result there (by
    rank)."""
    rows: dict[str, list[Row]] = defaultdict(list)
    for r in results.rows:
        rows[r.config].append(r)
    everywhere = []
    for config, mine in rows.items():
        if any(has_value(r) for r in mine):
            continue
        error, count, example = _commonest(mine, results.metric)
        everywhere.append(FailedConfig(config, results.labels[config], mine[0].architecture, mine[0].params,
                                       len(mine), dict(sorted(Counter(r.status for r in mine).items())),
                                       error, count, example))
    everywhere.sort(key=lambda f: (f.label, f.config))
    partly = []
    for c in ranked:
        mine = rows[c.config]
        done = {(r.date_range, r.repeat) for r in mine if has_value(r)}
        failed = [r for r in mine if not has_value(r) and (r.date_range, r.repeat) not in done]
        if not failed:
            continue
        error, count, example = _commonest(failed, results.metric)
        have = {rng for rng, _ in done}
        lost = {(r.date_range, r.repeat) for r in failed if r.date_range in have}
        partly.append(PartlyFailedConfig(c.config, c.label, c.rank, c.complete,
                                         sorted({r.date_range for r in failed} - have),
                                         len({r.date_range for r in mine}), len(lost),
                                         len({(r.date_range, r.repeat) for r in mine}), error, count, example))
    return everywhere, partly


def _commonest(rows: list[Row], metric: str) -> tuple[str, int, str]:
    lines = Counter(error_line(r, metric) for r in rows)
    line, count = lines.most_common(1)[0]
    return line, count, next(r.trial_id for r in rows if error_line(r, metric) == line)
