"""A full disk while the run folder is written: results.csv keeps whole rows, and every failed
write is a StorageError (exit 4) naming the path, the reason and the fix."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from hpt_cli.errors import ExitCode, is_disk_full
from hpt_cli.storage import LocalRunStore, StorageError
from hpt_cli.storage.results import csv_line

HEADER = ["trial_id", "status", "note"]
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FillsUp:
    """os.write that writes `room` more bytes to `fd`, in short writes, then fails with `error`;
    every other descriptor is written as usual."""

    def __init__(self, monkeypatch, fd: int, room: int, error: OSError = ENOSPC):
        self.fd, self.room, self.error = fd, room, error
        self.real = os.write
        monkeypatch.setattr(os, "write", self)

    def __call__(self, fd: int, data: bytes) -> int:
        if fd != self.fd:
            return self.real(fd, data)
        if self.room <= 0:
            raise self.error
        n = self.real(fd, bytes(data[: min(len(data), self.room, 7)]))
        self.room -= n
        return n


def test_a_row_that_does_not_fit_is_cut_off_and_the_error_says_what_to_do(tmp_path, monkeypatch):
    store = LocalRunStore(tmp_path / "run")
    store.append_results(HEADER, [csv_line(["a", "ok", "x"])])
    before = store.results_path.read_bytes()
    full = FillsUp(monkeypatch, store._fd, room=20)  # a part of the next two rows fits, not all
    with pytest.raises(StorageError) as caught:
        store.append_results(HEADER, [csv_line(["b", "ok", "y" * 30]), csv_line(["c", "ok", "z"])])
    assert full.room == 0  # some bytes were written before the failure ...
    assert store.results_path.read_bytes() == before  # ... and cut off again: whole rows only
    message = str(caught.value)
    assert message == (f"cannot write {store.results_path}: No space left on device; free space there and "
                       "rerun the same command: finished rows are kept and the run resumes")
    assert "\n" not in message and caught.value.exit_code == ExitCode.STORAGE == 4
    # space freed: the same store (or a resumed one) goes on appending whole rows
    full.room = 10**6
    store.append_results(HEADER, [csv_line(["b", "ok", "y"])])
    store.close()
    frame = pd.read_csv(store.results_path)
    assert list(frame["trial_id"]) == ["a", "b"]


def test_a_header_that_does_not_fit_leaves_an_empty_file(tmp_path, monkeypatch):
    store = LocalRunStore(tmp_path / "run")
    real_open = os.open

    def opened(path, flags, mode=0o777, **kwargs):
        fd = real_open(path, flags, mode, **kwargs)
        if str(path).endswith("results.csv"):
            FillsUp(monkeypatch, fd, room=5)
        return fd

    monkeypatch.setattr(os, "open", opened)
    with pytest.raises(StorageError, match="results.csv: No space left on device; free space there"):
        store.append_results(HEADER, [])
    assert store.results_path.read_bytes() == b""
    assert store.read_results() == (None, [])


def test_file_size_limit_has_its_own_fix(tmp_path, monkeypatch):
    store = LocalRunStore(tmp_path / "run")
    store.append_results(HEADER, [])
    FillsUp(monkeypatch, store._fd, room=3, error=OSError(errno.EFBIG, os.strerror(errno.EFBIG)))
    with pytest.raises(StorageError, match=r"File too large; raise the file size limit \(ulimit -f\) and rerun"):
        store.append_results(HEADER, [csv_line(["a", "ok", "x"])])
    assert store.results_path.read_text() == "trial_id,status,note\n"


def test_a_json_file_that_does_not_fit_keeps_the_old_one(tmp_path, monkeypatch):
    store = LocalRunStore(tmp_path / "run")
    store.write_json("summary.json", {"old": True})
    real = Path.write_text

    def write_text(self, text, *args, **kwargs):  # half of it, then the disk is full
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(StorageError, match=r"cannot write .*summary.json: No space left on device; free space"):
        store.write_json("summary.json", {"new": True})
    assert json.loads((store.root / "summary.json").read_text()) == {"old": True}
    assert sorted(p.name for p in store.root.iterdir()) == ["summary.json"]  # no partial temporary file


def test_folders_that_cannot_be_made_are_storage_errors(tmp_path, monkeypatch):
    store = LocalRunStore(tmp_path / "run")

    def mkdir(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(StorageError, match=r"cannot create .*trials/abc: No space left on device"):
        store.trial_dir("abc")
    with pytest.raises(StorageError, match=r"cannot create .*\.scheduler: No space left on device"):
        store.local_dir(".scheduler")


def test_close_that_cannot_sync_is_a_storage_error(tmp_path, monkeypatch):
    store = LocalRunStore(tmp_path / "run")
    store.append_results(HEADER, [csv_line(["a", "ok", "x"])])

    def fsync(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StorageError, match=r"results.csv: Input/output error; fix that and rerun"):
        store.close()
    store.close()  # closed anyway: a second close does nothing


@pytest.mark.parametrize("error, full", [
    ("OSError: [Errno 28] No space left on device", True),
    (f"OSError: [Errno {errno.EDQUOT}] Disk quota exceeded", True),
    ("command failed (exit 1): write error: No space left on device", True),
    ("OSError: [Errno 27] File too large", False),
    ("ValueError: bad value", False),
    (None, False),
])
def test_is_disk_full(error, full):
    assert is_disk_full(error) is full


def test_a_disk_full_before_the_lock_is_written_is_exit_4_not_a_bad_output(tmp_path, monkeypatch):
    import hpt_cli.runner as runner
    from hpt_cli.runner import RunOptions, run_spec
    from hpt_cli.spec import parse_spec

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(runner, "open_lock", full)
    spec = parse_spec(json.dumps({"name": "b", "architecture": "branin", "parameters": {"x1": 1.0, "x2": 2.0}}))
    with pytest.raises(StorageError) as info:
        run_spec(spec, RunOptions(output=str(tmp_path), workers=1))
    assert info.value.exit_code == ExitCode.STORAGE
    assert str(info.value).endswith(": cannot write the run folder (No space left on device); free space there "
                                    "and rerun the same command: finished rows are kept and the run resumes")
