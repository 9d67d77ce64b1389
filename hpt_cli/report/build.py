"""`build_report(uris)`: everything `hpt report` shows, as plain dataclasses (JSON via `to_dict`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from hpt_cli.report.effects import Effect, parameter_effects
from hpt_cli.report.load import Results, load_results
from hpt_cli.report.ranking import (
    Comparison,
    ConfigStats,
    cells_by_config,
    compare_best,
    rank_configs,
)
from hpt_cli.report.timeline import (
    FailedConfig,
    Failures,
    PartlyFailedConfig,
    Trajectory,
    failed_configurations,
    failures,
    trajectories,
)
from hpt_cli.words import plural


@dataclass
class RunInfo:
    uri: str
    label: str
    rows: int
    status: str  # summary.json's status, or "in progress" when there is none yet
    skipped_lines: int
    repeated_rows: int = 0


@dataclass
class BestTrial:
    trial_id: str
    run: str
    label: str
    date_range: str
    repeat: int
    value: float
    artifact: str


@dataclass
class Report:
    metric: str
    mode: str
    runs: list[RunInfo]
    rows: int
    configurations: int  # ranked: those with a result (failed_configurations are the others)
    ranges: list[str]
    repeats: int
    ranking: list[ConfigStats]  # the top ones; empty when no configuration has a result
    comparisons: list[Comparison]
    effects: list[Effect]
    trajectories: list[Trajectory]
    failures: Failures
    best_trial: BestTrial | None  # None when nothing is ranked
    notes: list[str]
    # no result on any date range: every trial failed (not ranked), by label
    failed_configurations: list[FailedConfig] = dataclasses.field(default_factory=list)
    # ranked, but failed on some date ranges (their mean is over the others), by rank
    partly_failed_configurations: list[PartlyFailedConfig] = dataclasses.field(default_factory=list)
    # configurations first (alone or tied) on each date range
    range_firsts: dict[str, int] = dataclasses.field(default_factory=dict)
    # every ranked configuration first (alone or tied) on every date range, by rank (JSON: labels)
    first_on_every_range: list[ConfigStats] = dataclasses.field(default_factory=list)

    @property
    def ranked(self) -> bool:
        """Whether some configuration has a result; if not, every trial failed (or returned no
        objective) and the report holds its failures only."""
        return bool(self.ranking)

    @property
    def winner(self) -> ConfigStats:
        return self.ranking[0]

    def to_dict(self) -> dict[str, Any]:
        doc = _clean(dataclasses.asdict(self))
        doc["first_on_every_range"] = [c.label for c in self.first_on_every_range]
        for comp, out in zip(self.comparisons, doc["comparisons"]):
            out["significant"] = comp.significant
            out["other_better"] = comp.other_better
        doc["failures"]["errors"] = [{"error": e, "count": n, "example_trial": t}
                                     for e, n, t in self.failures.errors]
        return doc


def build_report(uris: list[str], top: int = 10) -> Report:
    """Read the runs at `uris` (local or gs://, finished or running) and analyse them.

    `top` bounds the configurations listed and compared with the best (0: all)."""
    return analyse(load_results(uris), top)


def analyse(results: Results, top: int = 10) -> Report:
    cells = cells_by_config(results)
    ranked = rank_configs(results, cells)
    shown = ranked if top <= 0 else ranked[:top]
    comparisons = compare_best(results, ranked, len(shown) - 1)
    best_trial = None
    if ranked:
        sign = 1 if results.mode == "min" else -1
        row = min((r for r in results.ranked if r.config == ranked[0].config),
                  key=lambda r: (sign * r.value, r.trial_id))
        best_trial = BestTrial(row.trial_id, row.run, results.labels[row.config], row.date_range, row.repeat,
                               row.value, row.artifact)
    runs = [RunInfo(r.uri, r.label, len(r.rows), (r.summary or {}).get("status", "in progress"),
                    r.skipped_lines, r.repeated_rows) for r in results.runs]
    notes = []
    for run in runs:
        if run.status == "in progress":
            notes.append(f"{run.label} has no summary.json of its latest attempt yet: a run in progress (or killed); "
                         "this report covers its finished trials")
        if run.skipped_lines:
            notes.append(f"{run.label}: {run.skipped_lines} lines of results.csv with the wrong number "
                         "of cells were skipped")
        if run.repeated_rows:
            notes.append(f"{run.label}: {plural(run.repeated_rows, 'row')} of results.csv "
                         f"{'repeats' if run.repeated_rows == 1 else 'repeat'} a trial id read before; "
                         "each trial counts once (its first row)")
    counts = {c.n for c in ranked}
    if len(counts) > 1:
        notes.append(f"configurations have results on {min(counts)} to {max(counts)} date ranges each (the "
                     f"column n); those with fewer than {max(counts)} rank after the others, as their means are "
                     "over other date ranges")
    stopped = {r.config for r in results.rows if r.status == "stopped"}
    early = sum(1 for c in ranked if c.config in stopped)
    if early:
        notes.append(f"{early} configurations were stopped early by the scheduler on some date range; "
                     "they rank after the configurations that ran every epoch")
    repeats = max((r.repeat for r in results.rows), default=0) + 1
    everywhere, partly = failed_configurations(results, ranked)
    firsts = {rng: sum(1 for c in ranked if c.range_ranks.get(rng) == 1) for rng in results.ranges}
    first_everywhere = [c for c in ranked if all(c.range_ranks.get(rng) == 1 for rng in results.ranges)]
    return Report(results.metric, results.mode, runs, len(results.rows), len(ranked), results.ranges,
                  repeats, shown, comparisons, parameter_effects(results), trajectories(results),
                  failures(results), best_trial, notes, everywhere, partly, firsts, first_everywhere)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value
