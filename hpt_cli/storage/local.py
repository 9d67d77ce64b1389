"""A run folder on local disk.

results.csv is appended through one O_APPEND descriptor, a whole line (or several) per write()
call, so a reader such as `pandas.read_csv` sees whole rows at any moment of a run. A write that
fails part-way (a full disk, a quota, `ulimit -f`) is cut back off before the error is raised, so
the file keeps only whole rows; every write of the run folder that fails raises `StorageError`
(exit 4) naming the path, the reason and the fix.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import re
from pathlib import Path
from typing import Any

from hpt_cli.errors import RESUMES, write_fix
from hpt_cli.storage.base import RunStore, same_file
from hpt_cli.storage.gcs import StorageError
from hpt_cli.storage.results import csv_line, read_rows

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def write_error(path: str | Path, exc: OSError, verb: str = "write") -> StorageError:
    """The one-line error for a run-folder write that failed: the path, the reason, the fix."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return StorageError(f"cannot {verb} {path}: {reason}; {write_fix(exc)}")


def disk_full_error(trial_id: str, folder: str, error: str) -> StorageError:
    """A trial failed because a disk was full: the run stops (exit 4) instead of recording a failed
    row that a resumed run would skip for good."""
    return StorageError(f"trial {trial_id} failed with {error}; free space where it writes (its folder: "
                        f"{folder}) and {RESUMES}")


class LocalRunStore(RunStore):
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.uri = str(self.root)
        self.root.mkdir(parents=True, exist_ok=True)  # an OSError here: run_spec's "cannot create" line
        self.results_path = self.root / "results.csv"
        self._fd: int | None = None
        self._made: set[str] = set()  # trial folders made: a mkdir costs about 1 ms on some filesystems

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
        try:
            if self._fd is None:
                self._fd = os.open(self.results_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                if os.fstat(self._fd).st_size > 0:
                    self._mend_torn_tail()
            mine = os.fstat(self._fd)
            size = mine.st_size
            if size == 0:
                size = self._append(csv_line(header).encode("utf-8"), size)
            if lines:
                self._check_in_place(mine)
                self._append("".join(lines).encode("utf-8"), size)
        except OSError as exc:
            raise write_error(self.results_path, exc) from None

    def _check_in_place(self, mine: os.stat_result) -> None:
        """Rows go to the file open since the start; stop (exit 4) where that is no longer the
        file at results.csv's path (the run folder moved or deleted while the run went on), rather
        than write rows nobody will find and end with exit 0."""
        if not same_file(self.results_path, mine):
            raise StorageError(f"{self.results_path} was moved or deleted while the run wrote it; a run folder "
                               f"must stay in place while hpt runs; run the same command again to go on from "
                               f"what {self.root} holds now")

    def _append(self, data: bytes, before: int) -> int:
        """Append `data` whole, or not at all: a write that fails part-way is cut back off to
        `before` (the file's size now). Returns the size after it."""
        written = 0
        try:
            while written < len(data):  # a short write is rare; keep going until the rows are whole
                n = os.write(self._fd, data[written:])
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written += n
        except OSError:
            try:
                os.ftruncate(self._fd, before)
            except OSError:  # then the torn row is cut when the file is next opened
                pass
            raise
        return before + written

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
        text = json.dumps(document, indent=2, sort_keys=False, default=str) + "\n"
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            try:
                tmp.unlink(missing_ok=True)  # what it holds is partial; the old file stays as it was
            except OSError:
                pass
            raise write_error(path, exc) from None

    def local_dir(self, name: str) -> Path:
        path = self.root / name
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(path, exc, "create") from None
        return path

    def trial_dir(self, trial_id: str) -> Path:
        if not _SAFE.match(trial_id):
            raise ValueError(f"unsafe trial id {trial_id!r}")
        path = self.root / "trials" / trial_id
        if trial_id in self._made:
            return path
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(path, exc, "create") from None
        self._made.add(trial_id)
        return path

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            except OSError as exc:
                raise write_error(self.results_path, exc) from None
            finally:
                os.close(fd)
