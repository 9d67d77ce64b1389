"""The storage seam: where a run's folder lives (local disk now; gs:// next)."""

from __future__ import annotations

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

    def close(self) -> None:
        """Flush and release; the run folder is complete after this."""
