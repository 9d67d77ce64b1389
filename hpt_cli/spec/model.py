"""The resolved spec: frozen dataclasses, every default filled in, dates concrete."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from hpt_cli.dates import DateRange, Length, month_start, parse_length
from hpt_cli.spec.domains import Domain

BUNDLED_DATA = "chicago_ridership"


@dataclass(frozen=True)
class Search:
    strategy: str = "grid"  # grid | random
    trials: int | None = None  # random: how many configurations to draw
    seed: int = 0
    order: str = "shuffled"  # grid: shuffled | sequential
    repeats: int = 1
    max_time: float | None = None  # adaptive search: seconds after which no configuration is proposed
    # configurations run before the search's own, as (architecture, params); a parameter left out
    # has the spec's value where the spec fixes it (the parser fills it in), else it is not passed
    # to the trial, so the architecture's default applies (auto stage 2: stage 1's winner)
    initial: tuple[tuple[str, dict[str, Any]], ...] = ()


@dataclass(frozen=True)
class Objective:
    metric: str = "val_mse"
    mode: str = "min"  # min | max


@dataclass(frozen=True)
class DataSpec:
    """Where the data is; `path` None means the bundled Chicago ridership data set."""

    path: str | None = None
    date_column: str = "date"
    target: str = "ridership"
    validation: Length = field(default_factory=lambda: Length(1, "M"))

    @property
    def name(self) -> str:
        if self.path is None:
            return BUNDLED_DATA
        base = self.path.replace("\\", "/").rsplit("/", 1)[-1]
        for suffix in (".gz", ".csv", ".parquet", ".pq"):
            base = base.removesuffix(suffix)
        return base

    def absolute(self) -> DataSpec:
        """This data with a relative `path` made absolute from the current folder: what a worker
        gets (a relative path is the runner's folder's, also for a worker elsewhere; the spec, and
        so the run id, keeps the path as written)."""
        import os

        if self.path is None or os.path.isabs(os.path.expanduser(self.path)):
            return self
        return replace(self, path=os.path.abspath(self.path))


@dataclass(frozen=True)
class Resources:
    gpus_per_trial: float | str = 0.0  # a share (0.25), 1, a whole number, or "auto"
    cpus_per_trial: int = 1
    gpu_memory_per_trial_mib: int | None = None


@dataclass(frozen=True)
class QuickSpec:
    """Quick mode: the last `date_ranges` ranges, each cut to its last `train_length`, `epochs` epochs."""

    date_ranges: int = 1
    train_length: Length = field(default_factory=lambda: Length(1, "M"))
    epochs: int = 20


@dataclass(frozen=True)
class ExecutorSpec:
    type: str = "local"  # local | dask
    scheduler: str | None = None  # dask: tcp://host:8786


@dataclass(frozen=True)
class TrialSettings:
    timeout: float | None = None  # seconds
    retries: int = 0
    epochs: int | None = None


@dataclass(frozen=True)
class SchedulerSpec:
    """Early stopping across trials (hpt_cli.search.schedulers); metric and mode resolved from the
    objective when the spec leaves them out."""

    type: str  # asha | median
    metric: str = "val_mse"
    mode: str = "min"
    grace: int = 1  # asha: the first rung's epoch; median: the epochs before any stop
    reduction: int = 3  # asha: eta, keep the top 1/reduction at each rung

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "metric": self.metric, "mode": self.mode, "grace": self.grace,
                "reduction": self.reduction}


TODAY = "today"


def relative_end(text: str, today: date) -> date | None:
    """The last rolling window's end for run day `today` when `text` is relative to it: "today" is
    the first of its month, "today-1M" a length before that; None for anything else (an ISO
    date). A bad length after "today-" is a ValueError saying what is expected."""
    if text == TODAY:
        return month_start(today)
    if text.startswith(TODAY + "-"):
        return parse_length(text[len(TODAY) + 1:]).add_to(month_start(today), -1)
    return None


@dataclass(frozen=True)
class Rolling:
    count: int
    length: Length
    step: Length
    end: str  # "today", "today-<length>" ("today-1M") or an ISO date

    def end_on(self, today: date) -> date | None:
        """The last window's end for the run day `today`, or None when `end` is a fixed date."""
        return relative_end(self.end, today)


@dataclass(frozen=True)
class Spec:
    name: str
    architectures: tuple[str, ...]
    date_ranges: tuple[DateRange, ...]
    parameters: tuple[tuple[str, Domain], ...] = ()  # shared by every architecture
    command: tuple[str, ...] | None = None
    rolling: Rolling | None = None
    search: Search = Search()
    objective: Objective = Objective()
    metrics: tuple[str, ...] = ()
    data: DataSpec = DataSpec()
    resources: Resources = Resources()
    executor: ExecutorSpec = ExecutorSpec()
    trial: TrialSettings = TrialSettings()
    mode: str = "full"  # full | quick
    quick: QuickSpec = QuickSpec()
    output: str = "runs"
    today: date | None = None
    scheduler: SchedulerSpec | None = None
    # model selection: each architecture's own parameters ({"mlp": {...}, "ridge": {...}})
    per_architecture: tuple[tuple[str, tuple[tuple[str, Domain], ...]], ...] | None = None
    # True when the spec has no "date-range" and its ranges are the default (the last year before
    # the run day's month): error messages say so. Not part of equality, to_json() or the run id.
    default_dates: bool = field(default=False, compare=False)
    # apply_quick made this spec (not a spec that says "mode": "quick" and is yet to be made quick):
    # for_running leaves it as it is. Not part of equality, to_json() or the run id.
    quick_applied: bool = field(default=False, compare=False)

    def space_of(self, architecture: str) -> tuple[tuple[str, Domain], ...]:
        """The (name, domain) pairs one architecture is tuned over."""
        if self.per_architecture is not None:
            return dict(self.per_architecture).get(architecture, ())
        return self.parameters

    @property
    def parameter_names(self) -> list[str]:
        """Every parameter name of every architecture, in the order the spec declares them."""
        names: dict[str, None] = {}
        for arch in self.architectures:
            names.update((n, None) for n, _ in self.space_of(arch))
        return list(names)

    def all_domains(self) -> list[tuple[str, str, Domain]]:
        """(architecture, name, domain) for every architecture's parameters."""
        return [(a, n, d) for a in self.architectures for n, d in self.space_of(a)]

    def to_json(self) -> dict[str, Any]:
        """The resolved spec: every default explicit, date ranges as dates. It parses again
        to the same spec (a test holds that), and `meta()` says how it was resolved."""
        out: dict[str, Any] = {"name": self.name}
        arch = self.architectures
        out["architecture"] = arch[0] if len(arch) == 1 else list(arch)
        if self.command is not None:
            out["command"] = list(self.command)
        out["date-range"] = [r.to_json() for r in self.date_ranges]
        if self.per_architecture is not None:
            out["parameters"] = {a: {n: d.to_json() for n, d in ps} for a, ps in self.per_architecture}
        else:
            out["parameters"] = {n: d.to_json() for n, d in self.parameters}
        s = self.search
        out["search"] = {"strategy": s.strategy, "seed": s.seed, "order": s.order, "repeats": s.repeats}
        if s.trials is not None:
            out["search"]["trials"] = s.trials
        if s.max_time is not None:
            out["search"]["max_time"] = s.max_time
        if s.initial:
            several = len(self.architectures) > 1
            out["search"]["initial"] = [{"architecture": a, **p} if several else dict(p) for a, p in s.initial]
        out["objective"] = {"metric": self.objective.metric, "mode": self.objective.mode}
        out["metrics"] = list(self.metrics)
        d = self.data
        out["data"] = {"date_column": d.date_column, "target": d.target, "validation": str(d.validation)}
        if d.path is not None:
            out["data"] = {"path": d.path, **out["data"]}
        out["resources"] = {"gpus_per_trial": self.resources.gpus_per_trial,
                            "cpus_per_trial": self.resources.cpus_per_trial}
        if self.resources.gpu_memory_per_trial_mib is not None:
            out["resources"]["gpu_memory_per_trial"] = self.resources.gpu_memory_per_trial_mib
        if self.executor.type != "local":
            out["executor"] = {"type": self.executor.type}
            if self.executor.scheduler:
                out["executor"]["scheduler"] = self.executor.scheduler
        t = self.trial
        out["trial"] = {"retries": t.retries}
        if t.timeout is not None:
            out["trial"]["timeout"] = t.timeout
        if t.epochs is not None:
            out["trial"]["epochs"] = t.epochs
        if self.mode != "full":
            out["mode"] = self.mode
        q = self.quick
        if q != QuickSpec():
            out["quick"] = {"date_ranges": q.date_ranges, "train_length": str(q.train_length), "epochs": q.epochs}
        out["output"] = self.output
        if self.scheduler is not None:
            out["scheduler"] = self.scheduler.to_json()
        return out

    def meta(self) -> dict[str, Any]:
        """How the spec was resolved: the run day and the rolling rule, if any."""
        out: dict[str, Any] = {"today": self.today.isoformat() if self.today else None}
        if self.rolling is not None:
            r = self.rolling
            out["rolling"] = {"count": r.count, "length": str(r.length), "step": str(r.step), "end": r.end}
        return out
