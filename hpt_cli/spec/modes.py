"""Quick mode: a cheap version of a spec, to rank many configurations before paying for full runs.

The seed team found that one month of training data and 20 epochs rank configurations nearly as
the full ranges and epochs do, at a small fraction of the cost; `QuickSpec`'s defaults say that,
and the spec's `quick` block changes it. `hpt calibrate` measures, for a given spec, how well the
quick ranking agrees with the full one.
"""

from __future__ import annotations

from dataclasses import replace

from hpt_cli.dates import DateRange
from hpt_cli.spec.domains import Fixed
from hpt_cli.spec.model import Spec

EPOCHS = "epochs"  # the parameter ctx.epochs overrides in the built-in architectures

__all__ = ["apply_quick", "for_running"]


def apply_quick(spec: Spec) -> Spec:
    """The quick version of `spec` (pure; applying it twice changes nothing more).

    Keeps the latest `quick.date_ranges` date ranges (by end date, in the spec's order), cuts
    each to its last `quick.train_length` (start = end - train_length, never before the range's
    own start; the validation window after the end is untouched), and trains every trial for
    `quick.epochs` epochs (TrialSettings.epochs, which architectures read as ctx.epochs; it
    replaces any `trial.epochs`). A parameter named `epochs` is fixed at `quick.epochs` too (in
    `search.initial` as well): the built-in architectures train for ctx.epochs whatever it says,
    so its values would run the same training several times. The run id hashes the resolved date
    ranges and the epochs, so a quick run gets its own run folder unless it would run exactly the
    full run's trials.
    """
    q = spec.quick
    latest = sorted(spec.date_ranges, key=lambda r: (r.end, r.start))[-q.date_ranges:]
    kept = [r for r in spec.date_ranges if r in latest]
    cut: list[DateRange] = []
    for r in kept:
        short = DateRange(max(r.start, q.train_length.add_to(r.end, -1)), r.end)
        if short not in cut:  # two ranges with one end may cut to the same range
            cut.append(short)
    fixed = Fixed(q.epochs)
    epochs = lambda ps: tuple((n, fixed if n == EPOCHS else d) for n, d in ps)  # noqa: E731
    per_architecture = (None if spec.per_architecture is None
                        else tuple((a, epochs(ps)) for a, ps in spec.per_architecture))
    initial = tuple((a, {**p, EPOCHS: q.epochs} if EPOCHS in p else p) for a, p in spec.search.initial)
    return replace(spec, date_ranges=tuple(cut), trial=replace(spec.trial, epochs=q.epochs),
                   parameters=epochs(spec.parameters), per_architecture=per_architecture,
                   search=replace(spec.search, initial=initial), mode="quick", rolling=None)


def for_running(spec: Spec, quick: bool = False) -> Spec:
    """The spec a run uses: quick when asked (`--quick`) or when the spec says `"mode": "quick"`."""
    return apply_quick(spec) if quick or spec.mode == "quick" else spec
