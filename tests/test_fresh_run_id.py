"""`--fresh` always starts a new run folder (review 2, finding 4: two fresh runs within the same
second shared one, and the second resumed the first)."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import pytest

from hpt_cli.errors import HptError
from hpt_cli.runner import RunOptions, run_spec
from hpt_cli.runner.run_id import claim_fresh, folder_holds_a_run, run_id
from hpt_cli.spec import parse_spec
from hpt_cli.storage.lock import FileLock, Locks, RunLock

NOW = datetime(2026, 11, 22, 9, 30, 0)


class Fake(RunLock):
    def __init__(self, name, held, used, log):
        self.where, self.held, self.used, self.log = name, held, used, log

    def try_acquire(self):
        self.log.append(("try", self.where))
        return "pid 1 on box" if self.where in self.held else None

    def release(self):
        self.log.append(("release", self.where))


def claim(held=(), used=()):
    log = []
    rid, lock = claim_fresh("r-1", lambda name: Fake(name, held, used, log), lambda lock: lock.where in used)
    return rid, log


def test_claim_takes_the_first_id_nobody_holds_or_used():
    assert claim() == ("r-1", [("try", "r-1")])
    assert claim(held={"r-1"})[0] == "r-1-2"  # another fresh run of this second holds it
    rid, log = claim(used={"r-1", "r-1-2"}, held={"r-1-3"})
    assert rid == "r-1-4"
    assert log == [("try", "r-1"), ("release", "r-1"), ("try", "r-1-2"), ("release", "r-1-2"), ("try", "r-1-3"),
                   ("try", "r-1-4")]  # a used folder's lock is given back at once


def test_claim_gives_up_after_many(monkeypatch):
    import hpt_cli.runner.run_id as module

    monkeypatch.setattr(module, "MAX_SUFFIX", 3)
    with pytest.raises(HptError, match=r"^r-1: 3 run folders of this spec stamped with the same second exist"):
        claim(held={"r-1", "r-1-2", "r-1-3"})


def test_a_folder_holding_only_its_lock_is_not_a_run(tmp_path):
    lock = FileLock(tmp_path / "r")
    assert lock.try_acquire() is None
    assert not folder_holds_a_run(lock) and not folder_holds_a_run(Locks(lock))
    (tmp_path / "r" / "spec.json").write_text("{}")
    assert folder_holds_a_run(lock) and folder_holds_a_run(Locks(lock))
    lock.release()
    assert not folder_holds_a_run(FileLock(tmp_path / "absent"))


def _spec():
    return parse_spec(json.dumps({"name": "fresh", "architecture": "branin",
                                  "parameters": {"x1": [1.0, 2.0], "x2": 1.0}}))


def test_two_fresh_runs_in_the_same_second_get_two_folders(tmp_path):
    stamped = run_id(_spec(), fresh_at=NOW)
    assert stamped == run_id(_spec()) + "-20261122-093000"
    options = RunOptions(output=str(tmp_path), fresh=True, workers=1)
    ids = [run_spec(_spec(), options, now=NOW).run_id for _ in range(3)]
    assert ids == [stamped, f"{stamped}-2", f"{stamped}-3"]
    for rid in ids:
        summary = json.loads((tmp_path / rid / "summary.json").read_text())
        assert summary["counts"]["ok"] == 2 and summary["counts"]["skipped"] == 0  # each one ran, none resumed
        assert json.loads((tmp_path / rid / "spec.json").read_text())["hpt"]["run_id"] == rid
    assert run_spec(_spec(), RunOptions(output=str(tmp_path), workers=1)).run_id == run_id(_spec())  # no --fresh


def test_a_fresh_run_moves_on_from_a_folder_another_fresh_run_holds(tmp_path):
    stamped = run_id(_spec(), fresh_at=NOW)
    other = FileLock(tmp_path / stamped)  # a fresh run started this second, before writing anything
    assert other.try_acquire() is None
    try:
        result = run_spec(_spec(), RunOptions(output=str(tmp_path), fresh=True, workers=1, lock="fail"), now=NOW)
        assert sorted(p.name for p in (tmp_path / stamped).iterdir()) == [".lock"]  # nothing of the new run
    finally:
        other.release()
    assert result.exit_code == 0 and result.run_id == f"{stamped}-2"
    assert not (tmp_path / stamped).exists()  # its holder made it and left nothing else in it


@pytest.mark.slow
def test_fresh_runs_started_at_the_same_moment_never_share_a_folder(tmp_path):
    spec = parse_spec(json.dumps({"name": "fresh", "architecture": "branin", "parameters": {
        "x1": [1.0, 2.0, 3.0], "x2": 1.0, "delay_s": 0.3}}))
    results, errors = [], []

    def go():
        try:
            results.append(run_spec(spec, RunOptions(output=str(tmp_path), fresh=True, workers=1), now=NOW))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    ids = sorted(r.run_id for r in results)
    stamped = run_id(spec, fresh_at=NOW)
    assert ids == sorted([stamped, f"{stamped}-2", f"{stamped}-3"])
    for rid in ids:
        assert json.loads((Path(tmp_path) / rid / "summary.json").read_text())["counts"]["ok"] == 3
