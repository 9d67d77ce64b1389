"""`hpt run` when the run folder's disk fills up, through real processes and workers: one line,
exit 4, no traceback, results.csv of whole rows, no worker left; a rerun once there is room
resumes. The limit is real but needs no root: RLIMIT_FSIZE (`ulimit -f`) makes every write past
it fail with EFBIG, part-way through the write that crosses it, as a full disk does with ENOSPC."""

from __future__ import annotations

import csv
import resource
import signal
import subprocess

import pandas as pd
import pytest

from tests.helpers import HPT, write_spec
from tests.test_run import assert_all_gone, env_for, run_dir

pytestmark = pytest.mark.slow

LIMIT = 4096  # bytes: results.csv reaches it after about 20 of the 40 rows


@pytest.fixture
def pids(tmp_path):
    folder = tmp_path / "pids"
    folder.mkdir()
    return folder


def _file_size_limit(limit: int):
    def apply() -> None:  # in the child, before exec: workers inherit both
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so write() fails with EFBIG, no signal
    return apply


def _whole_rows(path) -> list[list[str]]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), data[-80:]
    rows = list(csv.reader(data.decode().splitlines()))
    assert len({len(r) for r in rows}) == 1, "rows of different lengths: a torn row"
    return rows


def test_a_full_run_folder_is_one_line_exit_4_whole_rows_and_a_rerun_resumes(tmp_path, pids):
    # each trial prints more than the limit to its log.txt: those writes fail too, and are dropped
    spec = write_spec(tmp_path, architecture="tests.full_disk_archs:chatty",
                      parameters={"lines": 60, "value": list(range(40))})
    out = tmp_path / "out"
    cmd = [HPT, "run", str(spec), "-o", str(out), "-j", "2", "-q"]
    proc = subprocess.run(cmd, check=False, env=env_for(pids), capture_output=True, text=True, timeout=120,
                          preexec_fn=_file_size_limit(LIMIT))
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    folder = run_dir(out)
    assert lines[0] == (f"error: cannot write {folder / 'results.csv'}: File too large; raise the file size "
                        "limit (ulimit -f) and rerun the same command: finished rows are kept and the run resumes")
    assert_all_gone(pids)
    rows = _whole_rows(folder / "results.csv")
    first = pd.read_csv(folder / "results.csv")
    assert 5 < len(first) < 40 and len(rows) == len(first) + 1
    assert first["status"].eq("ok").all()  # a log that could not be written failed no trial
    assert (folder / "results.csv").stat().st_size <= LIMIT
    kept = (folder / "results.csv").read_bytes()

    again = subprocess.run(cmd, check=False, env=env_for(pids), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    final = pd.read_csv(folder / "results.csv")
    assert sorted(final["value"]) == list(range(40)) and final["trial_id"].is_unique
    assert final["status"].eq("ok").all()
    assert (folder / "results.csv").read_bytes().startswith(kept)  # finished rows kept as they were
    assert (folder / "summary.json").exists()


def test_a_trial_that_finds_the_disk_full_gets_no_row_and_runs_again(tmp_path, pids):
    full = tmp_path / "disk-is-full"
    full.touch()
    spec = write_spec(tmp_path, architecture="tests.full_disk_archs:disk_full_at",
                      parameters={"full_at": 5, "seconds": 0.05, "value": list(range(12))})
    out = tmp_path / "out"
    cmd = [HPT, "run", str(spec), "-o", str(out), "-j", "2", "-q"]
    env = env_for(pids) | {"HPT_TEST_DISK_FULL": str(full)}
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: trial ") and "failed with OSError: [Errno 28] No space left on device; " \
        "free space where it writes (its folder: " in line
    assert line.endswith("and rerun the same command: finished rows are kept and the run resumes")
    assert_all_gone(pids)
    folder = run_dir(out)
    first = pd.read_csv(folder / "results.csv")
    assert 5 not in set(first["value"]) and first["status"].eq("ok").all()

    full.unlink()  # space freed
    again = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    final = pd.read_csv(folder / "results.csv")
    assert sorted(final["value"]) == list(range(12)) and final["status"].eq("ok").all()
