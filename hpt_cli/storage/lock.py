"""One run at a time per run folder: a file lock locally, a lock object on gs://.

Two cron runs of the same spec resolve to the same run folder; the second finds it locked and
fails (exit 5), skips (exit 0) or waits, as `--lock` says. A local lock is an flock(2) on
`<run>/.lock`, released by the kernel if the holder dies. A gs:// lock is the object
`<run>/.lock`, created only if absent (if_generation_match=0) and rewritten by a heartbeat; one
whose heartbeat is older than `stale_after` is taken over, so a crashed machine does not block
the next month's run, and so is one whose holder was a process of this machine that is gone (a
killed run, or one that could not delete its lock while the bucket was down), at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path

from hpt_cli.errors import ExitCode, HptError
from hpt_cli.storage.base import same_file
from hpt_cli.storage.gcs import CALL_TIMEOUT, START_TIMEOUT, GcsLocation

LOCK_NAME = ".lock"
RELEASE_TIMEOUT = (1.0, 2.0)  # (connect, read): releasing at the end must not hold up the exit (a lock
# left behind is taken over at once by the next run of this machine, and after stale_after elsewhere)


class LockWaitCapped(HptError):
    """`--lock wait` waited until the run's --max-time passed: nothing was run (exit 6)."""

    exit_code = ExitCode.TIME_CAP


def holder_info() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"), "heartbeat": time.time(),
            **_process_identity(os.getpid())}


def _process_identity(pid: int) -> dict:
    """What tells this process apart from a later one with the same pid on this machine (Linux):
    the boot, the pid namespace and the process's start time. Empty where /proc cannot say."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        namespace = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return {}
    start = _start_time(pid)
    return {} if start is None else {"boot_id": boot, "pid_ns": namespace, "pid_start": start}


def _start_time(pid: int) -> str | None:
    """A process's start time (field 22 of /proc/<pid>/stat); None where /proc cannot say."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def holder_is_gone(info: dict) -> bool:
    """Whether the holder was a process of this very machine (same host name, boot and pid
    namespace) that no longer runs: then its lock is stale at once. False whenever unsure."""
    pid, start = info.get("pid"), info.get("pid_start")
    if not isinstance(pid, int) or not start or info.get("host") != socket.gethostname():
        return False
    mine = _process_identity(os.getpid())
    if not mine or (info.get("boot_id"), info.get("pid_ns")) != (mine["boot_id"], mine["pid_ns"]):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True  # no such process
    except PermissionError:
        pass  # a process of another user: it runs
    except OSError:
        return False
    now = _start_time(pid)  # a process with its pid: the holder, or a later one (/proc may hide it: unsure)
    return now is not None and now != start


def _describe(info: dict | None, stale_after: float | None = None) -> str:
    if not info:
        return "another run"
    text = f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"
    if stale_after is not None and isinstance(info.get("heartbeat"), (int, float)):
        age = max(0.0, time.time() - info["heartbeat"])
        text += (f" (last heartbeat {age:.0f} s ago; a lock whose heartbeat is {_duration(stale_after)} old "
                 "is taken over)")
    return text


class RunLock(ABC):
    where: str
    offline: str = ""  # why the bucket did not answer when the lock was taken ("" when it did, or no bucket)

    @abstractmethod
    def try_acquire(self) -> str | None:
        """Take the lock, or say who holds it (None when taken)."""

    @abstractmethod
    def release(self) -> None: ...


class FileLock(RunLock):
    """An flock(2) on the run folder itself, so that deleting `.lock` (which stays after a run and
    may look stale) lets no second run in; `.lock` says who holds it, and is flocked too, as hpt
    versions before the folder lock did, so that those and this one exclude each other. Where a
    folder cannot be locked (NFS, whose flock is a byte-range lock that needs a file open for
    writing; some FUSE mounts), `.lock` alone. A folder the
    lock made and nothing else used (a run refused before it started) is removed on release."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.where = str(folder)
        self._fds: tuple[int, int] | None = None
        self._made = False  # this lock made the folder

    def try_acquire(self) -> str | None:
        for _ in range(5):  # the folder removed while it was being locked: lock the one at its path
            made = not self.folder.is_dir()
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                holder = self._try_acquire()
            except FileNotFoundError:  # removed between the mkdir and the open (a refused run's release)
                continue
            if holder is not None or self._fds is None:
                return holder
            if same_file(self.folder, os.fstat(self._fds[0])):
                self._made = made
                return None
            self.release()
        return "a run that keeps removing the folder"

    def _try_acquire(self) -> str | None:
        taken: list[int] = []
        try:
            for path, flags in ((self.folder, os.O_RDONLY | os.O_DIRECTORY), (self.path, os.O_RDWR | os.O_CREAT)):
                taken.append(os.open(path, flags, 0o644))
                fd = taken[-1]
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise
                except OSError:
                    if path != self.folder:
                        raise
                    # a filesystem that cannot lock a folder (some FUSE mounts): .lock alone, as before
        except BlockingIOError:
            for fd in taken:
                os.close(fd)
            return _describe(self._holder())
        except BaseException:
            for fd in taken:
                os.close(fd)
            raise
        os.ftruncate(taken[1], 0)
        os.pwrite(taken[1], json.dumps(holder_info()).encode(), 0)
        self._fds = (taken[0], taken[1])
        return None

    def _holder(self) -> dict | None:
        """Who holds the lock, from `.lock` (None when it does not say)."""
        for _ in range(20):  # the holder writes who it is just after taking the flock
            try:
                info = json.loads(self.path.read_bytes() or b"null")
            except (OSError, ValueError):
                info = None
            if info:
                return info
            time.sleep(0.01)
        return None

    def release(self) -> None:
        if self._fds is None:
            return
        if self._made:  # still held, so no other run is in it: empty but for .lock, it goes
            try:
                if os.listdir(self.folder) == [LOCK_NAME]:
                    self.path.unlink()
                    self.folder.rmdir()
            except OSError:
                pass
        for fd in self._fds:
            os.close(fd)  # closing drops the flock
        self._fds = None
        self._made = False


class GcsLock(RunLock):
    def __init__(self, location: GcsLocation, client, heartbeat: float = 30.0, stale_after: float = 300.0):
        self.location = location
        self.where = str(location)
        self.blob_name = location.key(LOCK_NAME)
        self.bucket = client.bucket(location.bucket)
        self.heartbeat = heartbeat
        self.stale_after = stale_after
        self._generation: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _create(self, if_generation_match: int, timeout=CALL_TIMEOUT) -> int | None:
        from google.api_core.exceptions import PreconditionFailed

        blob = self.bucket.blob(self.blob_name)
        try:
            blob.upload_from_string(json.dumps(holder_info()), content_type="application/json",
                                    if_generation_match=if_generation_match, timeout=timeout, retry=None)
        except PreconditionFailed:
            return None
        return blob.generation

    def try_acquire(self) -> str | None:
        from hpt_cli.storage.gcs import describe, raise_unless_transient

        try:
            return self._try_acquire()
        except Exception as exc:  # noqa: BLE001 - classified: the user's error, or offline
            raise_unless_transient(exc, self.location)
            self.offline = describe(exc)  # the spool's file lock still holds on this machine
            return None

    def _try_acquire(self) -> str | None:
        generation = self._create(0, START_TIMEOUT)
        if generation is None:
            blob, info = _read_lock(self.bucket, self.blob_name)
            if blob is None:
                return self._try_acquire()  # released meanwhile
            fresh = time.time() - float(info.get("heartbeat", 0)) < self.stale_after
            if fresh and not holder_is_gone(info):
                return _describe(info, self.stale_after)
            generation = self._create(blob.generation, START_TIMEOUT)  # stale, or its holder is gone: take it over
            if generation is None:
                return _describe(info, self.stale_after)
        self._generation = generation
        self._thread = threading.Thread(target=self._beat, name="hpt-lock-heartbeat", daemon=True)
        self._thread.start()
        return None

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                generation = self._create(self._generation)
                if generation is not None:
                    self._generation = generation
            except Exception:  # noqa: BLE001 - a missed beat is retried at the next one
                pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=RELEASE_TIMEOUT[0])  # a beat in flight: its precondition fails later
        if self._generation is not None:
            try:
                self.bucket.blob(self.blob_name).delete(if_generation_match=self._generation,
                                                        timeout=RELEASE_TIMEOUT, retry=None)
            except Exception:  # noqa: BLE001 - unreachable: it goes stale and is taken over
                pass
            self._generation = None


def release_if_holder_gone(location: GcsLocation, client) -> bool:
    """Delete the run's lock object at `location` when its holder was a process of this machine
    that is gone (`holder_is_gone`): `hpt sync` after a run that exited 4 with the bucket down,
    so that a rerun on another machine need not wait `stale_after` for it. Whether it did."""
    blob, info = _read_lock(client.bucket(location.bucket), location.key(LOCK_NAME))
    if blob is None or not isinstance(info, dict) or not holder_is_gone(info):
        return False
    blob.delete(if_generation_match=blob.generation, timeout=RELEASE_TIMEOUT, retry=None)
    return True


def _read_lock(bucket, name: str):
    """The lock object and what it says (JSON; {} where it is not), or (None, {}) when absent."""
    blob = bucket.get_blob(name, timeout=START_TIMEOUT, retry=None)
    if blob is None:
        return None, {}
    try:
        return blob, json.loads(blob.download_as_bytes(timeout=START_TIMEOUT, retry=None))
    except ValueError:
        return blob, {}


class Locks(RunLock):
    """Several locks taken in order (the spool's file lock, then the bucket's object)."""

    def __init__(self, *locks: RunLock):
        self.locks = locks
        self.where = locks[-1].where

    def try_acquire(self) -> str | None:
        taken: list[RunLock] = []
        try:
            for lock in self.locks:
                holder = lock.try_acquire()
                if holder is not None:
                    _release_all(taken)
                    return holder
                taken.append(lock)
        except BaseException:  # e.g. the bucket does not exist: the spool's lock is not kept either
            _release_all(taken)
            raise
        return None

    def release(self) -> None:
        _release_all(list(self.locks))

    @property
    def offline(self) -> str:
        """Why the bucket did not answer when its lock was taken ("" when it did)."""
        return next((lock.offline for lock in self.locks if lock.offline), "")


def _release_all(locks: list[RunLock]) -> None:
    for lock in reversed(locks):
        lock.release()


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def acquire(lock: RunLock, mode: str, poll: float = 2.0, say=None, sleep=time.sleep, stop=None,
            max_wait: float | None = None, clock=time.monotonic) -> bool:
    """Take `lock` per `mode`: "fail" raises LockedError, "skip" returns False, "wait" waits
    (until `stop`, a threading.Event set by SIGINT/SIGTERM, says to give up: Interrupted; or
    until `max_wait` seconds, the run's --max-time, have passed: LockWaitCapped, exit 6)."""
    from hpt_cli.errors import Interrupted, LockedError

    deadline = None if max_wait is None else clock() + max_wait

    holder = lock.try_acquire()
    if holder is None:
        return True
    if mode == "skip":
        return False
    if mode == "fail":
        raise LockedError(f"{lock.where} is locked by {holder}; --lock wait waits for it, --lock skip "
                          "exits 0 instead")
    if say:
        say(f"waiting for {holder} to release {lock.where}")
    while holder is not None:
        wait = poll
        if deadline is not None:
            left = deadline - clock()
            if left <= 0:
                raise LockWaitCapped(f"--max-time {_duration(max_wait)} passed while waiting for {holder} to "
                                     f"release {lock.where}; nothing was run")
            wait = min(poll, left)
        if stop is not None:
            if stop.wait(wait):
                raise Interrupted(f"interrupted while waiting for {holder} to release {lock.where}; "
                                  "nothing was run")
        else:
            sleep(wait)
        holder = lock.try_acquire()
    return True
