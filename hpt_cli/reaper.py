"""End the processes a trial left behind: every child of this process and their descendants.

An hpt worker calls `become_subreaper()` once, `end_children()` when it exits, and a command
trial calls it when its program exits. As a child subreaper (Linux), the worker adopts each
orphaned descendant of its jobs, also one that left the worker's process group (`setsid`, a
double-forked daemon), instead of PID 1 adopting it; so killing the worker's children, reaping
them and repeating until none is left ends the whole tree.

Stdlib only and cheap: with no child left, `end_children()` is one `waitpid` system call.
"""

from __future__ import annotations

import os
import signal
import sys
import time

_PR_SET_CHILD_SUBREAPER = 36
_WAIT_FLAGS = os.WNOHANG | (0x40000000 if sys.platform.startswith("linux") else 0)  # __WALL: any exit signal
_TASKS = "/proc/self/task"  # <tid>/children lists a thread's children (CONFIG_PROC_CHILDREN)
_children_files: bool | None = None  # whether _TASKS has them; looked up once

__all__ = ["become_subreaper", "end_children", "kill_children"]


def become_subreaper() -> bool:
    """Make this process adopt its orphaned descendants (Linux: PR_SET_CHILD_SUBREAPER); whether
    that worked. Elsewhere, or where prctl fails, orphans go to PID 1 as usual."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def end_children(timeout: float = 2.0) -> None:
    """SIGKILL every child process of this process, reap it, and repeat for the descendants that
    come to this process as their parents die (see `become_subreaper`), until none is left or
    `timeout` seconds pass: a process stuck in the kernel cannot be reaped, and the next call
    tries again. Never kills this process or its parent."""
    if not _reap():
        return  # the usual case: no child, one system call
    deadline = time.monotonic() + timeout
    pause = 0.0002
    try:
        while kill_children():
            time.sleep(pause)
            if not _reap() or time.monotonic() >= deadline:
                return
            pause = min(pause * 2, 0.02)
    finally:
        _forget_multiprocessing_helpers()


def _forget_multiprocessing_helpers() -> None:
    """Tell multiprocessing that its fork server and resource tracker, children of this process
    that outlive a pool, were killed with the rest, so that the next job's pool starts new ones
    instead of failing (forkserver: ChildProcessError) or warning (resource tracker: "process died
    unexpectedly")."""
    forkserver = getattr(sys.modules.get("multiprocessing.forkserver"), "_forkserver", None)
    tracker = getattr(sys.modules.get("multiprocessing.resource_tracker"), "_resource_tracker", None)
    for helper, pid_attr, fd_attr in ((forkserver, "_forkserver_pid", "_forkserver_alive_fd"),
                                      (tracker, "_pid", "_fd")):
        pid = getattr(helper, pid_attr, None)
        if pid is None or not _gone(pid) or not helper._lock.acquire(blocking=False):
            continue  # never started, still running (stuck in the kernel), or in use by a job's thread
        try:
            address = getattr(helper, "_forkserver_address", None)
            if address and address[:1] not in ("\0", b"\0"):  # else in the abstract namespace
                try:
                    os.unlink(address)
                except OSError:
                    pass
            try:
                os.close(getattr(helper, fd_attr))
            except (OSError, TypeError):
                pass
            for attr in (pid_attr, fd_attr, "_forkserver_address", "_forkserver_authkey"):
                if hasattr(helper, attr):
                    setattr(helper, attr, None)
        finally:
            helper._lock.release()


def _gone(pid: int) -> bool:
    """Whether our child `pid` has exited (reaping it if need be) or is no child of ours."""
    try:
        return os.waitpid(pid, _WAIT_FLAGS)[0] != 0
    except ChildProcessError:
        return True


def kill_children() -> bool:
    """SIGKILL this process's children once, without waiting (where /proc lists no children, also
    the rest of this process's group if it leads its session); False where they cannot be listed."""
    pids = _children()
    if pids is None:
        return False
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass  # gone meanwhile
    return True


def _reap() -> bool:
    """Reap every child that has exited; whether any child is left."""
    while True:
        try:
            pid, _ = os.waitpid(-1, _WAIT_FLAGS)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def _children() -> set[int] | None:
    """The pids of this process's children, every thread's, live or zombie; None without /proc."""
    global _children_files
    if _children_files is None:
        _children_files = os.path.exists(f"{_TASKS}/{os.getpid()}/children")
    if not _children_files:
        return _children_by_scan()
    pids: set[int] = set()
    try:
        tasks = os.listdir(_TASKS)
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"{_TASKS}/{tid}/children", encoding="ascii") as fh:
                pids.update(int(p) for p in fh.read().split())
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
    return pids


def _children_by_scan() -> set[int] | None:
    """Read every process's stat for our children and, where this process leads its own session
    (as an hpt worker does), the rest of its group, which all descends from it. (A mere group
    leader may share its group with its shell's pipeline: `pytest | tee`.) Costly: it runs only
    where a child is known to be left."""
    me, parent = os.getpid(), os.getppid()
    group = me if os.getsid(0) == me else None
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    pids: set[int] = set()
    for entry in entries:
        if not entry.isdigit() or int(entry) in (me, parent):
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()  # after "(comm)": state, ppid, pgrp
            if int(fields[1]) == me or (group is not None and int(fields[2]) == group):
                pids.add(int(entry))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return pids
