"""Per-parameter effects: the objective's mean per value (a grid: few distinct values) or per
quantile bin (a continuous parameter), and which value is best on every date range.

Each value's mean is over every ok trial where the parameter applies (all other parameters
mixed), so it is the parameter's marginal effect. Under a scheduler, trials stopped early count
beside it (`stopped`): a mean is over the trials that ran to the end, and a value whose every
trial was stopped has no mean (`Effect.stopped_only`), which the report says rather than hide.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from hpt_cli.report.load import Results, Row, _clashes, canonical, value_text

MAX_LEVELS = 8  # more distinct numeric values than this: quantile bins
BINS = 4


@dataclass
class Level:
    value: str  # the value, or the bin "[low, high)": unique within its parameter
    n: int
    mean: float
    range_means: dict[str, float] = field(default_factory=dict)
    best_on: int = 0  # date ranges where this level has the best mean
    key: str = ""  # values: the value's canonical JSON (load.canonical); bins: ""
    low: float | None = None  # bins: the edges, as numbers
    high: float | None = None
    stopped: int = 0  # trials of this value (or bin) stopped early by the scheduler: not in the mean


@dataclass
class Effect:
    parameter: str
    kind: str  # "values" or "bins"
    levels: list[Level]
    ranges: int  # date ranges where at least two levels could be compared
    consistent: str | None  # the level best on every one of those ranges, if any
    stopped_only: dict[str, int] = field(default_factory=dict)  # value -> its trials, every one stopped


def parameter_effects(results: Results) -> list[Effect]:
    rows = results.ok
    stopped = [r for r in results.rows if r.status == "stopped"]
    names = list(dict.fromkeys(n for r in rows for n in r.params))
    out = []
    if len({r.architecture for r in rows}) > 1:
        out.append(_effect(results, "architecture", [(r.architecture, r) for r in rows],
                           [(r.architecture, r) for r in stopped]))
    for name in names:
        pairs = [(r.params[name], r) for r in rows if name in r.params]
        if len({canonical(v) for v, _ in pairs}) > 1:
            out.append(_effect(results, name, pairs, [(r.params[name], r) for r in stopped if name in r.params]))
    return out


def _effect(results: Results, name: str, pairs: list[tuple[Any, Row]],
            stopped: list[tuple[Any, Row]] = ()) -> Effect:
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v, _ in pairs)
    distinct = {canonical(v): v for v, _ in pairs}
    if numeric and len(distinct) > MAX_LEVELS:
        kind, levels = "bins", _bins(pairs)
    else:
        kind = "values"
        order = _in_order(distinct)
        groups: dict[str, list[Row]] = {k: [] for k in order}
        for v, r in pairs:
            groups[canonical(v)].append(r)
        levels = [_level(text, groups[k], key=k) for k, text in zip(order, _labels(distinct, order))]
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
    stopped_only: dict[str, int] = {}  # canonical value -> its trials, every one stopped
    unfinished: dict[str, Any] = {}
    by_key = {lv.key: lv for lv in levels}
    for v, _ in stopped:
        if kind == "bins":
            x = float(v)
            lv = next((lv for lv in levels if lv.low <= x < lv.high or (x == lv.high and lv is levels[-1])), None)
        else:
            lv = by_key.get(canonical(v))
        if lv is not None:
            lv.stopped += 1
        else:
            k = canonical(v)
            unfinished.setdefault(k, v)
            stopped_only[k] = stopped_only.get(k, 0) + 1
    order = _in_order(unfinished)
    return Effect(name, kind, levels, compared, consistent,
                  {text: stopped_only[k] for k, text in zip(order, _labels(unfinished, order))})


def _labels(distinct: dict[str, Any], order: list[str]) -> list[str]:
    """The labels of `distinct`'s values in `order`: short, with full precision for those whose
    short text would be the same as another's."""
    texts = {k: value_text(distinct[k]) for k in order}
    for k in _clashes(texts):
        texts[k] = value_text(distinct[k], precise=True)
    return [texts[k] for k in order]


def _in_order(distinct: dict[str, Any]) -> list[str]:
    """Canonical keys of `distinct` (key -> value) by value where all are numbers, else by key."""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in distinct.values())
    return sorted(distinct, key=lambda k: (0, distinct[k], "") if numeric else (1, 0, k))


def _bins(pairs: list[tuple[Any, Row]]) -> list[Level]:
    """Quantile bins, keyed by their index; the edges written with the fewest significant digits
    (at least 3) that keep them distinct."""
    import numpy as np

    values = np.array([float(v) for v, _ in pairs])
    edges = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)))
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    digits = next((d for d in range(3, 18) if len({f"{e:.{d}g}" for e in edges}) == len(edges)), 17)
    levels = []
    for b in range(len(edges) - 1):
        members = [r for (_, r), i in zip(pairs, index) if i == b]
        if members:
            low, high = float(edges[b]), float(edges[b + 1])
            text = f"[{low:.{digits}g}, {high:.{digits}g}{']' if b == len(edges) - 2 else ')'}"
            levels.append(_level(text, members, low=low, high=high))
    return levels


def _level(label: str, rows: list[Row], key: str = "", low: float | None = None,
           high: float | None = None) -> Level:
    per_range: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        per_range[r.date_range].append(r.value)
    return Level(label, len(rows), math.fsum(r.value for r in rows) / len(rows),
                 {k: math.fsum(v) / len(v) for k, v in sorted(per_range.items())}, key=key, low=low, high=high)
