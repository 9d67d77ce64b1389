"""Which configuration wins: the ranking by the objective, the rank on each date range, and the
paired tests of the best against the next ones.

A configuration's *cells* are its (date range, repeat) results; when merged runs hold the same
cell twice (overlapping rolling windows), the cell is their mean. The statistical unit is the
date range: repeats of one range share its data window (for a deterministic model they are
copies), so they are averaged within the range first, and the mean, its confidence interval, the
paired tests and "ranges won" are all over date ranges.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from hpt_cli.report.load import Results
from hpt_cli.report.stats import holm, paired_test, summarize

Cells = dict[tuple[str, int], float]


@dataclass
class ConfigStats:
    rank: int
    config: str  # key: architecture + JSON of params
    label: str
    architecture: str
    params: dict[str, Any]
    n: int  # date ranges with a result (each the mean of its repeats)
    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None
    range_means: dict[str, float] = field(default_factory=dict)
    range_ranks: dict[str, int] = field(default_factory=dict)
    wins_every_range: bool = False  # strictly first on every date range of the report
    complete: bool = True  # has as many results as the most complete configuration


@dataclass
class Comparison:
    rank: int  # the other configuration's rank
    label: str
    pairs: int  # shared date ranges: the pairs of the paired test
    ahead_by: float  # mean advantage of the best (positive: the best is better)
    ranges_won: int  # date ranges where the best's mean is better
    ranges: int  # date ranges both have
    test: str | None
    why: str
    p: float | None
    p_holm: float | None = None

    @property
    def significant(self) -> bool:
        """The best is significantly better: Holm p < 0.05 and ahead (not merely different)."""
        return self.p_holm is not None and self.p_holm < 0.05 and self.ahead_by > 0

    @property
    def other_better(self) -> bool:
        """The other configuration is significantly better where both have results: it ranks
        lower only because it is incomplete (fewer date ranges, or stopped early)."""
        return self.p_holm is not None and self.p_holm < 0.05 and self.ahead_by < 0


def cells_by_config(results: Results) -> dict[str, Cells]:
    sums: dict[str, dict[tuple[str, int], list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results.ranked:
        sums[r.config][(r.date_range, r.repeat)].append(r.value)
    return {c: {k: math.fsum(v) / len(v) for k, v in cells.items()} for c, cells in sums.items()}


def rank_configs(results: Results, cells: dict[str, Cells]) -> list[ConfigStats]:
    """Every configuration with a result, best first (ties broken by label).

    Configurations with results on fewer date ranges than the most complete one (a run in
    progress, a configuration that failed on every repeat of some range) rank after the complete
    ones: their mean is over other date ranges, which may be easier or harder. A range that lost
    some repeats still counts: its mean is over the repeats it has. So do configurations the scheduler stopped
    early on some range: their value there is of fewer epochs, not comparable with a full one."""
    sign = 1 if results.mode == "min" else -1
    first = {}
    for r in results.rows:
        first.setdefault(r.config, r)
    stats = []
    for config, by_cell in cells.items():
        means = range_means(by_cell)
        s = summarize(list(means.values()))
        row = first[config]
        stats.append(ConfigStats(0, config, results.labels[config], row.architecture, row.params,
                                 s.n, s.mean, s.std, s.ci_low, s.ci_high, means))
    if not stats:  # no configuration has a result: every trial failed
        return []
    most = max(c.n for c in stats)
    stopped = {r.config for r in results.rows if r.status == "stopped"}
    for c in stats:
        c.complete = c.n == most and c.config not in stopped
    stats.sort(key=lambda c: (not c.complete, sign * c.mean, c.label))
    for i, c in enumerate(stats, 1):
        c.rank = i
    for rng in results.ranges:  # competition ranking: ties share the better rank
        here = sorted(sign * c.range_means[rng] for c in stats if rng in c.range_means)
        for c in stats:
            if rng in c.range_means:
                c.range_ranks[rng] = 1 + bisect.bisect_left(here, sign * c.range_means[rng])
    firsts = {rng: sum(1 for c in stats if c.range_ranks.get(rng) == 1) for rng in results.ranges}
    for c in stats:  # first on every range, alone (a tie for first is no win), with a runner-up
        c.wins_every_range = len(stats) > 1 and all(
            c.range_ranks.get(rng) == 1 and firsts[rng] == 1 for rng in results.ranges)
    return stats


def range_means(by_cell: Cells) -> dict[str, float]:
    """Each date range's mean over its repeats, by range."""
    per_range: dict[str, list[float]] = defaultdict(list)
    for (rng, _), v in by_cell.items():
        per_range[rng].append(v)
    return {k: math.fsum(v) / len(v) for k, v in sorted(per_range.items())}


def compare_best(results: Results, ranked: list[ConfigStats], count: int) -> list[Comparison]:
    """The best configuration against each of the next `count` ones, paired by date range,
    Holm-corrected."""
    if len(ranked) < 2:
        return []
    sign = 1 if results.mode == "min" else -1
    best = ranked[0]
    out = []
    for other in ranked[1: 1 + count]:
        common = [r for r in best.range_means if r in other.range_means]
        b = [best.range_means[r] for r in common]
        o = [other.range_means[r] for r in common]
        test = paired_test(b, o)
        ahead = math.fsum(sign * (y - x) for x, y in zip(b, o)) / len(common) if common else math.nan
        won = sum(1 for x, y in zip(b, o) if sign * x < sign * y)
        out.append(Comparison(other.rank, other.label, len(common), ahead, won, len(common),
                              test.test, test.why, test.p))
    for comp, adjusted in zip(out, holm([c.p for c in out])):
        comp.p_holm = adjusted
    return out
