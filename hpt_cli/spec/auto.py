"""Auto mode: tune an architecture from its declared default space, with no parameters written.

Stage 1 tunes the architecture's learning-rate parameters (`Architecture.lr_params`: initial
learning rate, decay, early-stopping patience) over their `default_space` domains, every other
parameter left at the architecture's own default. Stage 2 tunes the rest of the default space
with the learning-rate parameters fixed at stage 1's best configuration (the best mean
objective over the date ranges), read from stage 1's run folder in the same output. Stage 2
re-evaluates stage 1's winner first (its `search.initial`): without it, stage 2 could only
recommend configurations other than the one stage 1 found, and end up slightly worse than it.

An architecture with no learning-rate parameters (ridge) has its whole default space tuned in
stage 1, and no stage 2.
"""

from __future__ import annotations

import glob
import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from hpt_cli.architectures import COMMAND, Architecture, get
from hpt_cli.dates import DateRange
from hpt_cli.errors import HptError
from hpt_cli.spec.model import Spec
from hpt_cli.spec.modes import for_running
from hpt_cli.spec.parse import parse_spec

__all__ = ["AUTO_DATE_RANGES", "AUTO_STRATEGY", "AUTO_TRIALS", "apply_auto", "auto_base",
           "auto_spec", "best_configuration", "find_stage1_run"]

AUTO_TRIALS = 12  # configurations per stage: a modest budget (12 x 3 date ranges = 36 trials;
# stage 2 runs stage 1's winner on top of them)
# The strategy of both stages when the spec names none. Random: at 12 configurations Optuna's TPE
# would draw its first 10 (n_startup_trials) at random too. `--auto SPEC` with "search":
# {"strategy": "tpe", "trials": 60} uses TPE for a larger budget.
AUTO_STRATEGY = "random"
# With no spec: the last three half-years before 2016-07-01. The bundled data runs to
# 2016-08-28, so each range still has its month of validation data after its end; three ranges
# of different seasons keep the winner from being tuned to one of them. Explicit dates, not
# rolling ones: the bundled data does not move, and a rerun on another day resumes the run.
AUTO_DATE_RANGES = (
    DateRange(date(2015, 1, 1), date(2015, 7, 1)),
    DateRange(date(2015, 7, 1), date(2016, 1, 1)),
    DateRange(date(2016, 1, 1), date(2016, 7, 1)),
)


def auto_base(spec_or_arch: Spec | str) -> tuple[Spec, Architecture]:
    """Check that auto mode can run on this architecture name or spec; return the base spec
    (the bundled data and AUTO_DATE_RANGES for a name) and its architecture."""
    if isinstance(spec_or_arch, str):
        arch = _architecture(spec_or_arch)
        doc = {"name": spec_or_arch, "architecture": spec_or_arch,
               "date-range": [r.to_json() for r in AUTO_DATE_RANGES]}
        return parse_spec(json.dumps(doc), source=f"--auto {spec_or_arch}"), arch
    spec = spec_or_arch
    if spec.command is not None or len(spec.architectures) != 1:
        raise HptError(f"auto mode tunes one registered architecture; {spec.name!r} has "
                       f"{'a command' if spec.command is not None else ', '.join(spec.architectures)} "
                       "(run --auto once per architecture)")
    if spec.parameters or spec.per_architecture:
        names = ", ".join(spec.parameter_names)
        raise HptError(f"auto mode chooses the parameters, but {spec.name!r} gives some ({names}); "
                       "leave \"parameters\" out, or run the spec without --auto")
    return spec, _architecture(spec.architectures[0])


def _architecture(name: str) -> Architecture:
    if name == COMMAND:
        raise HptError("auto mode needs an architecture with a default space, not \"command\"")
    arch = get(name)
    if not arch.default_space:
        raise HptError(f"architecture {name!r} declares no default search space "
                       "(Architecture.default_space); write its parameters in a spec instead")
    return arch


def apply_auto(spec_or_arch: Spec | str, stage: int = 1, best_params: dict[str, Any] | None = None,
               *, strategy: str | None = None, trials: int | None = None) -> Spec:
    """The spec of auto stage `stage` (1 or 2), named `<arch>-auto-stage<stage>`.

    Stage 1: the learning-rate parameters over their default domains (the whole default space
    when there are none). Stage 2: the other default-space parameters, with `best_params` (stage
    1's best values of the learning-rate parameters) fixed. Search: `strategy` (default: the
    spec's when it is not grid, else AUTO_STRATEGY) with `trials` configurations (default: the
    spec's `search.trials`, else AUTO_TRIALS); seed, date ranges, data, objective, mode and
    resources come from the spec.
    """
    base, arch = auto_base(spec_or_arch)
    space = arch.default_space
    lr = [n for n in arch.lr_params if n in space]
    if stage == 1:
        params = {n: space[n] for n in lr} if lr else dict(space)
    elif stage == 2:
        rest = [n for n in space if n not in lr]
        if not lr or not rest:
            tuned = ", ".join(space)
            raise HptError(f"{arch.name} has no stage 2: stage 1 tunes its whole default space ({tuned})"
                           + ("" if lr else " since it has no learning-rate parameters"))
        if best_params is None or any(n not in best_params for n in lr):
            raise HptError(f"stage 2 needs stage 1's best {', '.join(lr)}")
        params = {n: _fixed(best_params[n]) for n in lr} | {n: space[n] for n in rest}
    else:
        raise HptError(f"auto mode has stages 1 and 2, not {stage}")
    doc = base.to_json()
    doc["name"] = f"{arch.name}-auto-stage{stage}"
    doc["parameters"] = params
    s = base.search
    doc["search"] = {"strategy": strategy or (s.strategy if s.strategy != "grid" else AUTO_STRATEGY),
                     "trials": trials or s.trials or AUTO_TRIALS, "seed": s.seed, "repeats": s.repeats}
    if s.max_time is not None:
        doc["search"]["max_time"] = s.max_time
    if stage == 2:  # stage 1's winner as it ran there (the rest at the architecture's defaults), first
        doc["search"]["initial"] = [{n: best_params[n] for n in lr}]
    spec = parse_spec(json.dumps(doc), source=f"auto stage {stage} of {arch.name}", today=base.today)
    return replace(spec, rolling=base.rolling)


def _fixed(value: Any) -> Any:
    return {"value": value} if isinstance(value, (list, dict)) else value


def best_configuration(uri: str, mode: str | None = None) -> tuple[dict[str, Any], float]:
    """The parameters and mean objective of the best configuration of the run at `uri`: the best
    mean over the date ranges (and repeats) among configurations with an ok row on every one of
    them (among all when none is complete)."""
    from hpt_cli.report.means import best, configuration_means

    run, means = configuration_means(uri)
    top = best(means, mode or run.mode)
    if top is None:
        raise HptError(f"{uri}: no finished trial has a {run.metric} value yet")
    return top.params, top.mean


def find_stage1_run(spec1: Spec, output: str) -> str | None:
    """The stage-1 run folder of the stage-1 spec `spec1` (already in its running mode) under
    `output` with the best configuration (the newest of equals), or None when there is none.

    A gs:// output: the folder of its run id (the budget, `--trials`, is not in it). A local one:
    also every `<name>-*` folder whose spec.json is `spec1` apart from the budget and the objective
    is the same (`--fresh` runs, and runs of hpt versions whose ids held the budget). A folder
    with no finished trial yet is taken only when no folder has one (auto_spec then says so)."""
    from hpt_cli.runner.run_id import run_id

    rid = run_id(spec1)
    root = output.rstrip("/") or output
    if "://" in root:
        from hpt_cli.watch import open_source

        return f"{root}/{rid}" if open_source(f"{root}/{rid}").read("results.csv") is not None else None
    found = _stage1_folders(spec1, Path(root), rid)
    if not found:
        return None
    mode = spec1.objective.mode
    scored = []
    for folder in found:
        try:
            value = best_configuration(str(folder), mode)[1]
        except HptError:
            continue
        mtime = (folder / "results.csv").stat().st_mtime
        scored.append((value if mode == "min" else -value, -mtime, str(folder)))
    if scored:
        return min(scored)[2]
    return str(max(found, key=lambda folder: (folder / "results.csv").stat().st_mtime))


def _stage1_folders(spec1: Spec, root: Path, rid: str) -> list[Path]:
    """The folders under `root` with a results.csv whose spec is `spec1` apart from the budget."""
    from hpt_cli.runner.run_id import run_id

    found = [root / rid] if (root / rid / "results.csv").is_file() else []
    for candidate in root.glob(f"{glob.escape(rid.rsplit('-', 1)[0])}-*/spec.json"):
        if candidate.parent.name == rid or not (candidate.parent / "results.csv").is_file():
            continue
        try:
            doc = json.loads(candidate.read_text("utf-8"))
            doc.pop("hpt", None)
            other = parse_spec(json.dumps(doc), today=spec1.today)
        except (OSError, ValueError, HptError):
            continue
        if run_id(other) == rid and other.objective == spec1.objective:
            found.append(candidate.parent)
    return found


def auto_spec(target: Spec | str, stage: int, output: str | None = None, quick: bool = False,
              trials: int | None = None, strategy: str | None = None, rerun_hint: str | None = None,
              say=None) -> Spec:
    """The spec `hpt run --auto` runs: stage 1, or stage 2 from stage 1's run folder under
    `output` (default: the spec's), both in quick mode with `quick` or `"mode": "quick"`.
    `rerun_hint` is the command that runs stage 1, for the error when it has not run; `say(line)`
    hears where stage 2 continues from."""
    if stage == 1:
        return for_running(apply_auto(target, 1, strategy=strategy, trials=trials), quick)
    base, arch = auto_base(target)
    lr = [n for n in arch.lr_params if n in arch.default_space]
    if not lr or len(lr) == len(arch.default_space):
        apply_auto(base, 2, {})  # raises: this architecture has no stage 2
    spec1 = for_running(apply_auto(base, 1, strategy=strategy), quick)
    where = output or spec1.output
    folder = find_stage1_run(spec1, where)
    hint = rerun_hint or f"hpt run --auto {arch.name}{' --quick' if spec1.mode == 'quick' else ''}"
    if folder is None:
        raise HptError(f"run stage 1 first: {hint} (no {spec1.name} run with these date ranges, "
                       f"epochs and seed under {where})")
    try:
        best, mean = best_configuration(folder, spec1.objective.mode)
    except HptError as exc:
        raise HptError(f"stage 1 at {folder} has no result to continue from ({exc}); finish it: {hint}") from None
    if say is not None:
        say(f"stage 2 continues from stage 1's best at {folder}: "
            + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in best.items() if k in arch.lr_params)
            + f" (mean {spec1.objective.metric} {mean:.6g})")
    return for_running(apply_auto(base, 2, best, strategy=strategy, trials=trials), quick)
