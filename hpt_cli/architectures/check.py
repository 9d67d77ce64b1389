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
from hpt_cli.spec.domains import Fixed

if TYPE_CHECKING:
    from hpt_cli.architectures import Architecture
    from hpt_cli.spec.model import Spec

__all__ = ["command_problem", "signature_problem", "spec_problems", "with_lines"]


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
