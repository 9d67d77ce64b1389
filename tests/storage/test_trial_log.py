"""hpt_cli.storage.trial_log: the cap keeps a log's head and tail, whole lines where it can, and
says exactly how much it left out; notes start a line of their own."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from hpt_cli.storage.trial_log import append_note, cap

NOTE = re.compile(rb"hpt: (\d+) bytes of this log left out here \(([^)]*) in all; "
                  rb"--log-limit (.*) keeps the first and the last (.*)\)\n")


def split(log: bytes) -> tuple[bytes, re.Match, bytes]:
    (m,) = list(NOTE.finditer(log))
    return log[:m.start()], m, log[m.end():]


def test_a_log_within_the_limit_or_without_one_is_left_alone(tmp_path):
    path = tmp_path / "log.txt"
    path.write_bytes(b"a\n" * 100)
    assert cap(path, 200) == 0 and cap(path, None) == 0 and cap(path, 0) == 0
    assert path.read_bytes() == b"a\n" * 100
    assert cap(tmp_path / "missing.txt", 10) == 0


def test_the_cut_falls_on_line_ends_and_the_note_says_what_was_left_out(tmp_path):
    path = tmp_path / "log.txt"
    lines = [f"line {i:04d}\n".encode() for i in range(1000)]  # 10 bytes each
    path.write_bytes(b"".join(lines))
    left_out = cap(path, 1000)
    log = path.read_bytes()
    head, m, tail = split(log)
    assert head == b"".join(lines[:50]) and tail == b"".join(lines[950:])
    assert left_out == int(m[1]) == 9000
    assert m.group(2, 3, 4) == (b"9.766 KiB", b"1000 B", b"500 B")
    assert not list(tmp_path.glob(".*"))  # the temporary file is gone


def test_a_log_without_line_ends_is_cut_where_the_limit_says(tmp_path):
    path = tmp_path / "log.txt"
    path.write_bytes(b"x" * 5000)
    assert cap(path, 1000) == 4000
    head, m, tail = split(path.read_bytes())
    assert (head, tail) == (b"x" * 500 + b"\n", b"x" * 500)  # the note starts a line of its own


def test_a_second_cut_keeps_the_first_note_in_the_head_and_counts_its_own_bytes(tmp_path):
    path = tmp_path / "log.txt"
    path.write_bytes(b"first attempt\n" * 1000)
    cap(path, 4096)
    append_note(path, "attempt 2 of 2")
    with open(path, "ab") as f:
        f.write(b"second attempt\n" * 1000)
    before = path.stat().st_size
    left_out = cap(path, 4096)
    log = path.read_bytes()
    assert log.startswith(b"first attempt\n") and log.endswith(b"second attempt\n")
    assert left_out == before - len(log) + len(list(NOTE.finditer(log))[-1][0])


def test_append_note_starts_a_line_of_its_own(tmp_path):
    path = tmp_path / "log.txt"
    append_note(path, "first")
    path.write_bytes(path.read_bytes() + b"half a line")
    append_note(path, "second")
    assert path.read_bytes() == b"hpt: first\nhalf a line\nhpt: second\n"


@settings(max_examples=200, deadline=None)
@given(body=st.lists(st.binary(max_size=300), max_size=60).map(b"\n".join), limit=st.integers(0, 4000))
def test_cap_keeps_a_prefix_and_a_suffix_and_accounts_for_every_byte(tmp_path_factory, body, limit):
    path = tmp_path_factory.mktemp("log") / "log.txt"
    path.write_bytes(body)
    left_out = cap(path, limit)
    log = path.read_bytes()
    if not limit or len(body) <= limit:
        assert (left_out, log) == (0, body)
        return
    m = list(NOTE.finditer(log))[-1]  # the body may hold a line like the note: the last one is hpt's
    head, tail = log[:m.start()], log[m.end():]
    if len(head) > limit // 2:  # a newline was added after a cut mid-line: the note starts a line
        assert head.endswith(b"\n")
        head = head[:-1]
    assert body.startswith(head) and body.endswith(tail)
    assert len(head) <= limit // 2 and len(tail) <= limit // 2
    assert len(head) + int(m[1]) + len(tail) == len(body) == left_out + len(head) + len(tail)
