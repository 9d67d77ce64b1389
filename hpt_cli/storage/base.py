"""The storage seam: where a run's folder lives (local disk now; gs:// next)."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any


class RunStore(ABC):
    """One run folder: spec.json, results.csv (append-only), trials/<id>/, summary.json."""

    uri: str

    @abstractmethod
    def read_results(self) -> tuple[list[str] | None, list[dict[str, str]]]:
        """The header and whole rows of results.csv so far ((None, []) if there is none)."""

    @abstractmethod
    def append_results(self, header: list[str], lines: list[str]) -> None:
        """Append whole CSV lines (writing the header first if the file is new)."""

    @abstractmethod
    def write_json(self, name: str, document: Any) -> None:
        """Write (replace) a small JSON file of the run folder, atomically."""

    @abstractmethod
    def trial_dir(self, trial_id: str) -> Path:
        """A local folder for the trial's artifacts and log (created)."""

    def local_dir(self, name: str) -> Path:
        """A folder of the run on this machine's filesystem (created), e.g. the scheduler's
        rung files; the spool's for a gs:// run. It is not uploaded."""
        raise NotImplementedError(f"{type(self).__name__} has no local folder")

    def notes(self) -> list[str]:
        """Lines worth showing the user when the run starts (where a spool is, warnings)."""
        return []

    def trial_finished(self, trial_id: str) -> None:
        """The trial's row is written and its files are complete (remote stores upload them)."""

    def artifact_uri(self, trial_id: str) -> str:
        """Where the trial's files are, as results.csv names them (relative for a local folder)."""
        return f"trials/{trial_id}"

    def close(self) -> None:
        """Flush and release; the run folder is complete after this (StorageError if it cannot
        be: the results are then kept locally, and the error says where)."""


def same_file(path: str | Path, held: os.stat_result) -> bool:
    """Whether `path` is (still) the file or folder `held` is the stat of; False when it is gone."""
    try:
        there = os.stat(path)
    except OSError:
        return False
    return (there.st_ino, there.st_dev) == (held.st_ino, held.st_dev)
