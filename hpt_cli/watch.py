"""Follow a run's results.csv, local or gs://, while the run goes on (`hpt watch`).

Only new bytes are read (a seek locally, a ranged download on GCS), and only whole lines are
counted, so a watcher on a laptop costs the run nothing and never sees half a row.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpt_cli.errors import HptError
from hpt_cli.sanitize import plain
from hpt_cli.storage.gcs import START_TIMEOUT, GcsLocation, check_bucket, describe, is_gcs, make_client, transient
from hpt_cli.storage.lock import LOCK_NAME
from hpt_cli.storage.results import stale_summary
from hpt_cli.words import first_of

RUN_FILES = ("spec.json", "results.csv", LOCK_NAME)  # any of them: a run folder (`.lock` comes first)


class LocalSource:
    def __init__(self, folder: str):
        self.folder = Path(folder)
        self.uri = str(self.folder)

    def read(self, name: str, start: int = 0) -> bytes | None:
        try:
            with open(self.folder / name, "rb") as fh:
                fh.seek(start)
                return fh.read()
        except FileNotFoundError:
            return None

    def exists(self) -> bool:
        """As GcsSource's: a folder with spec.json, results.csv or `.lock` (the output folder, or
        an empty one, is not a run folder)."""
        return is_run_folder(self.folder)

    def run_folders(self) -> list[str]:
        """The run folders right inside this folder (it is the output folder), sorted."""
        try:
            return sorted(str(p) for p in self.folder.iterdir() if p.is_dir() and is_run_folder(p))
        except OSError:
            return []


def is_run_folder(folder: Path) -> bool:
    return any((folder / name).is_file() for name in RUN_FILES)


class GcsSource:
    """A run folder in a bucket. Each read is one request with hpt's own timeout (no library
    retries, which went on for two minutes); a transient failure is retried for `patience`
    seconds, then is a StorageError (exit 4). With `patience` 0 it is raised as it is, for a
    caller that goes on by itself (`hpt watch`)."""

    def __init__(self, uri: str, client=None, patience: float = 30.0, sleep=time.sleep,
                 clock=time.monotonic):
        self.location = GcsLocation.parse(uri)
        self.uri = str(self.location)
        self.patience, self.sleep, self.clock = patience, sleep, clock
        client = client or make_client()
        check_bucket(client, self.location)  # a missing bucket or no permission: one line now
        self.bucket = client.bucket(self.location.bucket)

    def _call(self, request: Callable[[], Any]) -> Any:
        from hpt_cli.storage.gcs import StorageError, raise_unless_transient
        from hpt_cli.storage.mirror import Backoff

        deadline, backoff = self.clock() + self.patience, Backoff(cap=5.0)
        while True:
            try:
                return request()
            except Exception as exc:  # noqa: BLE001 - the user's error, or retried while patience lasts
                raise_unless_transient(exc, self.location)
                left = deadline - self.clock()
                if self.patience == 0:
                    raise
                if left <= 0:
                    raise StorageError(f"{self.uri} does not answer ({describe(exc)}); try again once it does") \
                        from None
                self.sleep(min(backoff.next_delay(), left))

    def _blob(self, name: str):
        return self.bucket.get_blob(self.location.key(name), timeout=START_TIMEOUT, retry=None)

    def read(self, name: str, start: int = 0) -> bytes | None:
        def request() -> bytes | None:
            blob = self._blob(name)
            if blob is None:
                return None
            if blob.size <= start:
                return b""
            return blob.download_as_bytes(start=start, timeout=START_TIMEOUT, retry=None, checksum=None)

        return self._call(request)

    def exists(self) -> bool:
        """A run folder has spec.json and results.csv from its start; `.lock` comes first of all
        (before the run uploads the other two), so a run that has just started counts too."""
        return any(self._call(lambda name=name: self._blob(name)) is not None for name in RUN_FILES)

    def run_folders(self) -> list[str]:
        return []


def open_source(uri: str, patience: float = 30.0):
    """The run folder at `uri`, local or gs:// (whose transient failures are retried for
    `patience` seconds: see GcsSource)."""
    return GcsSource(uri, patience=patience) if is_gcs(uri) else LocalSource(uri)


@dataclass
class Tally:
    """What the rows seen so far say."""

    metric: str = "val_mse"
    mode: str = "min"
    total: int | None = None
    rows: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    best: tuple[float, str] | None = None

    def add(self, row: dict[str, str]) -> None:
        self.rows += 1
        status = row.get("status", "")
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if status != "ok":
            return
        try:
            value = float(row.get(self.metric, ""))
        except ValueError:
            return
        if not math.isfinite(value):  # an older hpt wrote nan/inf objectives as ok rows
            return
        sign = 1 if self.mode == "min" else -1
        if self.best is None or sign * value < sign * self.best[0]:
            self.best = (value, row.get("trial_id", "?"))

    def line(self) -> str:
        of = f"/{self.total}" if self.total else ""
        ok = self.by_status.get("ok", 0)
        stopped = self.by_status.get("stopped", 0)
        timed_out = self.by_status.get("timeout", 0)
        failed = self.rows - ok - stopped - timed_out
        best = f", best {self.metric} {self.best[0]:.6g} (trial {self.best[1]})" if self.best else ""
        early = f", {stopped} stopped early" if stopped else ""
        late = f", {timed_out} timed out" if timed_out else ""  # as `hpt run` counts them
        return f"[{self.rows}{of}] {ok} ok{early}, {failed} failed{late}{best}"


class Watcher:
    """Reads new rows of results.csv on each `poll()`; `done` once summary.json is there."""

    def __init__(self, source):
        self.source = source
        self.offset = 0
        self.header: list[str] | None = None
        self.tally = Tally()
        self.summary: dict[str, Any] | None = None
        self._spec_read = False

    def _read_spec(self) -> None:
        raw = self.source.read("spec.json")
        if raw is None:
            return
        self._spec_read = True
        try:
            doc = json.loads(raw)
            objective = doc.get("objective", {})
            self.tally.metric = objective.get("metric", self.tally.metric)
            self.tally.mode = objective.get("mode", self.tally.mode)
            from hpt_cli.search import expand
            from hpt_cli.spec import parse_spec

            doc.pop("hpt", None)
            self.tally.total = len(expand(parse_spec(json.dumps(doc))))
        except Exception:  # noqa: BLE001 - a spec this version cannot read: no total shown
            pass

    def poll(self) -> list[dict[str, str]]:
        """New whole rows since the last poll; `done` turns true once summary.json is there."""
        if not self._spec_read:
            self._read_spec()
        rows = self._new_rows()
        if self.summary is None:
            raw = self.source.read("summary.json")
            if raw is not None and not self._stale(json.loads(raw)):
                self.summary = json.loads(raw)
                rows += self._new_rows()  # rows that landed between the two reads
        return rows

    def _stale(self, summary: dict) -> bool:
        """A summary.json left by an earlier attempt of a run that has been started again: it
        ended before the current attempt wrote its spec.json."""
        raw = self.source.read("spec.json")
        try:
            return stale_summary(summary, json.loads(raw) if raw else None)
        except (ValueError, AttributeError):
            return False

    def _new_rows(self) -> list[dict[str, str]]:
        data = self.source.read("results.csv", self.offset)
        end = data.rfind(b"\n") + 1 if data else 0
        if not end:
            return []
        text = data[:end].decode("utf-8")
        self.offset += end
        if self.header is None:
            first, _, text = text.partition("\n")
            self.header = next(csv.reader([first]))
        rows = []
        for cells in csv.reader(io.StringIO(text)):
            if len(cells) == len(self.header):
                row = dict(zip(self.header, cells))
                self.tally.add(row)
                rows.append(row)
        return rows

    @property
    def done(self) -> bool:
        return self.summary is not None


def watch(uri: str, say: Callable[[str], None], interval: float = 2.0, timeout: float | None = None,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> int:
    """Follow the run at `uri` until its summary appears; returns the run's exit code."""
    source = open_source(uri, patience=0)  # the loop below goes on through outages itself
    try:
        found = source.exists()
    except Exception as exc:  # noqa: BLE001 - only storage failures that may pass are kept
        if not (is_gcs(uri) and transient(exc)):
            raise
        found = True  # cannot tell now: the loop says that storage does not answer, and goes on
    if not found:
        inside = source.run_folders()
        if inside:
            raise HptError(f"{uri} holds run folders: {first_of(inside)}; give one")
        raise HptError(f"{uri}: no such run folder; give the folder `hpt run` printed (<output>/<run-id>)")
    watcher = Watcher(source)
    started = clock()
    say(f"watching {watcher.source.uri}")
    shown = None
    outage = False  # said that storage stopped answering; said again once it answers
    while True:
        try:
            rows = watcher.poll()
        except Exception as exc:  # noqa: BLE001 - only storage failures that may pass are kept
            if not (is_gcs(uri) and transient(exc)):
                raise
            if not outage:
                say(f"storage not answering ({describe(exc)}); still watching")
                outage = True
            rows = []
        else:
            if outage:
                say("storage answers again")
                outage = False
        for row in rows:
            if row.get("status") not in ("ok", "stopped"):  # stopped early is not a failure
                say(f"{row.get('status')}: {row.get('trial_id')} {row.get('architecture')} "
                    f"{row.get('start')}..{row.get('end')} {plain(row.get('error') or '')}".rstrip())
        line = watcher.tally.line()
        if watcher.header is not None and line != shown:
            say(line)
            shown = line
        if watcher.done:
            s = watcher.summary
            wall = s.get("wall_time_s")
            wall = f"{wall:.1f}" if isinstance(wall, (int, float)) else wall
            say(f"{s.get('status', 'done')}: exit code {s.get('exit_code')}, wall time {wall} s")
            return int(s.get("exit_code", 0))
        if timeout is not None and clock() - started > timeout:
            raise HptError(f"{uri}: no summary.json after {timeout:g} s; the run is still going (or "
                           "was killed); run `hpt watch` again")
        sleep(interval)
