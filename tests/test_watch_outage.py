"""`hpt watch gs://...` rides out a storage outage: it says so once, keeps polling, and goes on."""

from __future__ import annotations

import json

import pytest

from hpt_cli import watch as watch_module
from hpt_cli.errors import HptError


class FlakySource:
    """A run folder whose reads fail (as requests' ConnectionError, an OSError) on chosen polls."""

    uri = "gs://b/runs/r1"

    def __init__(self, files: dict[str, bytes], failing_reads: set[int]):
        self.files = files
        self.failing_reads = failing_reads
        self.reads = 0

    def exists(self) -> bool:
        return True

    def read(self, name: str, start: int = 0) -> bytes | None:
        self.reads += 1
        if self.reads in self.failing_reads:
            raise ConnectionError("no answer")
        data = self.files.get(name)
        return None if data is None else data[start:]


def run_watch(monkeypatch, source, timeout=None) -> tuple[int, list[str]]:
    monkeypatch.setattr(watch_module, "open_source", lambda uri, patience=None: source)
    said: list[str] = []
    ticks = iter(range(10_000))  # one second per poll
    code = watch_module.watch(source.uri, said.append, interval=0, timeout=timeout, sleep=lambda s: None,
                              clock=lambda: next(ticks))
    return code, said


FILES = {
    "spec.json": json.dumps({"objective": {"metric": "val_mse", "mode": "min"}}).encode(),
    "results.csv": b"trial_id,status,val_mse\nt1,ok,2.5\n",
    "summary.json": json.dumps({"status": "complete", "exit_code": 0, "wall_time_s": 1.0}).encode(),
}


def test_an_outage_is_said_once_and_the_watch_goes_on(monkeypatch):
    code, said = run_watch(monkeypatch, FlakySource(FILES, failing_reads={2, 3, 4, 5}))
    assert code == 0
    assert said == [
        "watching gs://b/runs/r1",
        "storage not answering (ConnectionError: no answer); still watching",
        "storage answers again",
        "[1] 1 ok, 0 failed, best val_mse 2.5 (trial t1)",
        "complete: exit code 0, wall time 1.0 s",
    ]


def test_an_outage_to_the_end_still_honours_the_timeout(monkeypatch):
    source = FlakySource(FILES, failing_reads=set(range(2, 1000)))
    with pytest.raises(HptError, match="no summary.json after 3 s"):
        run_watch(monkeypatch, source, timeout=3)


def test_a_bug_is_not_taken_for_an_outage(monkeypatch):
    class Broken(FlakySource):
        def read(self, name, start=0):
            raise KeyError(name)

    with pytest.raises(KeyError):
        run_watch(monkeypatch, Broken(FILES, set()))


def test_an_infinite_objective_is_never_the_best():
    tally = watch_module.Tally()
    for trial_id, value in [("a", "inf"), ("b", "-inf"), ("c", "nan"), ("d", "3.5")]:
        tally.add({"trial_id": trial_id, "status": "ok", "val_mse": value})
    assert tally.best == (3.5, "d")
