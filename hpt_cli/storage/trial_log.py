"""A trial's log.txt in the run folder: the runner's `hpt:` notes, and the size cap.

A trial writes its log itself (its file descriptors 1 and 2 point at the file: output of C code
and of child processes included, and a crash's last words are there even when the worker dies).
So the cap is applied by the runner when an attempt ends, before the trial's row is written and
its files uploaded: a log over the limit keeps its first and its last half of the limit, cut at
line ends, with one `hpt:` line in between saying how much was left out. The tail is what holds a
traceback; the head holds what the trial said about its set-up.

Both are best effort: a log that cannot be read or rewritten (a full disk) is left as it is; the
trial's outcome never depends on its log.
"""

from __future__ import annotations

import os
from pathlib import Path

from hpt_cli.sizes import format_size

DEFAULT_LIMIT = 10 * 1024 * 1024
_SNAP = 64 * 1024  # a cut moves to a line end at most this far (or a quarter of the half kept)
_CHUNK = 1024 * 1024


def append_note(path: Path | str, text: str) -> None:
    """Append `hpt: <text>` as a line of its own (the trial's last line may be unfinished)."""
    try:
        with open(path, "a+b") as f:
            lead = b""
            if f.seek(0, os.SEEK_END) > 0:
                f.seek(-1, os.SEEK_END)
                lead = b"" if f.read(1) == b"\n" else b"\n"
            f.write(lead + f"hpt: {text}\n".encode())
    except OSError:
        pass


def cap(path: Path | str, limit: int | None) -> int:
    """Cut the log at `path` to about `limit` bytes (its head and its tail, a note between);
    return how many bytes were left out (0: within the limit, no limit, no log, or it could not
    be rewritten). The file is replaced whole (a temporary file renamed over it)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        return 0
    if not limit or size <= limit:
        return 0
    half = limit // 2
    tmp = path.with_name(f".{path.name}.cut")
    try:
        with open(path, "rb") as src:
            head_end = _line_end_before(src, half)
            tail_start = _line_start_after(src, size - half, size)
            left_out = tail_start - head_end
            note = (f"hpt: {left_out} bytes of this log left out here ({format_size(size)} in all; "
                    f"--log-limit {format_size(limit)} keeps the first and the last {format_size(half)})\n")
            with open(tmp, "wb") as dst:
                _copy(src, dst, 0, head_end)
                if head_end and not _ends_line(src, head_end):
                    dst.write(b"\n")
                dst.write(note.encode())
                _copy(src, dst, tail_start, size)
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
        return 0
    return left_out


def _line_end_before(f, at: int) -> int:
    """The offset just after the last newline in the window before `at`; `at` if there is none."""
    window = min(_SNAP, at // 4)
    f.seek(at - window)
    nl = f.read(window).rfind(b"\n")
    return at - window + nl + 1 if nl >= 0 else at


def _line_start_after(f, at: int, size: int) -> int:
    """`at` if a line starts there, else the offset just after the first newline in the window
    from `at`; `at` if there is none."""
    window = min(_SNAP, (size - at) // 4)
    f.seek(at - 1)
    nl = f.read(window + 1).find(b"\n")
    return at + nl if nl >= 0 else at


def _ends_line(f, end: int) -> bool:
    f.seek(end - 1)
    return f.read(1) == b"\n"


def _copy(src, dst, start: int, end: int) -> None:
    src.seek(start)
    left = end - start
    while left > 0:
        chunk = src.read(min(_CHUNK, left))
        if not chunk:
            break
        dst.write(chunk)
        left -= len(chunk)
