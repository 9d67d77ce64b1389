"""Is the search still improving? The incumbent (best configuration so far) of each run against
cumulative trial time and wall time; and what failed.

The incumbent counts a configuration once all its (date range, repeat) trials have a row, and
scores it by the mean objective of its ok ones: a configuration that did well on one easy date
range is not an incumbent until its other ranges are in.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from hpt_cli.report.load import Results, Run


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
            line = (r.error.strip().splitlines() or [f"({r.status}, no error text)"])[0][:200]
            lines[line] += 1
            example.setdefault(line, r.trial_id)
    errors = [(line, n, example[line]) for line, n in lines.most_common(top)]
    return Failures(dict(sorted(by_status.items(), key=lambda kv: (kv[0] != "ok", kv[0]))), no_value, errors)
