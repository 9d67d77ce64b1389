"""Adaptive search (tpe, gp, cmaes, qmc) through Optuna's ask-and-tell interface.

One Optuna trial is one configuration; hpt runs it on every date range and repeat, so `ask()`
hands out a configuration's trials one by one and asks the study for a new configuration only
when they are all out, while fewer than `search.trials` configurations were started and
`search.max_time` (from the first ask) has not passed. Once every trial of a configuration is
told, the study is told the mean objective over them, or FAIL when one failed or its metric is
missing or not finite. A configuration with trials the scheduler stopped early (and none failed)
is PRUNED, reported at the fewest epochs one of them reached with the mean of their objectives,
as Optuna's own pruners leave a trial: TPE counts it to leave its random start-up and ranks it
below every complete one (by step, then value), so early stopping does not turn it into random
search. (GP and CMA-ES look at complete trials only; QMC at neither.) Asking again before
results arrive gives new configurations at once (TPE with a constant liar; GP, CMA-ES and QMC
account for running trials themselves), so free slots never wait for the sampler to learn.

A configuration proposed again (small finite spaces) is told the first one's value (or waits for
it) and does not count against the budget: the study is asked again, up to MAX_REPEATS times in a
row, after which the search ends. A space whose every domain is finite caps the budget at its
size (RandomSpace.distinct, what `hpt validate` and `hpt expand` show).

The spec's `search.initial` configurations (a baseline; auto stage 2: stage 1's winner) are
handed out first, before the study asks for anything, on top of the `search.trials` budget and
whatever `search.max_time` says. They are not study trials: one may leave parameters out (at the
architecture's defaults) or lie outside the space, and `study.enqueue_trial` with a value missing
lets the sampler draw it, which would run another configuration. Should the study propose an
initial configuration itself, it shares its trials, as a configuration proposed twice does.

`replay(rows)` feeds the rows of an earlier attempt of the same run to the study before the first
ask: complete configurations become finished study trials and count against the budget;
incomplete ones are asked first, and only their missing trials run. A resumed search then goes on
from what was learnt, though not along the path an uninterrupted run would have taken: the
sampler is reseeded from (seed, number of replayed configurations), else its seeded start-up
draws would propose the finished configurations again.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib.util import find_spec
from typing import Any, NamedTuple

import optuna
from optuna.trial import Trial as OptunaTrial
from optuna.trial import TrialState, create_trial

from hpt_cli.errors import HptError
from hpt_cli.search.base import Searcher
from hpt_cli.search.optuna_space import OptunaSpace
from hpt_cli.search.space import RandomSpace
from hpt_cli.search.trial import Trial, canonical_json, config_key, derive_seed
from hpt_cli.spec.domains import Choice, Normal
from hpt_cli.spec.model import Spec

STRATEGIES = ("tpe", "gp", "cmaes", "qmc")
# strategy -> (module it needs beyond Optuna, what to install)
_REQUIRES = {"gp": ("torch", "pip install torch"), "cmaes": ("cmaes", "pip install cmaes")}
MAX_REPEATS = 50  # proposals of known configurations in a row that end the search

__all__ = ["MAX_REPEATS", "STRATEGIES", "OptunaSearcher", "make_sampler", "spec_notes"]


def make_sampler(strategy: str, seed: int, conditional: bool = False) -> optuna.samplers.BaseSampler:
    """The Optuna sampler behind a strategy, seeded. `conditional`: the space has per-architecture
    parameters (TPE then models them in groups)."""
    _check_installed(strategy)
    s = optuna.samplers
    with warnings.catch_warnings():  # group, QMCSampler: "experimental" warnings, once per run
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if strategy == "tpe":
            return s.TPESampler(seed=seed, multivariate=True, constant_liar=True, group=conditional)
        if strategy == "gp":
            return s.GPSampler(seed=seed, warn_independent_sampling=False)
        if strategy == "cmaes":
            return s.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        return s.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False)


def _check_installed(strategy: str) -> None:
    """HptError unless `strategy` is adaptive and what it needs beyond Optuna is installed."""
    if strategy not in STRATEGIES:
        raise HptError(f"search strategy {strategy!r} is not adaptive (adaptive: {', '.join(STRATEGIES)})")
    if strategy in _REQUIRES:
        module, install = _REQUIRES[strategy]
        if find_spec(module) is None:
            raise HptError(f"search strategy {strategy!r} needs the {module} package: {install}")


def spec_notes(spec: Spec) -> list[str]:
    """What an adaptive spec asks for that its strategy does not honour as random search does, one
    line each (the preflight's notes): choice weights other than 0 (Optuna has no prior weights),
    normal and lognormal domains (searched uniformly, see optuna_space). HptError when the
    strategy's package is missing here, as `hpt run` would say."""
    strategy = spec.search.strategy
    _check_installed(strategy)
    several = len(spec.architectures) > 1
    weighted, normal = [], []
    for arch, name, domain in spec.all_domains():
        path = f"parameters.{arch}.{name}" if several else f"parameters.{name}"
        if isinstance(domain, Choice) and len({w for w in domain.weights or () if w > 0}) > 1:
            weighted.append(path)
        elif isinstance(domain, Normal):
            normal.append(path)
    notes = []
    if weighted:
        notes.append(f"{strategy} ignores choice weights ({', '.join(weighted)}): it searches every value "
                     "of weight > 0 alike; random search draws by weight")
    if normal:
        notes.append(f"{strategy} searches normal and lognormal domains ({', '.join(normal)}) uniformly over "
                     "mu +- 3 sigma (lognormal: log-uniformly); random search draws from the distribution")
    return notes


class _Told(NamedTuple):
    """What a trial that did not fail told: its objective (None: a stopped trial that had not
    reported it) and, for a trial the scheduler stopped, the epochs it reached."""

    value: float | None
    stopped_at: int | None = None


@dataclass
class _Config:
    """One configuration: its trial ids, what came back so far, and the study trials waiting."""

    trial_ids: tuple[str, ...]
    waiting: list[OptunaTrial] = field(default_factory=list)
    results: dict[str, _Told | None] = field(default_factory=dict)  # trial id -> outcome; None: failed
    finished: bool = False
    verdict: _Verdict | None = None  # what the study is told, once finished


class OptunaSearcher(Searcher):
    """A Searcher over an in-memory Optuna study; `clock` (seconds) times search.max_time,
    `sampler` replaces the strategy's own (tests); the spec's `search.initial` configurations run first."""

    def __init__(self, spec: Spec, clock: Callable[[], float] = time.monotonic,
                 sampler: optuna.samplers.BaseSampler | None = None):
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "Trial 3 finished" lines
        s = spec.search
        self.space = OptunaSpace(spec)
        self.metric = spec.objective.metric
        self._own_sampler = sampler is None
        self.strategy, self.seed = s.strategy, s.seed
        if sampler is None:
            sampler = self._sampler(replayed=0)
        direction = "maximize" if spec.objective.mode == "max" else "minimize"
        self.study = optuna.create_study(direction=direction, sampler=sampler)
        self.date_ranges = spec.date_ranges
        self.repeats = s.repeats
        self.per_config = len(spec.date_ranges) * s.repeats
        self.repeat_seeds = [derive_seed(s.seed, "repeat", r) for r in range(s.repeats)]
        self.budget = s.trials if s.trials is not None else 20
        distinct = RandomSpace(spec).distinct  # all domains finite: configurations besides initial ones
        if distinct is not None:
            self.budget = min(self.budget, distinct)
        self._repeats = 0  # known configurations proposed in a row
        self.max_time = s.max_time
        self.clock = clock
        self.started = 0  # configurations started (asked, or complete in replayed rows)
        self._deadline: float | None = None
        self.searched = 0.0  # seconds of search.max_time that earlier attempts of the run spent (replay)
        self._queue: deque[Trial] = deque()
        self._configs: dict[str, _Config] = {}  # config key -> configuration
        self._of_trial: dict[str, _Config] = {}  # trial id -> its configuration
        self._known: dict[str, _Told | None] = {}  # trial id -> outcome, from replayed rows
        self.initial = tuple((arch, dict(params)) for arch, params in s.initial)
        self._initial_keys = {config_key(arch, params) for arch, params in self.initial}
        self._initial_added = False

    # -- the Searcher seam -----------------------------------------------------------------------
    def total(self) -> int:
        """An upper bound: max_time or MAX_REPEATS repeated proposals may end the search sooner."""
        return (len(self.initial) + self.budget) * self.per_config

    def ask(self) -> Trial | None:
        if self._deadline is None and self.max_time is not None:  # less what earlier attempts searched
            self._deadline = self.clock() + self.max_time - self.searched
        if not self._initial_added:  # first out (after replay, which may have their rows)
            self._initial_added = True
            for c, (arch, params) in enumerate(self.initial):
                self._add(config_key(arch, params), self._trials(c, arch, params), [])
        while not self._queue:
            if self.started >= self.budget or self._repeats >= MAX_REPEATS:
                return None
            if self._deadline is not None and self.clock() >= self._deadline:
                return None
            self._repeats = 0 if self._start_configuration() else self._repeats + 1
        return self._queue.popleft()

    def tell(self, trial: Trial, result: dict[str, Any] | None, stopped: bool = False) -> None:
        config = self._of_trial.get(trial.id)
        if config is None or config.finished or trial.id in config.results:
            return
        config.results[trial.id] = self._outcome(result, stopped)
        if len(config.results) == len(config.trial_ids):
            self._finish(config)

    def replay(self, rows: Iterable[Mapping[str, str]]) -> None:
        rows = list(rows)
        self.searched = searched_seconds(rows)
        groups: dict[str, tuple[str, dict[str, Any], set[str]]] = {}
        for row in rows:
            self._known[row["trial_id"]] = self._row_outcome(row)
            fit = self.space.from_row(row)
            if fit is None:
                continue
            arch, values = fit
            if config_key(arch, self.space.decode(arch, values)) in self._initial_keys:
                continue  # an initial configuration: no study trial, as on a fresh start
            key = canonical_json([arch, values])
            groups.setdefault(key, (arch, values, set()))[2].add(row["trial_id"])
        for arch, values, ids in groups.values():
            if len(ids) < self.per_config:
                self.study.enqueue_trial(values)  # asked first; only its missing trials run
                continue
            state, value, step = _verdict([self._known[i] for i in ids])
            self.study.add_trial(create_trial(  # the trial tell() leaves (PRUNED: value = last report)
                state=state, value=value, params=values, distributions=self.space.distributions(arch),
                intermediate_values={step: value} if step is not None and value is not None else None,
            ))
            self.started += 1
        if groups and self._own_sampler:  # a fresh stream: the first one would propose the same again
            self.study.sampler = self._sampler(replayed=len(groups))

    def _sampler(self, replayed: int) -> optuna.samplers.BaseSampler:
        seed = derive_seed(self.seed, "sampler", replayed) if replayed else derive_seed(self.seed, "sampler")
        return make_sampler(self.strategy, seed, self.space.several)

    # -- configurations --------------------------------------------------------------------------
    def _start_configuration(self) -> bool:
        """Ask the study for a configuration and queue its trials; False when it proposed a known
        one, which then gets that one's value (at once, or when it is in) and is not counted."""
        study_trial = self.study.ask()
        arch, params = self.space.suggest(study_trial)
        key = config_key(arch, params)
        config = self._configs.get(key)
        if config is not None:  # proposed before: same trials, same value
            config.waiting.append(study_trial)
            if config.finished:
                self._finish(config)
            return False
        c = len(self.initial) + self.started
        self.started += 1
        self._add(key, self._trials(c, arch, params), [study_trial])
        return True

    def _add(self, key: str, trials: list[Trial], waiting: list[OptunaTrial]) -> None:
        """A new configuration: its trials queued, but those with a row already (replayed)."""
        config = _Config(tuple(t.id for t in trials), waiting)
        self._configs[key] = config
        for t in trials:
            self._of_trial[t.id] = config
            if t.id in self._known:  # has a row already: the runner would skip it
                config.results[t.id] = self._known[t.id]
            else:
                self._queue.append(t)
        if len(config.results) == len(config.trial_ids):
            self._finish(config)

    def _trials(self, c: int, arch: str, params: dict[str, Any]) -> list[Trial]:
        """Configuration `c`'s trials: repeats outer, date ranges inner (as TrialSequence)."""
        return [
            Trial(index=c * self.per_config + r * len(self.date_ranges) + d, architecture=arch,
                  params=params, date_range=date_range, repeat=r, seed=self.repeat_seeds[r])
            for r in range(self.repeats)
            for d, date_range in enumerate(self.date_ranges)
        ]

    def _finish(self, config: _Config) -> None:
        if not config.finished:
            config.finished = True
            config.verdict = _verdict(list(config.results.values()))
        state, value, step = config.verdict
        for study_trial in config.waiting:
            if state == TrialState.COMPLETE:
                self.study.tell(study_trial, value)
                continue
            if step is not None and value is not None:
                study_trial.report(value, step)
            self.study.tell(study_trial, state=state)
        config.waiting.clear()

    def _outcome(self, result: Mapping[str, Any] | None, stopped: bool) -> _Told | None:
        """A told result as the configuration keeps it; None: failed (or its objective is not a
        finite number, unless the scheduler stopped it before it reported one)."""
        if result is None:
            return None
        value = _finite(result.get(self.metric))
        if stopped:
            return _Told(value, _epochs(result.get("epochs_run")))
        return None if value is None else _Told(value)

    def _row_outcome(self, row: Mapping[str, str]) -> _Told | None:
        status = row.get("status")
        if status not in ("ok", "stopped"):
            return None
        metrics = dict(row)
        if "epochs_run" not in row:  # not a column: in `extra` (hpt_cli.storage.results)
            metrics.update(json.loads(row.get("extra") or "{}"))
        return self._outcome(metrics, stopped=status == "stopped")


_Verdict = tuple[TrialState, float | None, int | None]  # (state, value, step of its report)


def _verdict(outcomes: list[_Told | None]) -> _Verdict:
    """What the study is told of a configuration, from its trials' outcomes: FAIL when one
    failed; PRUNED when one was stopped, reported at the fewest epochs one of them reached with
    the mean of the objectives they reported (none: no report, ranked last); else COMPLETE with
    the mean."""
    if any(o is None for o in outcomes):
        return TrialState.FAIL, None, None
    values = [o.value for o in outcomes if o.value is not None]
    mean = math.fsum(values) / len(values) if values else None
    stops = [o.stopped_at for o in outcomes if o.stopped_at is not None]
    if stops:
        return TrialState.PRUNED, mean, min(stops)
    return TrialState.COMPLETE, mean, None


def searched_seconds(rows: Iterable[Mapping[str, str]]) -> float:
    """How long earlier attempts of a run searched: the union of their rows' started_at..ended_at
    spans, so the time between attempts, when no trial of the run was running, is left out."""
    spans = []
    for row in rows:
        try:
            start = datetime.fromisoformat(row["started_at"]).timestamp()
            end = datetime.fromisoformat(row["ended_at"]).timestamp()
        except (KeyError, TypeError, ValueError):
            continue
        spans.append((start, max(start, end)))
    total, reach = 0.0, -math.inf
    for start, end in sorted(spans):
        total += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return total


def _epochs(value: Any) -> int:
    number = _finite(value)
    return int(number) if number is not None else 0


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
