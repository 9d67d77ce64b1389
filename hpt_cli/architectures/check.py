"""A spec against what its architectures declare: parameter names they read, metrics they report.

A built-in architecture declares every parameter name its train function reads
(`Architecture.parameters`) and every metric it reports (`Architecture.metrics`); a misspelled
name ("alpah") would otherwise be passed to every trial and ignored, and a misspelled objective
("val_mes") would leave every trial without a value. An architecture that declares nothing (a
"module:function", a command, most plugins) is not checked. The runner's preflight calls
`spec_problems` once the architectures resolve.

What would fail every trial the same way is refused there too, before any trial starts: a train
function that cannot be called as train(params, ctx) (`signature_problem`), and a command whose
program does not exist here (`command_problem`).
"""

from __future__ import annotations

import difflib
import inspect
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from hpt_cli.errors import Problem
from hpt_cli.spec import jsonpos
from hpt_cli.spec.domains import Choice, Distribution, Fixed

if TYPE_CHECKING:
    from hpt_cli.architectures import Architecture
    from hpt_cli.spec.model import Spec

__all__ = ["READERS", "command_problem", "near_miss_problems", "signature_problem", "spec_problems", "value_problems", "with_lines"]


def spec_problems(spec: Spec, resolved: Mapping[str, Architecture]) -> list[Problem]:
    """Every spec parameter (shared, per architecture, in `search.initial`) that none of its
    architectures reads, and an objective metric none of them reports; `resolved` maps each of
    the spec's architecture names to its Architecture."""
    problems: list[Problem] = []
    if spec.per_architecture is not None:
        for arch, params in spec.per_architecture:
            for name, _ in params:
                path = jsonpos.join(jsonpos.join("parameters", arch), name)
                problems += _unread(path, name, [resolved[arch]])
    else:
        for name, _ in spec.parameters:
            problems += _unread(jsonpos.join("parameters", name), name, resolved.values())
    problems += _initial(spec, resolved, {p.path for p in problems})
    problems += _objective(spec, resolved)
    return problems


# a built-in's reader of every parameter it reads ("module:function"; ValueError saying what must
# hold), as its trials read them: `value_problems` checks each value of a spec with it
READERS = {
    "ridge": "hpt_cli.architectures.ridge:read_params",
    "mlp": "hpt_cli.architectures.mlp:read_params",
    "lstm": "hpt_cli.architectures.lstm:read_params",
    "lstm-attention": "hpt_cli.architectures.lstm:read_attention_params",
}
_PROBE = 0.3  # where inside a continuous interval a value is drawn to check (not a whole number, mostly)
_EDGE = 1e-9  # how far inside its bounds a continuous interval is checked (its draws come that close)


def value_problems(spec: Spec, resolved: Mapping[str, Architecture]) -> list[Problem]:
    """Each value a built-in architecture would refuse in every trial that gets it (a string for a
    number, "lags": [7, "14"]), checked with its own reader (`READERS`): grid and choice values,
    fixed values, integer bounds, a value drawn from inside a continuous interval, and the values
    of `search.initial`. One problem per JSON path: "<path>: <architecture>: <what must hold>".
    `epochs` is not checked where trial.epochs makes the architectures ignore it."""
    readers = {a: _reader(a) for a in spec.architectures if a in READERS and resolved.get(a) is not None}
    if not readers:
        return []
    problems: dict[str, Problem] = {}

    def refused(path: str, arch: str, name: str, value, drawn: str = "") -> bool:
        if name == "epochs" and spec.trial.epochs is not None:
            return False
        if arch not in readers or name not in (resolved[arch].parameters or ()):
            return False
        try:
            readers[arch]({name: value})
            return False
        except ValueError as exc:
            if drawn and not _refuses(readers[arch], name, round(value)):
                drawn = drawn[:-1] + '; "int" draws integers)'
            problems.setdefault(path, Problem(path, f"{arch}: {exc}{drawn}"))
            return True

    blocks = spec.per_architecture or tuple((a, spec.parameters) for a in spec.architectures)
    for arch, params in blocks:
        base = jsonpos.join("parameters", arch) if spec.per_architecture is not None else "parameters"
        for name, domain in params:
            for path, value, drawn, *near in _candidates(jsonpos.join(base, name), domain):
                if near and (arch not in readers or not _refuses(readers[arch], name, near[0])):
                    continue  # a bound a continuous draw never hits: refused only where values next to it are
                if refused(path, arch, name, value, drawn) and isinstance(domain, Distribution) \
                        and not isinstance(domain, Choice):  # one problem per distribution
                    break
    for i, (arch, params) in enumerate(spec.search.initial):
        for name, value in params.items():
            refused(jsonpos.join(jsonpos.join("search.initial", i), name), arch, name, value)
    return list(problems.values())


def _refuses(reader: Callable[[dict], object], name: str, value) -> bool:
    try:
        reader({name: value})
        return False
    except ValueError:
        return True


def near_miss_problems(spec: Spec) -> list[Problem]:
    """An architecture name that resolves to nothing here and is a near miss of a built-in name
    ("rigde"): a typo on every machine, so a spec error. Other names that do not resolve may be
    plugins installed where the run happens (an entry point), so they are not refused here."""
    from hpt_cli.architectures import _BUILTINS, COMMAND, ArchitectureError, get

    problems: list[Problem] = []
    for i, name in enumerate(spec.architectures):
        if ":" in name or name == COMMAND or name in _BUILTINS:
            continue
        hint = difflib.get_close_matches(name, list(_BUILTINS), n=1)
        if not hint:
            continue
        try:
            get(name)
        except ArchitectureError as exc:  # the line `hpt run` stops with
            path = "architecture" if len(spec.architectures) == 1 else jsonpos.join("architecture", i)
            problems.append(Problem(path, str(exc)))
    return problems


def _reader(arch: str) -> Callable[[dict], object]:
    import importlib

    module, _, attr = READERS[arch].partition(":")
    return getattr(importlib.import_module(module), attr)


def _candidates(path: str, domain) -> list[tuple]:
    """(JSON path, value, what to add to the message[, a value drawn next to it, which must be
    refused too]) of the values of `domain` worth checking."""
    import math

    from hpt_cli.spec.domains import Grid, Int, Normal, Quantized, Uniform

    if isinstance(domain, Fixed):
        return [(path, domain.value, "")]
    if isinstance(domain, Grid):
        return [(jsonpos.join(path, i), v, "") for i, v in enumerate(domain.values)]
    if isinstance(domain, Choice):
        return [(jsonpos.join(jsonpos.join(path, "values"), i), v, "") for i, v in enumerate(domain.values)]
    if isinstance(domain, Int):  # the values drawn: low, low + step, ... up to the last one within high
        last = domain.last
        return [(jsonpos.join(path, "low"), domain.low, ""),
                (jsonpos.join(path, "high"), last, "" if last == domain.high else f" (the highest value step "
                                                                                  f"{domain.step} reaches)")]
    if isinstance(domain, Quantized):  # the values drawn: the multiples of q within [low, high]
        first, last, whole = domain.multiples
        value = (lambda k: k * int(domain.q)) if whole else (lambda k: k * domain.q)
        what = f" (a multiple of q={domain.q:g} it draws)"
        return [(jsonpos.join(path, "low"), value(first), "" if value(first) == domain.low else what),
                (jsonpos.join(path, "high"), value(last), "" if value(last) == domain.high else what)]
    if isinstance(domain, Uniform):  # a bound, where the values drawn next to it are refused; one inside
        lo, hi = (math.log(domain.low), math.log(domain.high)) if domain.log else (domain.low, domain.high)

        def at(fraction: float) -> float:
            x = lo + (hi - lo) * fraction
            return math.exp(x) if domain.log else x

        name = "loguniform" if domain.log else "uniform"
        return [(jsonpos.join(path, "low"), domain.low, "", at(_EDGE)),
                (jsonpos.join(path, "high"), domain.high, "", at(1 - _EDGE)),
                (path, float(f"{at(_PROBE):.4g}"), f" (a {name} draws such values)")]
    if isinstance(domain, Normal):
        inside = domain.mu + domain.sigma * _PROBE
        name = "lognormal" if domain.log else "normal"
        return [(path, float(f"{math.exp(inside) if domain.log else inside:.4g}"), f" (a {name} draws such values)")]
    return []


def epochs_notes(spec: Spec, resolved: Mapping[str, Architecture]) -> list[str]:
    """A note where `trial.epochs` makes a tuned `epochs` parameter moot: the built-in
    architectures (those that declare reading `epochs`) train for ctx.epochs whatever it says."""
    from hpt_cli.spec.domains import is_tuned

    if spec.trial.epochs is None:
        return []
    notes = []
    for arch in spec.architectures:
        domain = dict(spec.space_of(arch)).get("epochs")
        a = resolved.get(arch)
        if domain is None or not is_tuned(domain) or a is None or a.parameters is None or "epochs" not in a.parameters:
            continue
        notes.append(f"trial.epochs ({spec.trial.epochs}) is what {arch} trains for: its tuned parameter epochs "
                     f"changes nothing, so configurations that differ only in it run alike; drop trial.epochs "
                     f"to tune epochs")
    return notes


def _unread(path: str, name: str, architectures: Iterable[Architecture]) -> list[Problem]:
    """A problem unless one of `architectures` reads `name` or does not declare what it reads."""
    archs = list(architectures)
    if not archs or any(a.parameters is None or name in a.parameters for a in archs):
        return []
    known = sorted(set().union(*(a.parameters for a in archs)))
    hint = difflib.get_close_matches(name, known, n=1)
    tail = f"; did you mean '{hint[0]}'?" if hint else ""
    if len(archs) == 1:
        return [Problem(path, f"{archs[0].name} has no parameter '{name}'{tail} "
                              f"(its parameters: {', '.join(known)})")]
    who = (f"neither {archs[0].name} nor {archs[1].name}" if len(archs) == 2
           else f"none of {', '.join(a.name for a in archs)}")
    return [Problem(path, f"{who} has a parameter '{name}'{tail} (their parameters: {', '.join(known)})")]


def _initial(spec: Spec, resolved: Mapping[str, Architecture], said: set[str]) -> list[Problem]:
    """search.initial values an architecture does not read. The parser has already held each key
    to the spec's own parameters of that architecture, so only a shared block of several
    architectures can get here (a name another one reads). A fixed value of that block, which
    goes to every architecture's trials, is not the configuration's own."""
    problems: list[Problem] = []
    several = len(spec.architectures) > 1
    for i, (arch, params) in enumerate(spec.search.initial):
        space = dict(spec.space_of(arch))
        for name, value in params.items():
            if several and spec.per_architecture is None and space.get(name) == Fixed(value):
                continue
            path = jsonpos.join(jsonpos.join("search.initial", i), name)
            block = jsonpos.join("parameters", name) if spec.per_architecture is None else \
                jsonpos.join(jsonpos.join("parameters", arch), name)
            if block not in said:
                problems += _unread(path, name, [resolved[arch]])
    return problems


def _objective(spec: Spec, resolved: Mapping[str, Architecture]) -> list[Problem]:
    """The objective must be a metric the trials return: the runner fails a trial without it, and
    its own columns (duration_s) are not metrics (train_time_s is the built-ins' own)."""
    archs = [resolved[a] for a in spec.architectures]
    metric = spec.objective.metric
    if not archs or any(not a.metrics for a in archs):
        return []
    reported = list(dict.fromkeys(m for a in archs for m in a.metrics))
    if metric in reported:
        return []
    hint = ["train_time_s"] if metric == "duration_s" and "train_time_s" in reported else \
        difflib.get_close_matches(metric, reported, n=1)
    tail = f"; did you mean '{hint[0]}'?" if hint else ""
    if len(archs) == 1:
        who, they = archs[0].name, "it reports"
    else:
        names = [a.name for a in archs]
        who, they = f"{', '.join(names[:-1])} or {names[-1]}", "they report"
    return [Problem("objective.metric", f"'{metric}' is not a metric {who} reports{tail} "
                                        f"({they}: {', '.join(reported)})")]


def with_lines(problems: Iterable[Problem], text: str) -> list[Problem]:
    """The problems with the line of the spec text `text` each one's path stands on."""
    lines = jsonpos.line_index(text)
    return [replace(p, line=jsonpos.nearest_line(lines, p.path)) for p in problems]


def signature_problem(name: str, fn: Callable) -> str | None:
    """Why architecture `name`'s train function `fn` cannot be called as train(params, ctx), or
    None. Bound methods, functools.partial, *args and defaults are fine; a signature that cannot be
    read is not refused."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to read
        return None
    try:
        sig.bind(None, None)
        return None
    except TypeError:
        pass
    called = getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", None) or "train"
    bare = sig.replace(parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
                       return_annotation=sig.empty)
    shown = f"{called}{bare}"
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    keyword = [p.name for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    if len(required) > 2:
        what = f"needs {len(required)} arguments"
    elif len(positional) < 2 and not any(p.kind == p.VAR_POSITIONAL for p in params):
        what = "takes no arguments" if not positional else \
            f"takes {len(positional)} argument{'s' if len(positional) != 1 else ''}"
    elif keyword:
        what = f"needs the keyword argument{'s' if len(keyword) != 1 else ''} {', '.join(keyword)}"
    else:
        what = "cannot be called with 2 arguments"
    return f"architecture {name!r}: {shown} {what}; a trial function is {called}(params, ctx)"


def command_problem(command: tuple[str, ...] | None) -> str | None:
    """Why the program a command template starts cannot be started here, or None: not on PATH, or
    (a path with a slash, from the working folder) no such file, or not executable. A program
    named by a placeholder is not checked."""
    if not command:
        return None
    program = command[0]
    if "{" in program or "}" in program:
        return None
    path = jsonpos.join("command", 0)
    if os.sep not in program and (os.altsep is None or os.altsep not in program):
        if shutil.which(program) is None:
            return f"{path}: {program!r} is not on PATH; check the spelling, install it, or give its full path"
        return None
    full = os.path.abspath(program)
    if not os.path.exists(full):
        shown = "" if full == program else f" (looked for {full}; a relative path is read from the folder hpt runs in)"
        return f"{path}: {program!r} does not exist{shown}"
    if os.path.isdir(full):
        return f"{path}: {program!r} is a folder, not a program"
    if not os.access(full, os.X_OK):
        return (f"{path}: {program!r} is not executable: chmod +x {program}, or start it with its "
                f"interpreter (\"python\", \"{program}\")")
    return None
