"""The searcher seam: ask() for the next trial, tell() it how a trial went."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from hpt_cli.dates import DateRange
from hpt_cli.search.trial import Trial, derive_seed


class Searcher(ABC):
    """Proposes trials. Executors and storage never see it; the runner drives it."""

    @abstractmethod
    def ask(self) -> Trial | None:
        """The next trial to run, or None when the search has nothing more to propose now."""

    def tell(self, trial: Trial, result: dict[str, Any] | None, stopped: bool = False) -> None:
        """How a trial ended: its metrics, or None if it failed; `stopped`: the scheduler stopped
        it early (its metrics are those of its last report, `epochs_run` the epochs it reached).
        Static searchers ignore it."""

    def replay(self, rows: Iterable[Mapping[str, str]]) -> None:
        """The rows of results.csv from an earlier attempt of this run, before the first ask:
        an adaptive searcher learns from them. Static searchers ignore them."""

    @abstractmethod
    def total(self) -> int | None:
        """How many trials the search will propose in all, if known in advance."""


class TrialSequence(Sequence):
    """Every configuration of a space on every date range and repeat, by index, lazily.

    Trial t is configuration t // (ranges x repeats); within a configuration, repeats are outer
    and date ranges inner, so one configuration's trials are dispatched together.
    """

    def __init__(self, space, date_ranges: Sequence[DateRange], repeats: int, seed: int):
        self.space = space
        self.date_ranges = tuple(date_ranges)
        self.repeats = repeats
        self.per_config = len(self.date_ranges) * repeats
        self.repeat_seeds = [derive_seed(seed, "repeat", r) for r in range(repeats)]

    def __len__(self) -> int:
        return len(self.space) * self.per_config

    def __getitem__(self, t: int) -> Trial:  # type: ignore[override]
        if t < 0:
            t += len(self)
        if not 0 <= t < len(self):
            raise IndexError(t)
        c, rest = divmod(t, self.per_config)
        repeat, d = divmod(rest, len(self.date_ranges))
        architecture, params = self.space[c]
        return Trial(
            index=t,
            architecture=architecture,
            params=params,
            date_range=self.date_ranges[d],
            repeat=repeat,
            seed=self.repeat_seeds[repeat],
        )

    def __iter__(self) -> Iterator[Trial]:
        for t in range(len(self)):
            yield self[t]


Configuration = tuple[str, dict[str, Any]]  # (architecture, params): what a space's [c] gives


class InitialFirst:
    """A space's configurations after given ones: configuration c < len(initial) is initial[c],
    then the space's own in their order (auto stage 2: stage 1's winner first). The space's
    configurations keep their values and trial ids, so a random space stays prefix-stable (random
    search itself skips a draw equal to an initial configuration: RandomSpace)."""

    def __init__(self, initial: Sequence[Configuration], space):
        self.initial = tuple((arch, dict(params)) for arch, params in initial)
        self.space = space
        self.architectures = space.architectures

    def __len__(self) -> int:
        return len(self.initial) + len(self.space)

    def __getitem__(self, c: int) -> Configuration:
        if not 0 <= c < len(self):
            raise IndexError(c)
        if c < len(self.initial):
            arch, params = self.initial[c]
            return arch, dict(params)
        return self.space[c - len(self.initial)]


class StaticSearcher(Searcher):
    """Grid and random search: the trials are known up front, in a seeded order."""

    def __init__(self, trials: TrialSequence):
        self.trials = trials
        self._next = 0

    def ask(self) -> Trial | None:
        if self._next >= len(self.trials):
            return None
        trial = self.trials[self._next]
        self._next += 1
        return trial

    def total(self) -> int:
        return len(self.trials)
