"""What the runner tells the outside world as a run goes on (progress, event logs, JUnit...).

Observers subclass `RunObserver` and override what they need; the runner calls them from its
own thread, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hpt_cli.search.trial import Trial


@dataclass
class TrialOutcome:
    """A finished trial as written to results.csv, plus the fields observers want typed."""

    trial: Trial
    status: str  # ok | stopped (early, by the scheduler) | failed | timeout
    metrics: dict[str, float]
    error: str | None
    duration_s: float
    attempts: int
    worker: str
    artifact_dir: str
    row: dict[str, str] = field(default_factory=dict)


@dataclass
class RunInfo:
    run_id: str
    uri: str
    total: int  # trials in the spec
    skipped: int  # already in results.csv (resumed)
    workers: int
    objective: str
    mode: str
    resolved_spec: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # e.g. where the spool is, storage warnings
    # the rows earlier attempts of this run wrote (resume), and parameter name -> its column
    earlier: list[dict[str, str]] = field(default_factory=list)
    param_columns: dict[str, str] = field(default_factory=dict)


class RunObserver:
    def run_started(self, info: RunInfo) -> None: ...

    def trial_started(self, trial: Trial, attempt: int, worker_count: int) -> None: ...

    def trial_finished(self, outcome: TrialOutcome) -> None: ...

    def tick(self, running: int) -> None:
        """Called at least every poll interval, for live displays."""

    def run_finished(self, summary: dict[str, Any]) -> None: ...
