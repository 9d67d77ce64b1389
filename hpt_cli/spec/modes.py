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


def apply_quick(spec: Spec, fix_epochs: bool = True) -> Spec:
    """The quick version of `spec` (pure; applying it twice changes nothing more).

    Keeps the latest `quick.date_ranges` date ranges (by end date, in the spec's order), cuts
    each to its last `quick.train_length` (start = end - train_length, never before the range's
    own start; the validation window after the end is untouched), and trains every trial for
    `quick.epochs` epochs (TrialSettings.epochs, which architectures read as ctx.epochs; it
    replaces any `trial.epochs`). With `fix_epochs`, a parameter named `epochs` (tuned or fixed)
    of a built-in architecture is set to `quick.epochs` too (in `search.initial` as well): those
    train for ctx.epochs whatever it says, so the rows say what ran (a quick row is not taken
    for a full run's configuration in `hpt report`), and tuned values do not run the same
    training several times. `hpt calibrate` keeps them (`fix_epochs=False`), to pair each quick
    configuration with its full one. Those of your own functions and commands are left as they
    are. The run id hashes the resolved date ranges and the epochs, so a quick run gets its own
    run folder unless it would run exactly the full run's trials.
    """
    q = spec.quick
    latest = sorted(spec.date_ranges, key=lambda r: (r.end, r.start))[-q.date_ranges:]
    kept = [r for r in spec.date_ranges if r in latest]
    cut: list[DateRange] = []
    for r in kept:
        short = DateRange(max(r.start, q.train_length.add_to(r.end, -1)), r.end)
        if short not in cut:  # two ranges with one end may cut to the same range
            cut.append(short)
    quick = replace(spec, date_ranges=tuple(cut), trial=replace(spec.trial, epochs=q.epochs), mode="quick",
                    rolling=None, quick_applied=True)
    return _fix_epochs(quick, q.epochs) if fix_epochs else quick


def _fix_epochs(spec: Spec, epochs: int) -> Spec:
    """The `epochs` parameter of the built-in architectures set to `epochs` (see apply_quick)."""
    fixed = Fixed(epochs)
    moot = {a for a in spec.architectures if _reads_ctx_epochs(a)}

    def fix(params, applies: bool):
        domain = dict(params).get(EPOCHS)
        if not applies or domain is None or domain == fixed:
            return params
        return tuple((n, fixed if n == EPOCHS else d) for n, d in params)

    if spec.per_architecture is not None:
        per = tuple((a, fix(ps, a in moot)) for a, ps in spec.per_architecture)
        changed = {a for (a, ps), (_, old) in zip(per, spec.per_architecture) if ps is not old}
        spec = replace(spec, per_architecture=per)
    else:
        params = fix(spec.parameters, moot == set(spec.architectures))  # shared: only if none is yours
        changed = set(spec.architectures) if params is not spec.parameters else set()
        spec = replace(spec, parameters=params)
    initial = tuple((a, {**p, EPOCHS: epochs} if EPOCHS in p and a in changed else p)
                    for a, p in spec.search.initial)
    return replace(spec, search=replace(spec.search, initial=initial))


def _reads_ctx_epochs(arch: str) -> bool:
    """A built-in (or plugin) architecture that declares reading `epochs`: it trains for
    ctx.epochs when that is set. Your own `module:function` and commands are not presumed to."""
    if ":" in arch:
        return False
    from hpt_cli.architectures import get

    try:
        declared = get(arch).parameters
    except Exception:  # noqa: BLE001 - unknown here: said by the preflight, not by quick mode
        return False
    return declared is not None and EPOCHS in declared


def for_running(spec: Spec, quick: bool = False) -> Spec:
    """The spec a run uses: quick when asked (`--quick`) or when the spec says `"mode": "quick"`."""
    if spec.quick_applied:  # made quick already, as its maker wanted it (hpt calibrate keeps epochs)
        return spec
    return apply_quick(spec) if quick or spec.mode == "quick" else spec
