"""Search: the spec's space turned into trials. `expand(spec)` is the lazy list of all of them."""

from hpt_cli.search.base import Searcher, StaticSearcher, TrialSequence
from hpt_cli.search.space import GridSpace, RandomSpace, configurations_by_architecture
from hpt_cli.search.trial import Trial, canonical_json, derive_seed, trial_id
from hpt_cli.spec.model import Spec


def space(spec: Spec) -> GridSpace | RandomSpace:
    return RandomSpace(spec) if spec.search.strategy == "random" else GridSpace(spec)


def expand(spec: Spec) -> TrialSequence:
    """All trials of a grid or random spec, lazily, in the order they will be dispatched."""
    return TrialSequence(space(spec), spec.date_ranges, spec.search.repeats, spec.search.seed)


def make_searcher(spec: Spec) -> Searcher:
    return StaticSearcher(expand(spec))


__all__ = [
    "GridSpace",
    "RandomSpace",
    "Searcher",
    "StaticSearcher",
    "Trial",
    "TrialSequence",
    "canonical_json",
    "configurations_by_architecture",
    "derive_seed",
    "expand",
    "make_searcher",
    "space",
    "trial_id",
]
