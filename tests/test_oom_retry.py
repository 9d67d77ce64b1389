"""A trial that runs out of GPU memory next to other trials runs once more, alone on a GPU.

`hpt run` in a subprocess on a fake inventory (HPT_FAKE_GPUS), with tests/oom_archs.py: its big
trial fails with hpt's GPU out-of-memory error whenever another trial runs on its GPU, and records
which trials it saw (so does every other trial). Also: choosing the slot of a LocalExecutor.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from hpt_cli.devices.worker import is_oom_error
from hpt_cli.errors import ExitCode
from hpt_cli.executors import Job, LocalExecutor
from tests.helpers import HPT, subprocess_env, write_spec
from tests.oom_archs import FOLDER_VAR


def run_oom(tmp_path: Path, gpus: str, gpus_per_trial: float, trials: int, oom: str, retries: int = 0):
    """Run `trials` trials of tests.oom_archs:trial; the big trial's row, every row, its log and
    what each attempt saw."""
    marks = tmp_path / "marks"
    marks.mkdir()
    spec = write_spec(tmp_path, architecture="tests.oom_archs:trial",
                      parameters={"n": list(range(trials)), "oom": oom, "trials": trials},
                      resources={"gpus_per_trial": gpus_per_trial}, trial={"retries": retries})
    env = subprocess_env(HPT_FAKE_GPUS=gpus, **{FOLDER_VAR: str(marks)})
    env.pop("CUDA_VISIBLE_DEVICES", None)
    out = tmp_path / "out"
    proc = subprocess.run([HPT, "run", str(spec), "-o", str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    rows = pd.read_csv(folder / "results.csv", dtype={"device": str})
    big = (marks / "big").read_text()
    seen = [json.loads(line) for line in (marks / "seen.jsonl").read_text().splitlines()]
    log = (folder / "trials" / big / "log.txt").read_text()
    return proc, rows, rows[rows["trial_id"] == big].iloc[0], log, seen


def neighbours_of(seen: list[dict], trial: str, attempt: int) -> list[str]:
    """Whom that attempt saw on its GPU, and who saw it."""
    me = next(r for r in seen if r["trial"] == trial and r["attempt"] == attempt)
    mark = f"{trial}-{attempt}"
    return me["seen"] + [f"{r['trial']}-{r['attempt']}" for r in seen if mark in r["seen"]]


def hpt_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("hpt: ")]


@pytest.mark.slow
def test_an_oom_next_to_a_neighbour_runs_again_alone_on_its_gpu_and_succeeds(tmp_path):
    """2 GPUs at 1/2: 4 slots for 12 trials. The big trial fails next to a neighbour, is held back
    until a GPU has no trial running, then runs there alone until the others, on the other GPU,
    have ended."""
    proc, rows, big, log, seen = run_oom(tmp_path, "2x80GiB", 0.5, trials=12, oom="crowded")
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    assert list(rows["status"]) == ["ok"] * 12
    assert (big["attempts"], big["error"] if isinstance(big["error"], str) else "") == (2, "")
    assert set(rows[rows["trial_id"] != big["trial_id"]]["attempts"]) == {1}
    assert neighbours_of(seen, big["trial_id"], 1) != []  # its first attempt was not alone
    assert neighbours_of(seen, big["trial_id"], 2) == []  # its retry was
    second = next(r for r in seen if r["trial"] == big["trial_id"] and r["attempt"] == 2)
    assert big["device"] == f"gpu{second['gpu']}"
    notes = hpt_lines(log)
    assert len(notes) == 2, log
    assert re.fullmatch(r"hpt: GPU out of memory on gpu\d next to \d other trials? \([0-9a-f, ]+\): one more "
                        r"attempt, alone on a GPU, once a GPU has no other trial running", notes[0]), notes[0]
    assert notes[1] == f"hpt: attempt 2 of 2, alone on gpu{second['gpu']}"
    assert "OutOfMemoryError" in log  # torch's traceback of the first attempt stays in the log


@pytest.mark.slow
def test_an_oom_alone_on_its_gpu_stays_failed(tmp_path):
    """One GPU at 1/2: the big trial fails next to a neighbour, again alone, and is failed for good."""
    proc, rows, big, log, seen = run_oom(tmp_path, "1x80GiB", 0.5, trials=3, oom="always")
    assert proc.returncode == ExitCode.TRIALS_FAILED, proc.stdout + proc.stderr
    assert big["status"] == "failed" and big["attempts"] == 2
    assert is_oom_error(big["error"]) and "(CUDA out of memory. Tried to allocate 20.00 GiB." in big["error"]
    assert neighbours_of(seen, big["trial_id"], 2) == []
    assert [r["attempt"] for r in seen if r["trial"] == big["trial_id"]] == [1, 2]
    notes = hpt_lines(log)
    assert notes[1:] == ["hpt: attempt 2 of 2, alone on gpu0",
                         "hpt: GPU out of memory with no other trial running on gpu0: no retry with fewer neighbours"]
    assert list(rows[rows["trial_id"] != big["trial_id"]]["status"]) == ["ok", "ok"]


@pytest.mark.slow
def test_an_oom_on_a_whole_gpu_gets_no_extra_attempt(tmp_path):
    proc, rows, big, log, seen = run_oom(tmp_path, "2x80GiB", 1, trials=3, oom="always")
    assert proc.returncode == ExitCode.TRIALS_FAILED, proc.stdout + proc.stderr
    assert big["status"] == "failed" and big["attempts"] == 1 and is_oom_error(big["error"])
    assert hpt_lines(log) == []


@pytest.mark.slow
def test_the_extra_attempt_comes_on_top_of_trial_retries(tmp_path):
    """retries 1: attempt 1 (next to a neighbour), 2 (alone, the extra one), 3 (the retry)."""
    proc, rows, big, log, seen = run_oom(tmp_path, "1x80GiB", 0.5, trials=3, oom="always", retries=1)
    assert proc.returncode == ExitCode.TRIALS_FAILED, proc.stdout + proc.stderr
    assert big["status"] == "failed" and big["attempts"] == 3
    assert [line for line in hpt_lines(log) if "attempt" in line][-2:] == [
        "hpt: attempt 2 of 3, alone on gpu0", "hpt: attempt 3 of 3"]


@pytest.mark.slow
def test_the_retry_alone_runs_without_the_shares_memory_cap(tmp_path):
    """One 80 GiB GPU at 1/2: each worker's cap is 40960 MiB. The trial that needs 60000 MiB fails
    next to a neighbour, runs again alone with no cap (HPT_GPU_MEMORY_MIB lifted for that trial)
    and succeeds; the next trial on the same worker has the share's cap again."""
    marks = tmp_path / "marks"
    marks.mkdir()
    spec = write_spec(tmp_path, architecture="tests.oom_archs:needs_memory",
                      parameters={"n": list(range(8)), "need_mib": 60000}, resources={"gpus_per_trial": 0.5})
    env = subprocess_env(HPT_FAKE_GPUS="1x80GiB", **{FOLDER_VAR: str(marks)})
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env.pop("HPT_GPU_MEMORY_MIB", None)
    out = tmp_path / "out"
    proc = subprocess.run([HPT, "run", str(spec), "-o", str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    rows = pd.read_csv(folder / "results.csv")
    needy = (marks / "needy").read_text()
    assert list(rows["status"]) == ["ok"] * 8
    assert dict(zip(rows["trial_id"], rows["attempts"])) == {t: 2 if t == needy else 1 for t in rows["trial_id"]}
    records = [json.loads(line) for line in (marks / "caps.jsonl").read_text().splitlines()]
    retry = next(i for i, r in enumerate(records) if r["trial"] == needy and r["attempt"] == 2)
    assert [r["cap"] for r in records if r["trial"] == needy] == ["40960", None]
    assert all(r["cap"] == "40960" for i, r in enumerate(records) if i != retry)
    after = [r for r in records[retry + 1:] if r["pid"] == records[retry]["pid"]]
    assert after, records  # a trial ran on that warm worker after the retry, under the share's cap again
    log = (folder / "trials" / needy / "log.txt").read_text()
    assert "hpt: attempt 2 of 2, alone on gpu0" in hpt_lines(log)


def test_is_oom_error_reads_the_error_trialrun_raises():
    assert is_oom_error("RuntimeError: GPU out of memory on cuda:0 [GPU 2] (CUDA out of memory. Tried ...): lower")
    assert not is_oom_error("OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB")
    assert not is_oom_error("worker died with signal SIGKILL (out of memory? the kernel's OOM killer sends SIGKILL)")
    assert not is_oom_error(None) and not is_oom_error("")


@pytest.mark.slow
def test_local_executor_runs_a_job_on_the_slot_asked_for():
    with LocalExecutor(3) as ex:
        assert ex.free_slot_names() == ["w0", "w1", "w2"]
        ex.submit(Job("a", "tests.executors.jobs:sleep", {"seconds": 30.0}), slot="w2")
        assert ex.free_slot_names() == ["w0", "w1"] and ex.free_slots() == 2
        with pytest.raises(RuntimeError, match="slot w2 is running job 'a'"):
            ex.submit(Job("b", "tests.executors.jobs:noop"), slot="w2")
        with pytest.raises(ValueError, match="no slot named 'w9'"):
            ex.submit(Job("b", "tests.executors.jobs:noop"), slot="w9")
        ex.submit(Job("b", "tests.executors.jobs:getpid"), slot="w1")
        ex.submit(Job("c", "tests.executors.jobs:getpid"))  # no slot asked for: the first free one
        results = []
        while len(results) < 2:
            results += ex.wait(timeout=30)
        assert {r.key: r.worker for r in results} == {"b": "w1", "c": "w0"}
        assert [r.key for r in ex.shutdown(cancel=True)] == ["a"]
