"""Exceptions that carry a user-facing message and the process exit code.

The core raises these; the CLI turns them into one line on stderr and the exit code. Nothing
here knows about click.
"""

from __future__ import annotations

import errno
import os
import re
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

    path: str | None  # "" (or "$") is the spec's top level; None: the file as a whole (unreadable, not JSON)
    message: str
    line: int | None = None

    def render(self, source: str | None = None) -> str:
        where = ""
        if source:
            where = f"{source}:{self.line}: " if self.line else f"{source}: "
        return f"{where}{self.message}" if self.path is None else f"{where}{self.path or '$'}: {self.message}"


class SpecError(HptError):
    """A spec that cannot be used; holds every problem found, each rendered on its own line, in
    the order of their lines in the spec (those without a line first; equal lines keep theirs)."""

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = sorted(problems, key=lambda p: p.line or 0)
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


# -- disk errors -------------------------------------------------------------------------------
# A full disk or quota is the environment's problem, not a trial's: hpt stops with exit 4 and a
# rerun (after freeing space) resumes. These read an OSError, or a trial's error text.

RESUMES = "rerun the same command: finished rows are kept and the run resumes"
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXT = re.compile(
    "|".join([*(re.escape(f"[Errno {n}]") for n in DISK_FULL_ERRNOS),
              *(re.escape(os.strerror(n)) for n in DISK_FULL_ERRNOS)]),
    re.IGNORECASE,
)


def write_fix(exc: OSError) -> str:
    """What to do about a failed write of the run folder, for the end of a one-line error."""
    if exc.errno in DISK_FULL_ERRNOS:
        return f"free space there and {RESUMES}"
    if exc.errno == errno.EFBIG:
        return f"raise the file size limit (ulimit -f) and {RESUMES}"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"make it writable and {RESUMES}"
    return f"fix that and {RESUMES}"


def is_disk_full(error: str | None) -> bool:
    """Whether a trial's error text says a disk (or quota) was full: ENOSPC or EDQUOT."""
    return bool(error) and _DISK_FULL_TEXT.search(error) is not None
