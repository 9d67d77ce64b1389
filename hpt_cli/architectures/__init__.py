"""The architecture registry: a name to a `train(params, ctx) -> dict[str, float]` function.

A name is a built-in ("mlp", "ridge", "lstm", "lstm-attention"; "branin" and "hartmann6" are
benchmark objectives), an entry point in the group "hpt.architectures", or
"package.module:function". "command" is reserved for command-template trials, which the trial
runner (hpt_cli.trialrun) runs itself. A built-in wins over an entry point of its name, with a
note on stderr once per process. A "module:function" imports as with `python -m`: the working
folder first on sys.path. Importing a user's module turns what it may do at import time
(argparse, sys.exit) into an ArchitectureError, quoting the last line it printed and keeping the rest
off the terminal; KeyboardInterrupt still interrupts.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import io
import os
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from hpt_cli.errors import HptError

if TYPE_CHECKING:
    from hpt_cli.context import TrialContext

ENTRY_POINT_GROUP = "hpt.architectures"
COMMAND = "command"
# name -> "module" (its ARCHITECTURE) or "module:ATTRIBUTE"; imported on first use
_BUILTINS = {
    "mlp": "hpt_cli.architectures.mlp",
    "ridge": "hpt_cli.architectures.ridge",
    "lstm": "hpt_cli.architectures.lstm:LSTM",
    "lstm-attention": "hpt_cli.architectures.lstm:LSTM_ATTENTION",
    "branin": "hpt_cli.architectures.synthetic:BRANIN",  # benchmark objectives (tests, demos)
    "hartmann6": "hpt_cli.architectures.synthetic:HARTMANN6",
}
# name -> (module it needs, what to install): checked without importing it (torch takes seconds)
_REQUIRES = {
    "lstm": ("torch", "PyTorch", "hpt-cli[torch]"),
    "lstm-attention": ("torch", "PyTorch", "hpt-cli[torch]"),
}

TrainFn = Callable[[dict, "TrialContext"], dict]

__all__ = ["COMMAND", "Architecture", "ArchitectureError", "get", "names", "say_shadowed"]


class ArchitectureError(HptError):
    """An architecture name that resolves to nothing usable."""


@dataclass(frozen=True)
class Architecture:
    name: str
    train: TrainFn
    default_space: dict[str, Any] = field(default_factory=dict, hash=False)  # raw spec-JSON domains
    lr_params: tuple[str, ...] = ()  # the learning-rate parameters (for an auto mode)
    metrics: tuple[str, ...] = ()  # what train reports (empty: not declared, any objective goes)
    description: str = ""
    needs_data: bool = True  # False: the trial never reads ctx.data (benchmark objectives)
    # every parameter name train reads (default_space's and the rest); None: not declared, so a
    # spec's names go unchecked. Declared, a spec parameter it does not read is a spec error.
    parameters: frozenset[str] | None = None


def _command_train(params: dict, ctx: TrialContext) -> dict:
    raise RuntimeError("architecture 'command' runs the spec's \"command\" template; the trial "
                       "payload has no command")


_COMMAND = Architecture(
    name=COMMAND, train=_command_train,
    description="runs the spec's \"command\" template without a shell; metrics come back as JSON",
)


def names() -> list[str]:
    """Built-in names (in registration order), then entry point names (sorted); "command" is
    reserved and not listed."""
    say_shadowed()
    extra = sorted({ep.name for ep in _entry_points()} - set(_BUILTINS) - {COMMAND})
    return list(_BUILTINS) + extra


@functools.cache
def get(name: str) -> Architecture:
    """Resolve a name (cached per process); raise ArchitectureError with one line otherwise."""
    if name == COMMAND:
        return _COMMAND
    if name in _BUILTINS:  # no entry-point scan here: workers resolve built-ins per trial (~25 ms)
        if name in _REQUIRES:
            module, what, extra = _REQUIRES[name]
            if not _importable(module):
                raise ArchitectureError(f"architecture {name!r} needs {what}: pip install '{extra}'")
        module, _, attr = _BUILTINS[name].partition(":")
        return getattr(importlib.import_module(module), attr or "ARCHITECTURE")
    if ":" in name:
        return _from_reference(name)
    for ep in _entry_points():
        if ep.name == name:
            try:
                with _captured() as said:
                    obj = ep.load()
            except SystemExit as exc:
                raise ArchitectureError(_exited(ep.module, name, exc, said.getvalue())) from None
            except Exception as exc:  # noqa: BLE001 - any import failure of a plugin
                raise ArchitectureError(
                    f"cannot load architecture {name!r} from entry point {ep.value!r}: {_why(exc)}"
                ) from None
            return _as_architecture(obj, name)
    known = names()
    hint = difflib.get_close_matches(name, known, n=1)
    if not hint and "." in name:
        module, _, attr = name.rpartition(".")
        hint = [f"{module}:{attr}"]
    tail = f"; did you mean {hint[0]!r}?" if hint else ""
    raise ArchitectureError(
        f"unknown architecture {name!r}{tail} (known: {', '.join(known)}; or give 'package.module:function')"
    )


def _importable(module: str) -> bool:
    """Whether `import module` can find it, without importing it (None in sys.modules: no)."""
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@functools.cache
def say_shadowed() -> None:
    """Once per process, a note on stderr for each entry point named like a built-in (or
    "command"): it is never used, the built-in wins. Called by `names()` and the run's preflight,
    not by `get()`, which every worker calls (the entry-point scan costs ~25 ms)."""
    for ep in _entry_points():
        if ep.name in _BUILTINS or ep.name == COMMAND:
            what = "the built-in" if ep.name in _BUILTINS else "hpt's reserved name"
            dist = getattr(getattr(ep, "dist", None), "name", None)
            print(f"note: entry point {ep.name!r} = {ep.value!r} (group {ENTRY_POINT_GROUP}"
                  f"{f', package {dist}' if dist else ''}) is never used: {what} {ep.name!r} wins; "
                  f"register it under another name", file=sys.stderr)


def _entry_points() -> list:
    from importlib.metadata import entry_points  # ~25 ms: only when a name needs it

    try:
        return list(entry_points(group=ENTRY_POINT_GROUP))
    except Exception:  # noqa: BLE001 - broken distribution metadata must not break the built-ins
        return []


def _from_reference(name: str) -> Architecture:
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise ArchitectureError(f"architecture {name!r}: expected 'package.module:function'")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:  # first, as `python -m` does: ./test.py is the user's
        sys.path.insert(0, cwd)
    try:
        with _captured() as said:
            module = importlib.import_module(module_name)
    except SystemExit as exc:  # argparse or sys.exit at import time (KeyboardInterrupt still interrupts)
        raise ArchitectureError(_exited(module_name, name, exc, said.getvalue())) from None
    except ModuleNotFoundError as exc:
        top = module_name.split(".")[0]
        hint = (f"; run hpt from the folder that holds {top}, or put that folder on PYTHONPATH"
                if exc.name in (top, module_name) else "")
        raise ArchitectureError(
            f"cannot import {module_name!r} for architecture {name!r}: {_why(exc)}{hint}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - the user's module may fail in any way
        raise ArchitectureError(
            f"cannot import {module_name!r} for architecture {name!r}: {_why(exc)}"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = [n for n in dir(obj) if not n.startswith("_")]
            hint = difflib.get_close_matches(part, public, n=1)
            tail = f"; did you mean '{module_name}:{hint[0]}'?" if hint else ""
            raise ArchitectureError(f"module {module_name!r} ({_origin(module, module_name)}) has no attribute "
                                    f"{attr!r} (architecture {name!r}){tail}")
        obj = getattr(obj, part)
    return _as_architecture(obj, name)


@contextlib.contextmanager
def _captured():
    """Holds what a user's module prints while it is imported (argparse's usage lines would read
    as hpt's own). An import that ends well gives it back to the real streams; one that fails
    leaves only hpt's one error line, which may quote the last line of what it said (yielded)."""
    out, err = io.StringIO(), io.StringIO()
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield said
    finally:
        said.write(out.getvalue() + err.getvalue())
    sys.stdout.write(out.getvalue())
    sys.stderr.write(err.getvalue())


def _exited(module_name: str, name: str, exc: SystemExit, said: str = "") -> str:
    """What to say when importing a user's module raised SystemExit; `said`: what it printed
    (its last line is quoted, without argparse's "prog: error: ")."""
    lines = [line.strip() for line in said.splitlines() if line.strip()]
    quoted = f" ({re.sub(r'^[^:]*: error: ', '', lines[-1])!r})" if lines else ""
    return (f"importing {module_name!r} for architecture {name!r} called sys.exit({exc.code!r}){quoted}: it runs "
            f"argparse or sys.exit at import time; put that code under `if __name__ == \"__main__\":`")


def _origin(module: Any, module_name: str) -> str:
    """Where `module` was loaded from, and the working folder's file of that name if that is
    another (a module of that name was imported before, e.g. one of the standard library's)."""
    where = getattr(module, "__file__", None) or "built in"
    local = os.path.join(os.getcwd(), *module_name.split("."))
    for candidate in (local + ".py", os.path.join(local, "__init__.py")):
        if os.path.isfile(candidate) and (where == "built in" or not os.path.samefile(candidate, where)):
            rel = os.path.relpath(candidate)
            return (f"{where}, not ./{rel}: a module of that name was imported first; rename {rel}")
    return where


def _as_architecture(obj: Any, name: str) -> Architecture:
    if isinstance(obj, Architecture):
        return obj
    if not callable(obj):
        raise ArchitectureError(
            f"architecture {name!r} is a {type(obj).__name__}, not a function train(params, ctx)"
        )
    doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    return Architecture(name=name, train=obj, description=doc[0] if doc else "")


def _why(exc: BaseException) -> str:
    if isinstance(exc, ImportError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
