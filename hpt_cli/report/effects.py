"""Per-parameter effects: the objective's mean per value (a grid: few distinct values) or per
quantile bin (a continuous parameter), and which value is best on every date range.

Each value's mean is over every ok trial where the parameter applies (all other parameters
mixed), so it is the parameter's marginal effect.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from hpt_cli.report.load import Results, Row, value_text

MAX_LEVELS = 8  # more distinct numeric values than this: quantile bins
BINS = 4


@dataclass
class Level:
    value: str  # the value, or the bin "[low, high]"
    n: int
    mean: float
    range_means: dict[str, float] = field(default_factory=dict)
    best_on: int = 0  # date ranges where this level has the best mean


@dataclass
class Effect:
    parameter: str
    kind: str  # "values" or "bins"
    levels: list[Level]
    ranges: int  # date ranges where at least two levels could be compared
    consistent: str | None  # the level best on every one of those ranges, if any


def parameter_effects(results: Results) -> list[Effect]:
    rows = results.ok
    names = list(dict.fromkeys(n for r in rows for n in r.params))
    out = []
    if len({r.architecture for r in rows}) > 1:
        out.append(_effect(results, "architecture", [(r.architecture, r) for r in rows]))
    for name in names:
        pairs = [(r.params[name], r) for r in rows if name in r.params]
        if len({json.dumps(v, sort_keys=True) for v, _ in pairs}) > 1:
            out.append(_effect(results, name, pairs))
    return out


def _effect(results: Results, name: str, pairs: list[tuple[Any, Row]]) -> Effect:
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v, _ in pairs)
    distinct = {json.dumps(v, sort_keys=True): v for v, _ in pairs}
    if numeric and len(distinct) > MAX_LEVELS:
        kind, groups = "bins", _bins(pairs)
    else:
        kind = "values"
        order = sorted(distinct, key=lambda k: (0, distinct[k], "") if numeric else (1, 0, k))
        groups = {value_text(distinct[k]): [r for v, r in pairs if json.dumps(v, sort_keys=True) == k]
                  for k in order}
    levels = [_level(label, rows) for label, rows in groups.items()]
    sign = 1 if results.mode == "min" else -1
    compared = 0
    for rng in results.ranges:
        here = [lv for lv in levels if rng in lv.range_means]
        if len(here) < 2:
            continue
        compared += 1
        best = min(sign * lv.range_means[rng] for lv in here)
        winners = [lv for lv in here if sign * lv.range_means[rng] == best]
        if len(winners) == 1:
            winners[0].best_on += 1
    consistent = next((lv.value for lv in levels if compared and lv.best_on == compared), None)
    return Effect(name, kind, levels, compared, consistent)


def _bins(pairs: list[tuple[Any, Row]]) -> dict[str, list[Row]]:
    import numpy as np

    values = np.array([float(v) for v, _ in pairs])
    edges = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)))
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    groups: dict[str, list[Row]] = {}
    for b in range(len(edges) - 1):
        members = [r for (_, r), i in zip(pairs, index) if i == b]
        if members:
            groups[f"[{edges[b]:.3g}, {edges[b + 1]:.3g}{']' if b == len(edges) - 2 else ')'}"] = members
    return groups


def _level(label: str, rows: list[Row]) -> Level:
    per_range: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        per_range[r.date_range].append(r.value)
    return Level(label, len(rows), math.fsum(r.value for r in rows) / len(rows),
                 {k: math.fsum(v) / len(v) for k, v in sorted(per_range.items())})
