"""Mirror a spool folder (a local run folder) to its gs:// location, rows exactly once.

results.csv grows by compose: the bytes of the spool's results.csv beyond what the bucket holds
go up as a part object, which is composed onto results.csv with a generation precondition and
then deleted. The bucket's copy is always a prefix of the spool's, so its size says exactly which
bytes are committed; every attempt starts by reading that size, so an append whose response was
lost is recognised as done and never repeated. Each part has a name of its own and is deleted
after a compose that failed without effect, so a compose that reaches the server late (after its
timeout, where preconditions are not enforced, as in the emulator) finds no part and fails. Where
results.csv has a generation other than the one this mirror last wrote (a write it did not see:
another runner that took the run over, a late compose), its prefix is checked against the spool
again (CRC32C) before anything is appended: a bucket copy that is no longer the spool's prefix
stops the uploads (`Diverged`) instead of getting rows at the wrong offset. Other files (spec.json, trial artifacts, logs, summary.json) are
uploaded whole; `.hpt-sync/uploaded.log` remembers what went up, so `hpt sync` resumes.
"""

from __future__ import annotations

import base64
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from hpt_cli.storage.gcs import CALL_TIMEOUT, Diverged, GcsLocation, describe

RESULTS = "results.csv"
SUMMARY = "summary.json"  # uploaded last: its presence in the bucket means the run is complete
STATE_DIR = ".hpt-sync"
TARGET_FILE = "target"
UPLOADED_LOG = "uploaded.log"
PARTS = ".parts"
MULTIPART_LIMIT = 8 * 1024 * 1024  # above this, a file goes up in pieces of this size, composed at the end
COMPOSE_MAX = 32  # sources of one compose request (GCS's limit)


class Cancelled(Exception):
    """The mirror was cancelled (the run is quitting): it starts no new request."""


def _crc32c_b64(chunks: Iterable[bytes]) -> str:
    """CRC32C as GCS gives it (base64 of 4 big-endian bytes) of the bytes `chunks` yield."""
    import google_crc32c

    checksum = google_crc32c.Checksum()
    for chunk in chunks:
        checksum.update(chunk)
    return base64.b64encode(checksum.digest()).decode("ascii")


_FORGOTTEN = (-1, -1)  # an uploaded.log stamp no file has: uploaded again on the next push


def _file_crc32c_b64(path: Path) -> str | None:
    """A file's CRC32C as GCS gives it; None if it is gone."""
    try:
        with open(path, "rb") as fh:
            return _crc32c_b64(iter(lambda: fh.read(1 << 20), b""))
    except FileNotFoundError:
        return None


def whole_lines(path: Path) -> int:
    """How many leading bytes of `path` are whole lines (0 if it does not exist)."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            pos = size
            while pos > 0:
                step = min(65536, pos)
                pos -= step
                fh.seek(pos)
                chunk = fh.read(step)
                cut = chunk.rfind(b"\n")
                if cut >= 0:
                    return pos + cut + 1
            return 0
    except FileNotFoundError:
        return 0


class Mirror:
    """Pushes one spool folder to one gs:// run location. Not thread-safe: one caller at a time."""

    def __init__(self, spool: Path, target: GcsLocation, client, timeout=CALL_TIMEOUT):
        self.spool = Path(spool)
        self.target = target
        self.bucket = client.bucket(target.bucket)
        self.timeout = timeout
        self._remote_size: int | None = None  # bytes of results.csv known to be in the bucket
        self._generation: int | None = None  # results.csv's generation as this mirror last wrote or checked it
        self._uploaded = self._load_uploaded()
        self.bytes_sent = 0  # results.csv bytes sent (parts and first upload), for the benchmark
        self.progress = 0  # writes that went through; backoff restarts while this grows
        self.cancelled = False  # cancel(): no new request is started (the run is quitting)
        self._pieces: dict[str, tuple[tuple[int, int], str, set[str]]] = {}  # a large file's pieces so far
        self._leftover: set[str] = set()  # parts whose delete failed, for clean_parts

    def cancel(self) -> None:
        """Start no new request (a request in flight still ends, and still counts)."""
        self.cancelled = True

    def _check(self) -> None:
        if self.cancelled:
            raise Cancelled("the upload was stopped")

    # -- state -----------------------------------------------------------------------------------
    @staticmethod
    def write_target(spool: Path, target: GcsLocation) -> None:
        state = Path(spool) / STATE_DIR
        state.mkdir(parents=True, exist_ok=True)
        (state / TARGET_FILE).write_text(str(target) + "\n", encoding="utf-8")

    @staticmethod
    def read_target(spool: Path) -> GcsLocation:
        text = (Path(spool) / STATE_DIR / TARGET_FILE).read_text(encoding="utf-8").strip()
        return GcsLocation.parse(text)

    def _load_uploaded(self) -> dict[str, tuple[int, int]]:
        done: dict[str, tuple[int, int]] = {}
        try:
            text = (self.spool / STATE_DIR / UPLOADED_LOG).read_text(encoding="utf-8")
        except FileNotFoundError:
            return done
        for line in text.splitlines():
            try:
                size, mtime, name = line.split(" ", 2)
                done[name] = (int(size), int(mtime))
            except ValueError:  # a line cut short (a full disk, a kill): that file goes up again
                continue
        return done

    def _mark_uploaded(self, name: str, stamp: tuple[int, int]) -> None:
        self._uploaded[name] = stamp
        fd = os.open(self.spool / STATE_DIR / UPLOADED_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{stamp[0]} {stamp[1]} {name}\n".encode("utf-8"))  # one write: a whole line
        finally:
            os.close(fd)

    def forget_missing(self) -> list[str]:
        """The files marked uploaded that the bucket does not hold as the spool has them (gone,
        another size, another CRC32C): marked not uploaded (in uploaded.log too, so a later sync
        still knows), and returned. One listing of the run's prefix, and a read of each file."""
        self._check()
        prefix = self.target.key("")
        remote = {blob.name[len(prefix):]: blob for blob in
                  self.bucket.list_blobs(prefix=prefix, timeout=self.timeout, retry=None)}
        gone = []
        for name, stamp in sorted(self._uploaded.items()):
            blob = remote.get(name)
            if stamp == _FORGOTTEN or not (self.spool / name).is_file():
                continue
            if blob is not None and blob.size == stamp[0] and (  # no checksum given: the size decides
                    blob.crc32c is None or blob.crc32c == _file_crc32c_b64(self.spool / name)):
                continue
            self._mark_uploaded(name, _FORGOTTEN)
            gone.append(name)
        return gone

    # -- results.csv -----------------------------------------------------------------------------
    def _results_blob(self):
        return self.bucket.get_blob(self.target.key(RESULTS), timeout=self.timeout, retry=None)

    def remote_results(self) -> bytes:
        """The bucket's results.csv (b"" if there is none)."""
        blob = self._results_blob()
        if blob is None:
            return b""
        return blob.download_as_bytes(timeout=self.timeout, retry=None, checksum=None)

    def pull_results(self) -> None:
        """Resume on a machine whose spool has fewer rows than the bucket: take the bucket's."""
        local = self.spool / RESULTS
        blob = self._results_blob()
        if blob is None or blob.size <= whole_lines(local):
            return
        data = blob.download_as_bytes(timeout=self.timeout, retry=None, checksum=None)
        tmp = local.with_name(f".{RESULTS}.pull")
        tmp.write_bytes(data)
        os.replace(tmp, local)
        self._remote_size, self._generation = len(data), blob.generation

    def push_results(self) -> bool:
        """Append the spool's whole rows that the bucket lacks. True when the bucket has them all."""
        self._check()
        local = self.spool / RESULTS
        end = whole_lines(local)
        if end == 0:
            self._remote_size = 0
            return True
        blob = self._results_blob()
        remote = 0 if blob is None else blob.size
        if remote > end:
            raise Diverged(f"{self.target.key(RESULTS)} in the bucket holds {remote} bytes, more than the "
                           f"spool's {end}: another run writes to the same location")
        with open(local, "rb") as fh:
            if remote and blob.generation != self._generation:  # written by someone else, or unknown
                prefix = fh.read(remote)
                if blob.crc32c and _crc32c_b64([prefix]) != blob.crc32c:
                    raise Diverged(f"{self.target}/{RESULTS} in the bucket is not a prefix of the spool's copy")
                self._generation = blob.generation
            if remote == end:
                self._remote_size = remote
                return True
            fh.seek(remote)
            chunk = fh.read(end - remote)
        if blob is None:
            self._generation = self._create(chunk)
        else:
            self._generation = self._append(blob, remote, chunk)
        self._remote_size = end
        self.progress += 1
        return whole_lines(local) == end

    def _create(self, chunk: bytes) -> int | None:
        """Upload the first rows; results.csv's new generation (None where unknown)."""
        dest = self.bucket.blob(self.target.key(RESULTS))
        self.bytes_sent += len(chunk)
        try:
            dest.upload_from_string(chunk, content_type="text/csv", if_generation_match=0,
                                    timeout=self.timeout, retry=None)
        except Exception:
            if self._took_effect(len(chunk)):
                return None  # landed, its response lost: the next push checks the prefix
            raise
        return dest.generation

    def _append(self, blob, remote: int, chunk: bytes) -> int | None:
        """Compose `chunk` onto results.csv (`blob`, `remote` bytes); the new generation (None
        where unknown)."""
        token = os.urandom(4).hex()  # a name of its own: a late compose of a deleted part fails
        part = self.bucket.blob(self.target.key(f"{PARTS}/results-{remote:012d}-{len(chunk)}-{token}.csv"))
        self.bytes_sent += len(chunk)
        part.upload_from_string(chunk, content_type="text/csv", timeout=self.timeout, retry=None)
        self.progress += 1
        dest = self.bucket.blob(self.target.key(RESULTS))
        dest.content_type = "text/csv"
        generation = None
        try:
            dest.compose([blob, part], if_generation_match=blob.generation, timeout=self.timeout, retry=None)
            generation = dest.generation
        except Exception:
            if not self._took_effect(remote + len(chunk)):
                self._delete_part(part)  # before the retry: a compose still on its way finds no source
                raise
        self._delete_part(part)
        return generation

    def _delete_part(self, part) -> None:
        try:
            part.delete(timeout=self.timeout, retry=None)
        except Exception:  # noqa: BLE001 - a leftover part is harmless; `clean_parts` removes it
            self._leftover.add(part.name)
        else:
            self._leftover.discard(part.name)

    def clean_parts(self, older_than: float | None = None) -> None:
        """Delete the parts this mirror could not delete (best effort, until cancelled); with
        `older_than` (seconds), also every part under `.parts/` created that long ago, which a
        process that ended left (one listing). Never a part of a newer upload: another process
        (a run and an `hpt sync` of its spool) may be composing it."""
        for name in sorted(self._leftover):
            if self.cancelled:
                return
            self._delete_part(self.bucket.blob(name))
        if older_than is None:
            return
        from datetime import UTC, datetime, timedelta

        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        for blob in self.bucket.list_blobs(prefix=self.target.key(PARTS + "/"), timeout=self.timeout, retry=None):
            if self.cancelled:
                return
            if blob.time_created is not None and blob.time_created <= cutoff:
                self._delete_part(blob)

    def _took_effect(self, expected_size: int) -> bool:
        """After an error: did the write land anyway (its response lost)?"""
        try:
            blob = self._results_blob()
        except Exception:  # noqa: BLE001 - unknown: the caller retries, and that retry re-reads
            return False
        return blob is not None and blob.size == expected_size

    # -- other files -----------------------------------------------------------------------------
    def pending(self, names: Iterable[str] | None = None) -> list[str]:
        """Files (relative names) that differ from what was uploaded; all of the spool if None."""
        if names is None:
            names = [p.relative_to(self.spool).as_posix() for p in self.spool.rglob("*")
                     if p.is_file()]
        out = []
        for name in names:
            path = self.spool / name
            if path.is_dir():
                out.extend(self.pending(p.relative_to(self.spool).as_posix() for p in path.rglob("*")
                                        if p.is_file()))
                continue
            if name == RESULTS or name.startswith(STATE_DIR + "/") or "/." in f"/{name}":
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if self._uploaded.get(name) != (stat.st_size, stat.st_mtime_ns):
                out.append(name)
        return sorted(set(out), key=lambda n: (n == SUMMARY, n))

    def push_file(self, name: str) -> None:
        self._check()
        path = self.spool / name
        stat = path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        blob = self.bucket.blob(self.target.key(name))
        content_type = "application/json" if name.endswith(".json") else None
        made = []
        if stat.st_size > MULTIPART_LIMIT:
            blob.content_type = content_type
            made = self._push_pieces(name, path, stamp, blob)
        else:
            blob.upload_from_filename(str(path), content_type=content_type, timeout=self.timeout, retry=None)
        self._mark_uploaded(name, stamp)  # up: what follows is tidying
        self.progress += 1
        for part in made:
            if self.cancelled:
                self._leftover.update(p.name for p in made)
                break
            self._delete_part(part)

    def _push_pieces(self, name: str, path: Path, stamp: tuple[int, int], blob) -> list:
        """A large file: pieces of MULTIPART_LIMIT bytes, each an object of its own, then composed
        into the file (32 at a time, then the composites). A failed request costs that request
        only: what is already up (pieces, composites) is kept for the next try while the file is
        unchanged, each step counts as progress, and nothing is sent twice. Returns the pieces and
        composites, for the caller to delete once the file is marked uploaded."""
        known = self._pieces.get(name)
        if known is None or known[0] != stamp:
            known = self._pieces[name] = (stamp, os.urandom(4).hex(), set())
        _, token, done = known
        count = -(-stamp[0] // MULTIPART_LIMIT)
        sources = [self.bucket.blob(self.target.key(f"{PARTS}/file-{token}-{i:05d}")) for i in range(count)]
        made = list(sources)  # every object of this file's pieces and composites, deleted at the end
        with open(path, "rb") as fh:
            for i, piece in enumerate(sources):
                if piece.name not in done:
                    self._check()
                    fh.seek(i * MULTIPART_LIMIT)
                    piece.upload_from_string(fh.read(MULTIPART_LIMIT), timeout=self.timeout, retry=None)
                    self._step(done, piece.name)
        level = 0
        try:
            while len(sources) > COMPOSE_MAX:  # composites of 32, then of those, until one compose is left
                level += 1
                groups = [sources[k:k + COMPOSE_MAX] for k in range(0, len(sources), COMPOSE_MAX)]
                sources = [self.bucket.blob(self.target.key(f"{PARTS}/file-{token}-L{level}-{k:05d}"))
                           for k in range(len(groups))]
                made += sources
                for composite, group in zip(sources, groups):
                    if composite.name not in done:
                        self._check()
                        composite.compose(group, timeout=self.timeout, retry=None)
                        self._step(done, composite.name)
            self._check()
            blob.compose(sources, timeout=self.timeout, retry=None)
        except Exception:  # a piece may be gone (deleted by hand, or by another process's clean_parts)
            self._forget_missing_pieces(token, done)  # `done` holds their object names
            raise
        del self._pieces[name]
        return made

    def _forget_missing_pieces(self, token: str, done: set[str]) -> None:
        """After a failed compose: the pieces and composites no longer in the bucket are sent (made)
        again on the next try, rather than composed from nothing forever. One listing."""
        try:
            present = {blob.name for blob in self.bucket.list_blobs(
                prefix=self.target.key(f"{PARTS}/file-{token}-"), timeout=self.timeout, retry=None)}
        except Exception:  # noqa: BLE001 - unknown now: the next failed compose asks again
            return
        done &= present

    def _step(self, done: set[str], what: str) -> None:
        done.add(what)
        self.progress += 1  # the uploader's backoff starts again while steps get through

    def push_all(self) -> bool:
        """One full pass: rows, then every pending file (summary.json last). True when in sync."""
        if not self.push_results():
            return False
        for name in self.pending():
            if name == SUMMARY and whole_lines(self.spool / RESULTS) != self._remote_size:
                return False
            self.push_file(name)
        return not self.pending() and self.push_results()


class Backoff:
    """Exponential backoff with jitter: about 0.5 s, 1 s, 2 s ... up to `cap`; reset on success."""

    def __init__(self, first: float = 0.5, cap: float = 30.0, rng: random.Random | None = None):
        self.first, self.cap = first, cap
        self.rng = rng or random.Random()
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        ceiling = min(self.cap, self.first * 2 ** min(self.failures - 1, 20))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.failures = 0


class Uploader:
    """A background thread that keeps the bucket in step with the spool while the run goes on.

    Rows go up every `interval` seconds; files as soon as they are announced with `notify`.
    Failures are retried with backoff; the run never waits for the network. `close(timeout)`
    pushes what remains (on the same thread) and says whether the bucket has everything.
    """

    STOP_WAIT = 1.0  # after a stop request: how long close() waits on a request that makes no progress

    def __init__(self, mirror: Mirror, interval: float = 5.0, backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.mirror = mirror
        self.interval = interval
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.last_error: str | None = None
        self.fatal: str | None = None
        self.stopped = False  # close() gave up because of a stop request (SIGINT/SIGTERM)
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._halt = threading.Event()  # close()'s stop request: no more retries
        self._deadline = 0.0
        self._synced = False
        self._progress_seen = 0
        self._thread = threading.Thread(target=self._main, name="hpt-uploader", daemon=True)

    def start(self) -> Uploader:
        self._thread.start()
        return self

    def notify(self, name: str) -> None:
        with self._lock:
            self._pending.add(name)
        self._wake.set()

    def _main(self) -> None:
        try:
            self._loop()
            self._stop.wait()  # after a fatal error: until close() says how long to try
            self._synced = self._final()
        except Exception as exc:  # noqa: BLE001 - e.g. the spool vanished: close() reports it
            self.last_error = describe(exc)
        finally:
            self._done.set()

    def _loop(self) -> None:
        next_rows = self.clock() + self.interval
        retry_at = 0.0  # after a failure: nothing is tried before this time
        while True:
            now = self.clock()
            if now < retry_at:
                self._stop.wait(retry_at - now)  # backing off: notifications wait too
            else:
                self._wake.wait(timeout=max(0.0, next_rows - now))
            if self._stop.is_set():
                return
            self._wake.clear()
            with self._lock:
                names, self._pending = self._pending, set()
            try:
                if retry_at or self.clock() >= next_rows:
                    self.mirror.push_results()
                    next_rows = self.clock() + self.interval
                for name in self.mirror.pending(names):
                    if self._stop.is_set():
                        break  # the final push (close) takes over, rows first
                    if self.clock() >= next_rows:  # rows are the commit point: never behind a file backlog
                        self.mirror.push_results()
                        next_rows = self.clock() + self.interval
                    if name != SUMMARY:
                        self.mirror.push_file(name)
                self.backoff.reset()
                self.last_error, retry_at = None, 0.0
            except Diverged as exc:
                self.fatal = str(exc)
                return
            except Exception as exc:  # noqa: BLE001 - retried (a 403 or 404 may be fixed meanwhile);
                with self._lock:     # close() reports the last error
                    self._pending |= names
                self.last_error = describe(exc)
                retry_at = self.clock() + self._delay()

    def _final(self) -> bool:
        """The end of the run: push everything, retrying until the deadline or a stop request."""
        if self.fatal:
            return False
        while not self.mirror.cancelled:
            left = self._deadline - self.clock()
            # no request outlives the deadline (--upload-timeout, hpt sync --timeout) by a full read timeout
            self.mirror.timeout = (min(CALL_TIMEOUT[0], max(0.5, left)), min(CALL_TIMEOUT[1], max(0.5, left)))
            try:
                if self.mirror.push_all():
                    self._synced = True  # whatever happens to the tidying below (a stop request)
                    try:
                        self.mirror.clean_parts()  # the parts this run's failed deletes left
                    except Exception:  # noqa: BLE001 - harmless to leave: hpt sync removes old ones
                        pass
                    return True
                failed = False  # the spool grew meanwhile: go on
            except Diverged as exc:
                self.fatal = str(exc)
                return False
            except Cancelled:
                return False
            except Exception as exc:  # noqa: BLE001 - retried until the deadline
                self.last_error = describe(exc)
                failed = True
            if failed and self._halt.is_set():
                return False  # stopping: no retries; the spool keeps everything for `hpt sync`
            delay = self._delay()
            if self.clock() + delay > self._deadline:
                return False
            self._halt.wait(delay)
        return False

    def _delay(self) -> float:
        """The wait before the next try: backoff grows only while nothing gets through."""
        if self.mirror.progress != self._progress_seen:
            self._progress_seen = self.mirror.progress
            self.backoff.reset()
        return self.backoff.next_delay()

    def close(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Stop the background loop, then push everything left, retrying until `timeout` seconds
        pass. True when the bucket has everything.

        `stop` is the run's stop request (SIGINT/SIGTERM), set before or during this call: from
        then on a failed request is not retried, and a request in flight that makes no progress
        for STOP_WAIT seconds is abandoned (the thread is told to make no further request), so
        close() returns within about a second while storage does not answer; a reachable bucket
        still gets the rest. Returns False then, with `stopped` set.
        """
        self._deadline = self.clock() + timeout
        if stop is not None and stop.is_set():
            self._halt.set()
        self._stop.set()
        self._wake.set()
        if self._thread.ident is None:  # never started (hpt sync uses close() alone)
            self._thread.start()
        if stop is None:
            self._done.wait()
            return self._synced
        watched_at, seen = None, 0
        while not self._done.wait(0.05):
            if not stop.is_set():
                continue
            self._halt.set()
            now = time.monotonic()
            if watched_at is None or self.mirror.progress != seen:
                watched_at, seen = now, self.mirror.progress  # requests still get through: let it go on
            elif now - watched_at >= self.STOP_WAIT:
                self.mirror.cancel()  # the thread stops before its next request
                if self._synced:  # everything is up; only the tidying of parts was cut short
                    return True
                self.stopped = True
                return False
        if stop.is_set() and not self._synced:
            self.stopped = True
        return self._synced
