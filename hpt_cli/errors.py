"""Exceptions that carry a user-facing message and the process exit code.

The core raises these; the CLI turns them into one line on stderr and the exit code. Nothing
here knows about click.
"""

from __future__ import annotations

from dataclasses import dataclass


class ExitCode:
    """The documented exit codes of `hpt` (README, "Exit codes")."""

    OK = 0
    TRIALS_FAILED = 1
    USAGE = 2
    INTERRUPTED = 3
    STORAGE = 4
    LOCKED = 5  # another run holds the lock on the run folder (--lock fail)
    TIME_CAP = 6  # --max-time reached: dispatching stopped, finished rows kept
    INTERNAL = 70


class HptError(Exception):
    """An error the user can act on; `str()` is the one line shown to them."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Problem:
    """One problem found in a spec: where (JSON path, file line) and what."""

    path: str
    message: str
    line: int | None = None

    def render(self, source: str | None = None) -> str:
        where = ""
        if source:
            where = f"{source}:{self.line}: " if self.line else f"{source}: "
        return f"{where}{self.path or '$'}: {self.message}"


class SpecError(HptError):
    """A spec that cannot be used; holds every problem found, each rendered on its own line."""

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        super().__init__("\n".join(p.render(source) for p in self.problems))


class DataError(HptError):
    """The data a spec points at is missing, unreadable or does not cover a date range."""


class LockedError(HptError):
    """Another run holds the lock on the run folder."""

    exit_code = ExitCode.LOCKED


class Interrupted(HptError):
    """SIGINT/SIGTERM before the run started (e.g. while waiting for a lock)."""

    exit_code = ExitCode.INTERRUPTED
