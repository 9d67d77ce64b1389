"""A run folder on local disk.

results.csv is appended through one O_APPEND descriptor, a whole line (or several) per write()
call, so a reader such as `pandas.read_csv` sees whole rows at any moment of a run.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

from hpt_cli.storage.base import RunStore
from hpt_cli.storage.results import csv_line, read_rows

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class LocalRunStore(RunStore):
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.uri = str(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.results_path = self.root / "results.csv"
        self._fd: int | None = None

    def read_results(self) -> tuple[list[str] | None, list[dict[str, str]]]:
        try:
            text = self.results_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, []
        if not text.strip():
            return None, []
        header = next(csv.reader([text.split("\n", 1)[0]]))
        return header, read_rows(text)

    def append_results(self, header: list[str], lines: list[str]) -> None:
        if self._fd is None:
            self._fd = os.open(self.results_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if os.fstat(self._fd).st_size > 0:
                self._mend_torn_tail()
            if os.fstat(self._fd).st_size == 0:
                os.write(self._fd, csv_line(header).encode("utf-8"))
        if lines:
            data = "".join(lines).encode("utf-8")
            written = os.write(self._fd, data)
            while written < len(data):  # rare: a short write; keep going until the rows are whole
                written += os.write(self._fd, data[written:])

    def _mend_torn_tail(self) -> None:
        """After a crash in the middle of a write the file may end inside a row: cut that torn
        row off (its trial has no whole row, so a resumed run runs it again)."""
        with open(self.results_path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            tail = b""
            while size > 0 and b"\n" not in tail:
                step = min(4096, size)
                size -= step
                fh.seek(size)
                tail = fh.read(step) + tail
        keep = size + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
        if keep != os.fstat(self._fd).st_size:
            os.ftruncate(self._fd, keep)

    def write_json(self, name: str, document: Any) -> None:
        path = self.root / name
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    def local_dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def trial_dir(self, trial_id: str) -> Path:
        if not _SAFE.match(trial_id):
            raise ValueError(f"unsafe trial id {trial_id!r}")
        path = self.root / "trials" / trial_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
