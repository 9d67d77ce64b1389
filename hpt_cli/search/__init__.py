"""Search: the spec's space turned into trials. `expand(spec)` is the lazy list of all of them."""

from hpt_cli.search.base import InitialFirst, Searcher, StaticSearcher, TrialSequence
from hpt_cli.search.space import GridSpace, RandomSpace, configurations_by_architecture
from hpt_cli.search.trial import Trial, canonical_json, derive_seed, trial_id
from hpt_cli.spec.model import Spec


def space(spec: Spec) -> GridSpace | RandomSpace | InitialFirst:
    """The configurations of a grid or random spec, after the spec's `search.initial` ones. An
    adaptive spec (tpe, gp, cmaes, qmc) gets a RandomSpace of the same size: its count is right,
    but the adaptive search picks its own configurations as results arrive (see make_searcher)."""
    own = GridSpace(spec) if spec.search.strategy == "grid" else RandomSpace(spec)
    return InitialFirst(spec.search.initial, own) if spec.search.initial else own


def expand(spec: Spec) -> TrialSequence:
    """All trials of a grid or random spec, lazily, in the order they will be dispatched."""
    return TrialSequence(space(spec), spec.date_ranges, spec.search.repeats, spec.search.seed)


def make_searcher(spec: Spec) -> Searcher:
    """grid and random: the trials in a seeded order; tpe, gp, cmaes, qmc: Optuna (imported here
    only, so grid and random runs never load it)."""
    if spec.search.strategy in ("grid", "random"):
        return StaticSearcher(expand(spec))
    from hpt_cli.search.adaptive import OptunaSearcher

    return OptunaSearcher(spec)


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
